"""Where clients reach the fake server: a TCP listener on loopback, TLS, the handshake.

The listener knows nothing of RELAY: it accepts a TCP connection, wraps it in TLS
when the server was made with ``tls=True`` (a ``trustme`` test CA signs the
certificate), runs the WebSocket opening handshake and hands the ``WebSocket`` on.
A connection that fails before that is dropped quietly, as a real server would.
Given an ``on_http`` handler, it first reads the request line: a request for
``/api/...`` (the REST API RELAY serves on the same host, e.g. tasks) goes there
with the bytes read, anything else to the handshake, which reads them again.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSStream

from .._errors import ConnectionLost, ProtocolError
from .._websocket import WebSocket, accept_websocket

if TYPE_CHECKING:
    import trustme

__all__ = ["Listener", "Replayed", "is_rest_request", "make_tls"]

logger = logging.getLogger("relay_anyio.testing")

#: What the listener hands each accepted WebSocket to; it serves it until it closes.
OnWebSocket = Callable[[WebSocket], Awaitable[None]]
#: What the listener hands a REST request to: the stream and the bytes already read.
OnHttp = Callable[[anyio.abc.ByteStream, bytes], Awaitable[None]]
#: How much of a request line is read to tell REST from a WebSocket handshake.
_REQUEST_LINE_LIMIT = 8192


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
        self, host: str, port: int, on_websocket: OnWebSocket, on_http: OnHttp | None = None
    ) -> AsyncIterator[anyio.abc.TaskGroup]:
        """Listen on ``host:port`` (0: a free port) until the returned group is cancelled.

        The group also runs each connection's handler; the caller may start its own
        background work in it. With ``on_http``, a request for ``/api/...`` goes there
        instead of to the WebSocket handshake (RELAY serves REST on the same host).
        """
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        async with listener, anyio.create_task_group() as tg:
            self._port = listener.extra(SocketAttribute.local_port)
            tg.start_soon(listener.serve, lambda tcp: self._accept(tcp, on_websocket, on_http), tg)
            yield tg

    async def _accept(
        self, tcp: anyio.abc.SocketStream, on_websocket: OnWebSocket, on_http: OnHttp | None
    ) -> None:
        secured = await self._secure(tcp)
        if secured is None:
            return
        stream: anyio.abc.ByteStream = secured
        if on_http is not None:
            head = await _request_line(secured)
            if head is None:
                return
            if is_rest_request(head):
                await on_http(secured, head)
                return
            stream = Replayed(secured, head)  # the handshake reads those bytes again
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


def is_rest_request(head: bytes) -> bool:
    """Whether the request line at the start of ``head`` asks for the REST API."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return len(parts) == 3 and parts[1].startswith(b"/api/")


class Replayed(anyio.abc.ByteStream):
    """A byte stream whose first bytes were already read: ``receive`` returns them first."""

    def __init__(self, stream: anyio.abc.ByteStream, data: bytes) -> None:
        self._stream = stream
        self._data = data

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._data:
            chunk, self._data = self._data[:max_bytes], self._data[max_bytes:]
            return chunk
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self._stream.extra_attributes


async def _request_line(stream: anyio.abc.ByteStream) -> bytes | None:
    """The first bytes of a connection, up to its first line; None if it ends first."""
    data = b""
    try:
        while b"\r\n" not in data and len(data) < _REQUEST_LINE_LIMIT:
            data += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        await anyio.aclose_forcefully(stream)
        return None
    except BaseException:  # cancelled (the server stops): the socket must not leak
        await anyio.aclose_forcefully(stream)
        raise
    return data


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
