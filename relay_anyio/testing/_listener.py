"""Where clients reach the fake server: a TCP listener on loopback, TLS, the handshake.

The listener knows nothing of RELAY: it accepts a TCP connection, wraps it in TLS
when the server was made with ``tls=True`` (a ``trustme`` test CA signs the
certificate), runs the WebSocket opening handshake and hands the ``WebSocket`` on.
A connection that fails before that is dropped quietly, as a real server would.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream

from .._errors import ConnectionLost, ProtocolError
from .._websocket import WebSocket, accept_websocket

if TYPE_CHECKING:
    import trustme

__all__ = ["Listener", "make_tls"]

logger = logging.getLogger("relay_anyio.testing")

#: What the listener hands each accepted WebSocket to; it serves it until it closes.
OnWebSocket = Callable[[WebSocket], Awaitable[None]]


class Listener:
    """A listening socket and the TLS material of one server."""

    def __init__(self, *, tls: bool, host: str) -> None:
        self._port: int | None = None
        self.ca: trustme.CA | None = None
        self._server_ssl: ssl.SSLContext | None = None
        if tls:
            self.ca, self._server_ssl = make_tls(host)

    @property
    def port(self) -> int | None:
        """The port listened on, None before ``listening``."""
        return self._port

    @asynccontextmanager
    async def listening(
        self, host: str, port: int, on_websocket: OnWebSocket
    ) -> AsyncIterator[anyio.abc.TaskGroup]:
        """Listen on ``host:port`` (0: a free port) until the returned group is cancelled.

        The group also runs each connection's handler; the caller may start its own
        background work in it.
        """
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        async with listener, anyio.create_task_group() as tg:
            self._port = listener.extra(SocketAttribute.local_port)
            tg.start_soon(listener.serve, lambda tcp: self._accept(tcp, on_websocket), tg)
            yield tg

    async def _accept(self, tcp: anyio.abc.SocketStream, on_websocket: OnWebSocket) -> None:
        stream = await self._secure(tcp)
        if stream is None:
            return
        try:
            ws = await accept_websocket(stream)
        except (ConnectionLost, ProtocolError) as exc:
            logger.debug("WebSocket handshake failed: %s", exc)
            return
        await on_websocket(ws)

    async def _secure(self, tcp: anyio.abc.SocketStream) -> anyio.abc.ByteStream | None:
        if self._server_ssl is None:
            return tcp
        try:
            return await TLSStream.wrap(
                tcp, server_side=True, ssl_context=self._server_ssl, standard_compatible=False
            )
        except BaseException as exc:
            await anyio.aclose_forcefully(tcp)
            if isinstance(exc, OSError | anyio.BrokenResourceError | anyio.EndOfStream):
                logger.debug("TLS handshake failed: %r", exc)
                return None
            raise


def make_tls(host: str) -> tuple[trustme.CA, ssl.SSLContext]:
    """A fresh test CA and a server context with a certificate for loopback and ``host``."""
    try:
        import trustme
    except ImportError as exc:  # an optional extra
        raise ImportError(
            "FakeRelayServer(tls=True) needs trustme: pip install 'relay-anyio[testing]'"
        ) from exc
    ca = trustme.CA()
    names = dict.fromkeys(("localhost", "127.0.0.1", host))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return ca, context
