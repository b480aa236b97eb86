"""Opening a message transport to RELAY: URL, TLS trust, and the choice of library.

The session only needs something that receives batches of text frames and sends text
frames (``MessageTransport``). Two implementations exist:

* ``"native"`` (default): ``relay_anyio._websocket`` over an anyio byte stream, one
  code path for trio and asyncio (``"wsproto"`` is its old, deprecated name: the
  engine is the package's own codec, not the wsproto library).
* ``"trio-websocket"``: the library trio services usually use, available under trio
  only (install the ``trio`` extra).

Both pass the same contract tests (``tests/test_transport_contract.py``).
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Literal, Protocol

import anyio
import anyio.abc

from ._errors import ConnectionLost
from ._neterrors import (
    CA_FILE_ENV,
    HANDSHAKE_PHASE,
    TLS_PHASE,
    opening,
    proxy_phase,
    trio_websocket_lost,
    trio_websocket_open_failed,
)
from ._proxy import Proxy, authority, tunnel
from ._scopes import StackOwned, owned_task_group
from ._websocket import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocket,
    build_ssl_context,
    check_verifying_context,
    connect_websocket,
    split_url,
)

__all__ = [
    "CA_FILE_ENV",
    "DEFAULT_OPEN_TIMEOUT",
    "MessageTransport",
    "TransportName",
    "build_ssl_context",
    "canonical_transport",
    "open_transport",
]

TransportName = Literal["native", "trio-websocket", "wsproto"]
"""A transport's name: ``"native"`` (any backend) or ``"trio-websocket"`` (trio only);
``"wsproto"`` is the deprecated alias of ``"native"``."""
TRANSPORTS: tuple[TransportName, ...] = ("native", "trio-websocket")


def canonical_transport(name: str) -> TransportName:
    """The transport ``name`` stands for; ``ValueError`` for an unknown one.

    The one place transport names are checked (the client's configuration and
    ``open_transport`` both ask here). ``"wsproto"`` still means ``"native"``,
    with a ``DeprecationWarning``.
    """
    if name == "wsproto":
        warnings.warn(
            "transport='wsproto' is deprecated: the default engine is the package's own "
            "codec, transport='native'",
            DeprecationWarning,
            stacklevel=3,
        )
        return "native"
    if name not in TRANSPORTS:
        raise ValueError(f"unknown transport {name!r}: use 'native' or 'trio-websocket'")
    return name


#: Bound on TCP connect + TLS + WebSocket handshake (the official client's 10 s).
DEFAULT_OPEN_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 2.0


class MessageTransport(Protocol):
    """What the session needs from a WebSocket.

    The contract (``tests/test_transport_contract.py``): messages come back in order
    and those sent before a close arrive before it; a close or a dead link is
    ``ConnectionLost`` (with ``close_code``) from both ``receive_batch`` and the
    sends; nothing but ``RelayError`` subclasses escapes; ``aclose`` and
    ``abort`` are idempotent and end a send blocked on a peer that stopped reading.
    """

    async def receive_batch(self) -> list[str | bytes]:
        """The messages of one read, in order: at least one."""
        ...

    async def send_text(self, text: str) -> None:
        """Send one text message."""
        ...

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send several text messages, in order, in as few writes as the engine can."""
        ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close politely (a close frame with ``code``), bounded; idempotent."""
        ...

    async def abort(self) -> None:
        """Drop the link at once, without a close frame; idempotent."""
        ...


class _NativeTransport:
    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        max_size: int,
        open_timeout: float,
        proxy: Proxy | None,
    ) -> None:
        self._url = url
        self._ssl_context = ssl_context
        self._max_size = max_size
        self._open_timeout = open_timeout
        self._proxy = proxy
        self._ws: WebSocket | None = None

    async def __aenter__(self) -> WebSocket:
        self._ws = await connect_websocket(
            self._url,
            ssl_context=self._ssl_context,
            max_message_size=self._max_size,
            open_timeout=self._open_timeout,
            proxy=self._proxy,
        )
        return self._ws

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.aclose()


class _TrioWebSocketAdapter:
    """trio-websocket's connection seen through ``MessageTransport``.

    Writes are shielded for the reason given in ``relay_anyio._websocket.WebSocket``
    (trio-websocket writes with a cancellable ``send_all``), but only once our own send
    lock is held: waiting for the lock stays cancellable, so a keepalive ping stuck
    behind a write blocked on a dead peer still times out. ``abort`` closes the
    underlying stream, which ends such a write with ``ConnectionClosed``. After our
    own ``aclose``/``abort`` every call fails at once, as with the other transport
    (trio-websocket only notices once its reader task has run).
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        from trio_websocket import ConnectionClosed

        self._closed_exc: type[ConnectionClosed] = ConnectionClosed
        self._local_close: ConnectionLost | None = None
        self._send_lock = anyio.Lock()

    def _lost(self, exc: Any) -> ConnectionLost:
        if self._local_close is not None:
            return self._local_close
        return trio_websocket_lost(exc)

    async def receive_batch(self) -> list[str | bytes]:
        if self._local_close is not None:
            raise self._local_close
        try:
            message: str | bytes = await self._conn.get_message()
        except self._closed_exc as exc:
            raise self._lost(exc) from None
        return [message]

    async def send_text(self, text: str) -> None:
        await self.send_texts((text,))

    async def send_texts(self, texts: Sequence[str]) -> None:
        async with self._send_lock:
            for text in texts:
                if self._local_close is not None:
                    raise self._local_close
                with anyio.CancelScope(shield=True):
                    try:
                        await self._conn.send_message(text)
                    except self._closed_exc as exc:
                        raise self._lost(exc) from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close politely only if no write is in progress or queued.

        A busy send lock at this point means writes are stuck on a peer that stopped
        reading (or queued behind one); trio-websocket's close would queue behind
        them and then wait for a reply that cannot come. Close the stream instead.
        """
        if self._local_close is not None:
            return
        detail = f", {reason}" if reason else ""
        self._local_close = ConnectionLost(
            f"WebSocket closed (code {code}{detail})", close_code=code
        )
        try:
            self._send_lock.acquire_nowait()
        except anyio.WouldBlock:
            pass
        else:
            try:
                with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                    await self._conn.aclose(code, reason or None)
            finally:
                self._send_lock.release()
        await _close_stream(self._conn)

    async def abort(self) -> None:
        if self._local_close is None:
            self._local_close = ConnectionLost(
                "WebSocket closed (code 1006, aborted)", close_code=1006
            )
        await _close_stream(self._conn)


async def _close_stream(conn: Any) -> None:
    """End a trio-websocket connection at once, whatever state it is in.

    trio-websocket has no public "drop the socket": closing its trio stream is it (its
    reader then reports code 1006 to ``get_message`` and ``send_message``); closing
    its message channel ends a reader blocked on a full queue. Together they end the
    reader task, which is shielded (see ``_ReaderNursery``).
    """
    conn._recv_channel.close()
    with anyio.CancelScope(shield=True):
        await anyio.aclose_forcefully(conn._stream)


class _ReaderNursery:
    """The one thing ``wrap_client_stream`` needs from a nursery: ``start_soon``.

    trio-websocket's reader task never sets its "handshake done" event when the stream
    breaks or the peer rejects the upgrade; it ends or raises instead, and its opener
    waits forever. Running the reader through this wrapper keeps its error (our task
    group never sees it) and cancels the handshake wait when it ends.

    The reader is shielded: it must outlive a cancellation of the session long enough
    to read the server's reply to our close frame. It ends when the transport closes
    its stream and channel (``_close_stream``), which every exit path does.
    """

    def __init__(self, task_group: anyio.abc.TaskGroup, handshake: anyio.CancelScope) -> None:
        self._task_group = task_group
        self._handshake = handshake
        self.error: Exception | None = None

    def start_soon(self, func: Any, *args: Any, name: object = None) -> None:
        async def run() -> None:
            try:
                with anyio.CancelScope(shield=True):
                    await func(*args)
            except Exception as exc:
                self.error = exc
            finally:
                self._handshake.cancel()

        self._task_group.start_soon(run, name="trio-websocket reader")


class _TrioWebSocketTransport(StackOwned):
    """trio-websocket over a TCP (+TLS) stream we open ourselves.

    We open TCP and run the TLS handshake before handing the stream over, so a
    certificate that does not verify fails at once with its real cause (inside
    trio-websocket it only shows up as a hang until its connect timeout).
    """

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        max_size: int,
        open_timeout: float,
        proxy: Proxy | None,
    ) -> None:
        try:
            import trio_websocket  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the install
            raise ValueError(
                'transport="trio-websocket" needs the trio extra: pip install "relay-anyio[trio]"'
            ) from None
        self._url = url
        tls, self._host, self._port, self._resource = split_url(url)
        self._ssl_context = ssl_context if tls else None
        self._max_size = max_size
        self._open_timeout = open_timeout
        self._proxy = proxy

    async def __aenter__(self) -> _TrioWebSocketAdapter:
        if _backend_name() != "trio":
            raise ValueError('transport="trio-websocket" only runs under trio')
        return await self._enter(self._opened())

    @asynccontextmanager
    async def _opened(self) -> AsyncIterator[_TrioWebSocketAdapter]:
        async with owned_task_group() as task_group:
            try:
                adapter = _TrioWebSocketAdapter(await self._open(task_group))
            except BaseException:
                task_group.cancel_scope.cancel()
                raise
            try:
                yield adapter
            finally:
                try:
                    # Also closes the socket, which trio-websocket leaves open when
                    # the server closed first (a client "waits for the server's TCP
                    # close"), and so ends its reader task.
                    await adapter.aclose()
                finally:
                    task_group.cancel_scope.cancel()

    async def _open(self, task_group: anyio.abc.TaskGroup) -> Any:
        import trio
        from trio_websocket import wrap_client_stream

        host, port, proxy = self._host, self._port, self._proxy
        where = f"{host}:{port}"
        stream: Any = None
        try:
            with opening(
                host,
                port,
                phase="TCP connect",
                timeout=self._open_timeout,
                proxy=proxy.url if proxy is not None else None,
            ) as attempt:
                if proxy is None:
                    stream = await trio.open_tcp_stream(host, port)
                else:
                    with proxy_phase(proxy.url, authority(host, port), "connect"):
                        stream = await trio.open_tcp_stream(proxy.host, proxy.port)
                    tcp = stream

                    async def receive() -> bytes:
                        return await tcp.receive_some(4096)  # type: ignore[no-any-return]

                    await tunnel(proxy, host, port, tcp.send_all, receive)
                if self._ssl_context is not None:
                    attempt.phase = TLS_PHASE
                    stream = trio.SSLStream(
                        stream, self._ssl_context, server_hostname=host, https_compatible=True
                    )
                    await stream.do_handshake()
                attempt.phase = HANDSHAKE_PHASE
                host_header = host if port in (80, 443) else where
                with anyio.CancelScope() as handshake:
                    reader = _ReaderNursery(task_group, handshake)
                    return await wrap_client_stream(
                        reader,  # type: ignore[arg-type]  # duck-typed nursery
                        stream,
                        host_header,
                        self._resource,
                        message_queue_size=256,
                        max_message_size=self._max_size,
                    )
                raise trio_websocket_open_failed(where, reader.error)
            raise AssertionError("unreachable: opening() raises when the body did not return")
        except BaseException:
            if stream is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.aclose_forcefully(stream)
            raise


def _backend_name() -> str:
    import sniffio

    return sniffio.current_async_library()


class TransportContext(Protocol):
    """What ``open_transport`` returns: entering opens the link, leaving closes it."""

    async def __aenter__(self) -> MessageTransport: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


def open_transport(
    url: str,
    *,
    transport: TransportName = "native",
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    proxy: Proxy | None = None,
) -> TransportContext:
    """An async context manager that opens ``url`` and closes it on exit.

    Configuration errors (a bad URL, an unknown transport, a TLS context that does
    not verify) raise ``ValueError`` here, before any I/O; failures to open raise
    ``TransportError`` on entry (``fatal`` when retrying cannot help). ``proxy`` (a
    validated ``relay_anyio._proxy.Proxy``) tunnels the connection through an HTTP
    proxy on either transport; which proxy applies is decided by the configuration.
    """
    tls = split_url(url)[0]
    transport = canonical_transport(transport)
    if tls:
        if ssl_context is None:
            ssl_context = build_ssl_context()
        check_verifying_context(ssl_context)
    else:
        ssl_context = None
    if transport == "native":
        return _NativeTransport(url, ssl_context, max_message_size, open_timeout, proxy)
    return _TrioWebSocketTransport(url, ssl_context, max_message_size, open_timeout, proxy)
