"""WebSocket over any anyio byte stream, both roles, on a sans-I/O engine.

This is the only module that knows the WebSocket engine, so the engine (or a frame
codec of our own, see the performance issue) can be swapped here without touching the
session. It serves the client (:func:`open_websocket`, :func:`connect_websocket`) and
the fake server (:func:`accept_websocket`), over TCP, TLS or an in-memory stream.

Engine choice. Both candidates were measured with ``python benchmarks/ws_engines.py``
(client side, 316-byte JSON event frames in 64 KiB reads, 79-byte masked acks; median
of 5 runs on the 2-core dev machine, 2026-11-24):

=====================  ===========  ====================
workload               wsproto 1.3  websockets 17.4 (C)
=====================  ===========  ====================
decode, frames/s          163 518          467 362
encode, frames/s          242 404          663 265
loopback asyncio, f/s     162 239          416 542
loopback trio, f/s        157 966          411 001
=====================  ===========  ====================

The sans-I/O protocol of ``websockets`` is 2.6-2.9x faster on every row, so it is the
engine. (A bare hand-written decoder reaches 2.7 M frames/s; that headroom is for the
performance work.) The engine answers pings, echoes close frames and enforces the
message size limit itself; this module adds fragment reassembly, UTF-8 decoding and the
anyio I/O.

Reads return every complete message of one socket read as a batch, so the session can
answer all the event acks of that read with one write.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from ._errors import ConnectionLost, ProtocolError, TransportError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "WebSocket",
    "accept_websocket",
    "connect_websocket",
    "open_websocket",
    "split_url",
]

logger = logging.getLogger("relay_anyio.websocket")

#: The official client's inbound limit (10 MiB); a bigger message closes the link (1009).
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
_READ_SIZE = 65536
_CLOSE_TIMEOUT = 2.0
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONT = Opcode.CONT
_CLOSE = Opcode.CLOSE

# Backend exceptions that mean "this byte stream is gone".
_STREAM_GONE: tuple[type[BaseException], ...] = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,  # includes ssl.SSLError and ConnectionResetError
)


class WebSocket:
    """One open WebSocket connection.

    ``receive_batch`` must be called from one task at a time (the reader); the send
    methods may be called from any task: they are serialised by a lock so frames never
    interleave on the wire.
    """

    def __init__(self, stream: anyio.abc.ByteStream, protocol: Protocol) -> None:
        self._stream = stream
        self._proto = protocol
        self._send_lock = anyio.Lock()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._pending: list[str | bytes] = []
        self._closed = False
        #: Close code and reason received from (or sent to) the peer, once closed.
        self.close_code: int | None = None
        self.close_reason: str = ""

    @property
    def stream(self) -> anyio.abc.ByteStream:
        """The underlying byte stream (for TLS details in tests)."""
        return self._stream

    @property
    def closed(self) -> bool:
        return self._closed

    # -- receiving -------------------------------------------------------------------

    async def receive_batch(self) -> list[str | bytes]:
        """Wait for at least one complete message; return all messages of that read.

        Text messages come back as ``str``, binary ones as ``bytes``. Pings are
        answered here. Raises :class:`ConnectionLost` once the connection is closed
        (by either side, with or without a close handshake) and
        :class:`ProtocolError` if the peer breaks RFC 6455 or the size limit.
        """
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        while True:
            if self._closed:
                raise ConnectionLost(self._closed_message())
            try:
                data = await self._stream.receive(_READ_SIZE)
            except _STREAM_GONE as exc:
                await self._mark_closed(1006, f"socket closed ({type(exc).__name__})")
                raise ConnectionLost(self._closed_message()) from None
            self._proto.receive_data(data)
            batch = await self._process()
            if batch:
                return batch

    async def _process(self) -> list[str | bytes]:
        """Turn the engine's parsed frames into messages; flush its replies."""
        batch: list[str | bytes] = []
        error: str | None = None
        for frame in cast("list[Frame]", self._proto.events_received()):
            opcode = frame.opcode
            try:
                if opcode is _TEXT and frame.fin:
                    batch.append(frame.data.decode())  # type: ignore[union-attr]  # always bytes
                elif opcode is _TEXT or opcode is _BINARY:
                    if frame.fin:
                        batch.append(bytes(frame.data))
                    else:
                        self._fragment_opcode = opcode
                        self._fragments = [bytes(frame.data)]
                elif opcode is _CONT:
                    self._fragments.append(bytes(frame.data))
                    if frame.fin:
                        data = b"".join(self._fragments)
                        self._fragments = []
                        batch.append(data.decode() if self._fragment_opcode is _TEXT else data)
                elif opcode is _CLOSE:
                    close = self._proto.close_rcvd
                    self.close_code = close.code if close else 1005
                    self.close_reason = close.reason if close else ""
            except UnicodeDecodeError as exc:
                self._proto.fail(1007, "invalid UTF-8 in a text message")
                error = f"invalid UTF-8 in a text message: {exc.reason}"
                break
        parser_exc = self._proto.parser_exc
        if error is None and parser_exc is not None:
            error = f"{type(parser_exc).__name__}: {parser_exc}"
        await self._flush()
        if error is not None:
            logger.warning("closing WebSocket: %s", error)
            sent = self._proto.close_sent  # the close frame the engine answered with
            self.close_code = sent.code if sent is not None else 1002
            self.close_reason = error
            await self._mark_closed(self.close_code, error)
            raise ProtocolError(error)
        if self.close_code is not None or self._proto.state is State.CLOSED:
            await self._mark_closed(self.close_code or 1006, self.close_reason)
            if not batch:
                raise ConnectionLost(self._closed_message())
        return batch

    async def _flush(self) -> None:
        data = b"".join(self._proto.data_to_send())  # b"" marks EOF: closing handles it
        if data:
            await self._send_raw(data)

    # -- sending ---------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        if self._closed:
            raise ConnectionLost(self._closed_message())
        self._proto.send_text(text.encode())
        await self._flush()

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send several text messages in one write."""
        if self._closed:
            raise ConnectionLost(self._closed_message())
        send = self._proto.send_text
        for text in texts:
            send(text.encode())
        await self._flush()

    async def send_bytes(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionLost(self._closed_message())
        self._proto.send_binary(data)
        await self._flush()

    async def send_raw_bytes(self, data: bytes) -> None:
        """Write bytes to the socket as they are: for fault injection in tests only."""
        await self._send_raw(data)

    async def _send_raw(self, data: bytes) -> None:
        try:
            async with self._send_lock:
                await self._stream.send(data)
        except _STREAM_GONE as exc:
            await self._mark_closed(1006, f"send failed ({type(exc).__name__})")
            raise ConnectionLost(self._closed_message()) from None

    # -- closing ---------------------------------------------------------------------

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close politely: send a close frame (bounded wait), then close the stream."""
        if self._closed:
            return
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            if self._proto.state is State.OPEN:
                self._proto.send_close(code, reason)
            data = b"".join(self._proto.data_to_send())
            if data:
                try:
                    async with self._send_lock:
                        await self._stream.send(data)
                except _STREAM_GONE:
                    pass
        await self._mark_closed(code, reason)

    async def abort(self) -> None:
        """Drop the connection without a close handshake (a dead network, a crash)."""
        await self._mark_closed(1006, "aborted")

    async def _mark_closed(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        await anyio.aclose_forcefully(self._stream)

    def _closed_message(self) -> str:
        reason = f", {self.close_reason}" if self.close_reason else ""
        return f"WebSocket closed (code {self.close_code}{reason})"


# -- handshakes ----------------------------------------------------------------------


async def open_websocket(
    stream: anyio.abc.ByteStream,
    host: str,
    resource: str = "/",
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocket:
    """Run the client opening handshake over ``stream`` (which is closed on failure).

    ``host`` is sent as the ``Host`` header (``name`` or ``name:port``).
    """
    proto = ClientProtocol(parse_uri(f"ws://{host}{resource}"), max_size=max_message_size)
    try:
        proto.send_request(proto.connect())
        await stream.send(b"".join(proto.data_to_send()))
        while True:
            try:
                data = await stream.receive(_READ_SIZE)
            except _STREAM_GONE as exc:
                raise TransportError(
                    f"connection closed during the WebSocket handshake with {host} "
                    f"({type(exc).__name__})"
                ) from None
            proto.receive_data(data)
            events = proto.events_received()
            if not events or not isinstance(events[0], Response):
                continue
            response = events[0]
            if proto.handshake_exc is not None:
                status = response.status_code
                raise TransportError(
                    f"WebSocket handshake with {host} failed: HTTP {status} "
                    f"({proto.handshake_exc})",
                    fatal=400 <= status < 500 and status not in (408, 429),
                )
            ws = WebSocket(stream, proto)
            # Frames may follow the 101 response in the same read.
            proto.events.extend(events[1:])
            if len(events) > 1:
                ws._pending = await ws._process()
            return ws
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def accept_websocket(
    stream: anyio.abc.ByteStream, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> WebSocket:
    """Run the server side of the opening handshake over ``stream``."""
    proto = ServerProtocol(max_size=max_message_size)
    try:
        while True:
            try:
                data = await stream.receive(_READ_SIZE)
            except _STREAM_GONE:
                raise ConnectionLost("client left during the WebSocket handshake") from None
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    response = proto.accept(event)
                    proto.send_response(response)
                    await stream.send(b"".join(proto.data_to_send()))
                    if proto.handshake_exc is not None:
                        raise ProtocolError(f"bad WebSocket handshake: {proto.handshake_exc}")
                    return WebSocket(stream, proto)
            if proto.parser_exc is not None:
                raise ProtocolError(f"bad WebSocket handshake: {proto.parser_exc}")
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


def split_url(url: str) -> tuple[bool, str, int, str]:
    """``ws[s]://host[:port][/path]`` -> (tls, host, port, resource)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"Invalid RELAY URL {url!r}: expected ws://host[:port] or wss://host")
    tls = parts.scheme == "wss"
    port = parts.port or (443 if tls else 80)
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return tls, parts.hostname, port, resource


async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocket:
    """Open TCP (and TLS for ``wss``), then the WebSocket handshake.

    Certificate and hostname verification are never disabled for ``wss``: a
    verification failure is a fatal :class:`TransportError` (no plaintext fallback,
    no retry); other network failures are retryable ones.
    """
    tls, host, port, resource = split_url(url)
    host_header = host if port == (443 if tls else 80) else f"{host}:{port}"
    try:
        stream: anyio.abc.ByteStream
        tcp = await anyio.connect_tcp(host, port)
        if tls:
            ctx = ssl_context or ssl.create_default_context()
            if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
                await anyio.aclose_forcefully(tcp)
                raise TransportError(
                    "refusing a TLS context without certificate and hostname checks", fatal=True
                )
            try:
                stream = await TLSStream.wrap(
                    tcp, hostname=host, ssl_context=ctx, standard_compatible=False
                )
            except BaseException:
                await anyio.aclose_forcefully(tcp)
                raise
        else:
            stream = tcp
    except ssl.SSLCertVerificationError as exc:
        raise TransportError(
            f"TLS certificate verification failed for {host}:{port}: {exc.verify_message}. "
            "If the server uses a private CA, trust it with SIGNALWIRE_RELAY_CA_FILE.",
            fatal=True,
        ) from None
    except ssl.SSLError as exc:
        raise TransportError(f"TLS handshake with {host}:{port} failed: {exc}") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {host}:{port}: {exc}") from None
    return await open_websocket(stream, host_header, resource, max_message_size=max_message_size)
