"""Opening a message transport to RELAY: URL, TLS trust, and the choice of library.

The session only needs something that receives batches of text frames and sends text
frames (:class:`MessageTransport`). Two implementations exist:

* ``"wsproto"`` (default): :mod:`relay_anyio._websocket` over an anyio byte stream, one
  code path for trio and asyncio.
* ``"trio-websocket"``: the library trio services usually use, available under trio
  only (install the ``trio`` extra).

Both pass the same contract tests (``tests/test_transport_contract.py``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Protocol

import anyio

from ._errors import ConnectionLost, TransportError
from ._websocket import DEFAULT_MAX_MESSAGE_SIZE, WebSocket, connect_websocket

__all__ = [
    "CA_FILE_ENV",
    "MessageTransport",
    "TransportName",
    "build_ssl_context",
    "open_transport",
]

CA_FILE_ENV = "SIGNALWIRE_RELAY_CA_FILE"
TransportName = Literal["wsproto", "trio-websocket"]


class MessageTransport(Protocol):
    """What the session needs from a WebSocket."""

    async def receive_batch(self) -> list[str | bytes]: ...

    async def send_text(self, text: str) -> None: ...

    async def send_texts(self, texts: Sequence[str]) -> None: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...

    async def abort(self) -> None: ...


def build_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The default client context, plus ``SIGNALWIRE_RELAY_CA_FILE`` if set.

    As in the official client, the extra bundle is trusted *in addition to* the
    system store, and hostname checking stays on.
    """
    ctx = ssl.create_default_context()
    ca_file = ca_file if ca_file is not None else os.environ.get(CA_FILE_ENV) or None
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"{CA_FILE_ENV}={ca_file!r} is not a readable PEM CA bundle: {exc}"
            ) from None
    return ctx


class _WsprotoTransport:
    def __init__(self, url: str, ssl_context: ssl.SSLContext | None, max_size: int) -> None:
        self._url = url
        self._ssl_context = ssl_context
        self._max_size = max_size
        self._ws: WebSocket | None = None

    async def __aenter__(self) -> WebSocket:
        self._ws = await connect_websocket(
            self._url, ssl_context=self._ssl_context, max_message_size=self._max_size
        )
        return self._ws

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.aclose()


class _TrioWebSocketAdapter:
    """trio-websocket's connection seen through :class:`MessageTransport`."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        from trio_websocket import ConnectionClosed

        self._closed_exc: type[ConnectionClosed] = ConnectionClosed

    async def receive_batch(self) -> list[str | bytes]:
        try:
            message: str | bytes = await self._conn.get_message()
        except self._closed_exc as exc:
            raise ConnectionLost(f"WebSocket closed ({exc.reason})") from None
        return [message]

    async def send_text(self, text: str) -> None:
        try:
            await self._conn.send_message(text)
        except self._closed_exc as exc:
            raise ConnectionLost(f"WebSocket closed ({exc.reason})") from None

    async def send_texts(self, texts: Sequence[str]) -> None:
        for text in texts:
            await self.send_text(text)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        with anyio.CancelScope(shield=True):
            await self._conn.aclose(code, reason or None)

    async def abort(self) -> None:
        # trio-websocket has no public "drop the socket"; closing its trio stream is it.
        with anyio.CancelScope(shield=True):
            await self._conn._stream.aclose()


class _TrioWebSocketTransport:
    def __init__(self, url: str, ssl_context: ssl.SSLContext | None, max_size: int) -> None:
        try:
            import trio_websocket
        except ImportError:  # pragma: no cover - depends on the install
            raise ValueError(
                'transport="trio-websocket" needs the trio extra: pip install "relay-anyio[trio]"'
            ) from None
        if _backend_name() != "trio":
            raise ValueError('transport="trio-websocket" only runs under trio')
        self._cm = trio_websocket.open_websocket_url(
            url,
            ssl_context=ssl_context,
            max_message_size=max_size,
            message_queue_size=256,
        )

    async def __aenter__(self) -> _TrioWebSocketAdapter:
        from trio_websocket import HandshakeError

        try:
            conn = await self._cm.__aenter__()
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS certificate verification failed: {exc.verify_message}", fatal=True
            ) from None
        except (OSError, HandshakeError) as exc:
            raise TransportError(f"cannot open WebSocket: {exc}") from None
        return _TrioWebSocketAdapter(conn)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from trio_websocket import ConnectionClosed

        try:
            await self._cm.__aexit__(exc_type, exc, tb)
        except ConnectionClosed:
            pass


def _backend_name() -> str:
    import sniffio

    return sniffio.current_async_library()


class TransportContext(Protocol):
    async def __aenter__(self) -> MessageTransport: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def open_transport(
    url: str,
    *,
    transport: TransportName = "wsproto",
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> TransportContext:
    """An async context manager that opens ``url`` and closes it on exit."""
    if url.startswith("wss:") and ssl_context is None:
        ssl_context = build_ssl_context()
    if transport == "wsproto":
        return _WsprotoTransport(url, ssl_context, max_message_size)
    if transport == "trio-websocket":
        return _TrioWebSocketTransport(url, ssl_context, max_message_size)
    raise ValueError(f"unknown transport {transport!r}: use 'wsproto' or 'trio-websocket'")
