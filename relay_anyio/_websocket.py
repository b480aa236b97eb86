"""WebSocket over any anyio byte stream, both roles: a handshake engine and a frame codec.

This is the only module that knows the WebSocket engine, so it can be swapped here
without touching the session. It serves the client (``open_websocket``,
``connect_websocket``) and the fake server (``accept_websocket``), over TCP,
TLS or an in-memory stream.

Engine. The opening handshake runs on the sans-I/O protocol of ``websockets``
(``ClientProtocol`` / ``ServerProtocol``), stopped right after it by
``_HandshakeOnly``; the bytes that followed it, and everything after, go to our
own codec, ``relay_anyio._frames``, which measured several times faster than both
``websockets`` and wsproto (figures: ``benchmarks/README.md``, "WebSocket engines").
The codec answers pings, echoes close frames, reassembles fragments,
validates UTF-8 and enforces the message size limit; this module adds the anyio I/O.

Reads return every complete message of one socket read as a batch, so the session can
answer all the event acks of that read with one write.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Generator, Sequence
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.abc import ByteStream
from websockets.client import ClientProtocol
from websockets.http11 import Request, Response
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from ._errors import ConnectionLost, ProtocolError
from ._frames import DEFAULT_MAX_MESSAGE_SIZE, FrameCodec
from ._neterrors import (
    CA_FILE_ENV,
    HANDSHAKE_PHASE,
    STREAM_GONE,
    client_left_errors,
    handshake_errors,
    handshake_failed,
    opening,
)
from ._netstream import connect_stream
from ._proxy import Proxy

__all__ = [
    "CA_FILE_ENV",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "WebSocket",
    "accept_websocket",
    "build_ssl_context",
    "check_verifying_context",
    "connect_websocket",
    "open_websocket",
    "split_url",
]

logger = logging.getLogger("relay_anyio.websocket")


def build_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The default verifying client context, plus ``SIGNALWIRE_RELAY_CA_FILE`` if set.

    The one place the default context is built: every ``wss://`` connection opened
    without an explicit ``ssl_context`` (the client with ``host=``/``SIGNALWIRE_SPACE``
    or ``url=``, either transport, ``connect_websocket`` on its own) uses it. As
    in the official client, the extra bundle is trusted *in addition to* the system
    store, and hostname checking stays on. An unreadable bundle is a ``ValueError``
    naming the variable.
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


_READ_SIZE = 65536
_CLOSE_TIMEOUT = 2.0
#: Bytes of frames that may queue behind a write in progress (see WebSocket).
_OUTBOX_LIMIT = 1024 * 1024
#: How long a polite close waits for a write in progress before giving up on it.
_CLOSE_LOCK_WAIT = 0.25


class _EngineLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets engine's logger, with its DEBUG output switched off.

    At DEBUG, websockets logs every frame it handles with the start and the end of its
    payload, unredacted: the end of a ``signalwire.connect`` is where the token or the
    ``authorization_state`` sits. It only runs the handshake now, but stays muted
    should it ever see frames again. The session logs frames itself, redacted; the
    engine keeps its INFO and above.
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_CLIENT_ENGINE_LOGGER = _EngineLogger(logging.getLogger("websockets.client"), {})
_SERVER_ENGINE_LOGGER = _EngineLogger(logging.getLogger("websockets.server"), {})


class _HandshakeOnly(Protocol):
    """Stops the ``websockets`` protocol at the end of the opening handshake.

    ``ClientProtocol.parse`` and ``ServerProtocol.parse`` read the HTTP message, then
    go on with ``super().parse()``, the frame parser. Placed after them in the MRO,
    this class is that ``super()``: it parses nothing, so the bytes that followed the
    handshake in the same read stay in ``reader.buffer``, for our codec.
    """

    def parse(self) -> Generator[None]:
        while True:
            yield


class _ClientHandshake(ClientProtocol, _HandshakeOnly):
    pass


class _ServerHandshake(ServerProtocol, _HandshakeOnly):
    pass


# Backend exceptions that mean "this byte stream is gone" (the error boundary's list).
_STREAM_GONE = STREAM_GONE


class WebSocket:
    """One open WebSocket connection.

    ``receive_batch`` must be called from one task at a time (the reader); the send
    methods may be called from any task: they are serialised by a lock so frames never
    interleave on the wire.

    Group commit. While one task writes, frames sent by others queue behind its write
    (up to ``_OUTBOX_LIMIT`` bytes) and that writer sends them before it lets go of
    the lock, so concurrent senders (handlers' requests, the reader's acks) share one
    write instead of taking turns, and a send returns as soon as its frames are
    queued. Past the limit a sender waits for the lock (backpressure). A write that
    fails loses the queued frames with the connection, which is then closed: every
    request in flight on it fails.

    Writes are shielded from cancellation. A write cancelled half-way (trio's socket
    send, and TLS on any backend, can stop after some bytes) would leave a partial
    frame on the wire and corrupt every later frame, so a cancelled sender only stops
    waiting for the lock; once its bytes go out they all go out. A write that blocks
    because the peer stopped reading ends when the connection is closed or aborted
    from another task (the keepalive, the session shutting down).
    """

    def __init__(self, stream: ByteStream, codec: FrameCodec) -> None:
        self._stream = stream
        self._codec = codec
        # fast_acquire: an uncontended acquire does not yield. The write under it is
        # a checkpoint anyway (or, on the native asyncio stream, never blocks).
        self._send_lock = anyio.Lock(fast_acquire=True)
        #: A send that can stop half-way (anyio's TLS stream, trio sockets) must be
        #: shielded; the native asyncio stream writes an item whole or not at all.
        self._shield_writes = not getattr(stream, "sends_whole_items", False)
        self._outbox: list[bytes] = []
        self._outbox_size = 0
        self._pending: list[str | bytes] = []
        self._closed = False
        #: Close code and reason received from (or sent to) the peer, once closed.
        self.close_code: int | None = None
        self.close_reason: str = ""

    @property
    def stream(self) -> ByteStream:
        """The underlying byte stream (for TLS details in tests)."""
        return self._stream

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_close_code(self) -> int | None:
        """The code of the close frame the peer sent; None if it sent none (an abort)."""
        close = self._codec.close_received
        return close[0] if close is not None else None

    # -- receiving -------------------------------------------------------------------

    async def receive_batch(self) -> list[str | bytes]:
        """Wait for at least one complete message; return all messages of that read.

        Text messages come back as ``str``, binary ones as ``bytes``. Pings are
        answered here. Raises ``ConnectionLost`` once the connection is closed
        (by either side, with or without a close handshake) and
        ``ProtocolError`` if the peer breaks RFC 6455 or the size limit.
        Messages that arrived before a close are returned before it is reported.
        """
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        while True:
            if self._closed:
                raise self._lost()
            try:
                data = await self._stream.receive(_READ_SIZE)
            except _STREAM_GONE as exc:
                await self._mark_closed(1006, f"socket closed ({type(exc).__name__})")
                raise self._lost() from None
            batch = await self._process(data)
            if batch:
                return batch

    async def _process(self, data: bytes) -> list[str | bytes]:
        """Decode one read; write the codec's replies; report a close or a violation."""
        codec = self._codec
        batch = codec.receive(data)
        close = codec.close_received
        if close is not None:
            self.close_code, self.close_reason = close
        replies = codec.data_to_send()  # pongs, the close echo, a failure's close frame
        if replies:
            try:
                # Not queued: a close echo must be out before the stream is closed.
                async with self._send_lock:
                    await self._write(replies)
            except ConnectionLost:
                # The link died while we answered a ping or echoed a close; the
                # messages of this read arrived all the same: hand them over first.
                if batch and codec.error is None:
                    return batch
                raise
        error = codec.error
        if error is not None:
            reason = f"{type(error).__name__}: {error}"
            logger.warning("closing WebSocket: %s", reason)
            self.close_code = error.code
            self.close_reason = reason
            await self._mark_closed(error.code, reason)
            raise ProtocolError(reason)
        if close is not None:
            await self._mark_closed(*close)
            if not batch:
                raise self._lost()
        return batch

    # -- sending ---------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message; ``ConnectionLost`` once the link is closed."""
        self._check_open()
        await self._send(self._codec.encode_text(text))

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send several text messages in one write."""
        self._check_open()
        await self._send(self._codec.encode_texts(texts))

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message (RELAY sends text; tests and other peers may not)."""
        self._check_open()
        await self._send(self._codec.encode_binary(data))

    async def send_raw_bytes(self, data: bytes) -> None:
        """Write bytes to the socket as they are: for fault injection in tests only."""
        self._check_open()
        await self._send(data)

    async def _send(self, data: bytes) -> None:
        """Queue ``data`` behind the write in progress, or write it (see the class)."""
        if self._send_lock.locked() and self._outbox_size < _OUTBOX_LIMIT:
            self._outbox.append(data)
            self._outbox_size += len(data)
            return
        async with self._send_lock:
            await self._write(data)

    def _take_outbox(self, data: bytes = b"") -> bytes:
        """The queued frames, then ``data``; the queue is emptied."""
        if not self._outbox:
            return data
        self._outbox.append(data)
        joined = b"".join(self._outbox)
        self._outbox.clear()
        self._outbox_size = 0
        return joined

    def _check_open(self) -> None:
        # Not only "not closed": after a close frame either way (a protocol error
        # sends one) no data frame may follow (RFC 6455 5.5.1).
        if self._closed or not self._codec.open:
            raise self._lost()

    async def _write(self, data: bytes) -> None:
        """Write ``data`` whole, then what queued meanwhile; the caller holds the lock.

        Frames queued by others always go out, even when this writer is cancelled
        (shielded: their senders have returned); its own frames on a stream that
        needs no shield go whole or, cancelled while waiting to drain, not at all.
        """
        queued = bool(self._outbox)
        data = self._take_outbox(data)
        if not data or self._closed:
            return
        try:
            if self._shield_writes or queued:
                with anyio.CancelScope(shield=True):
                    await self._write_all(data)
            else:
                try:
                    await self._stream.send(data)  # our own frames: whole or not at all
                finally:
                    if self._outbox:  # others' frames: their senders have returned
                        with anyio.CancelScope(shield=True):
                            await self._write_all(self._take_outbox())
        except _STREAM_GONE as exc:
            self._take_outbox()  # lost with the connection
            with anyio.CancelScope(shield=True):
                await self._mark_closed(1006, f"send failed ({type(exc).__name__})")
            raise self._lost() from None

    async def _write_all(self, data: bytes) -> None:
        while data and not self._closed:
            await self._stream.send(data)
            data = self._take_outbox()

    # -- closing ---------------------------------------------------------------------

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close politely: send a close frame (bounded wait), then close the stream.

        If another write holds the lock for more than a moment it is blocked on a
        peer that stopped reading: no close frame can get through, so the stream is
        closed at once, which also ends that write.
        """
        if self._closed:
            return
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            with anyio.move_on_after(_CLOSE_LOCK_WAIT) as waited:
                await self._send_lock.acquire()
            if not waited.cancelled_caught:
                try:
                    close = self._codec.encode_close(code, reason) if self._codec.open else b""
                    data = self._take_outbox(close) if close else b""
                    if data and not self._closed:
                        try:
                            await self._stream.send(data)
                        except _STREAM_GONE:
                            pass
                finally:
                    self._send_lock.release()
        await self._mark_closed(code, reason)

    async def abort(self) -> None:
        """Drop the connection without a close handshake (a dead network, a crash).

        Needs no lock, so it also ends a write blocked on a peer that stopped reading.
        """
        await self._mark_closed(1006, "aborted")

    async def _mark_closed(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        await anyio.aclose_forcefully(self._stream)

    def _lost(self) -> ConnectionLost:
        code = self.close_code
        if code is None:
            close = self._codec.close_received
            code = close[0] if close is not None else 1006
        reason = f", {self.close_reason}" if self.close_reason else ""
        return ConnectionLost(f"WebSocket closed (code {code}{reason})", close_code=code)


# -- handshakes ----------------------------------------------------------------------


async def open_websocket(
    stream: ByteStream,
    host: str,
    resource: str = "/",
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocket:
    """Run the client opening handshake over ``stream`` (which is closed on failure).

    ``host`` is sent as the ``Host`` header (``name`` or ``name:port``). A peer that
    answers with something other than an HTTP 101 fails at once with a
    ``TransportError`` (4xx other than 408/429 are fatal: retrying cannot help).
    """
    proto = _ClientHandshake(parse_uri(f"ws://{host}{resource}"), logger=_CLIENT_ENGINE_LOGGER)
    try:
        with handshake_errors(host):
            proto.send_request(proto.connect())
            await stream.send(b"".join(proto.data_to_send()))
            while True:
                data = await stream.receive(_READ_SIZE)
                proto.receive_data(data)
                events = proto.events_received()
                response = events[0] if events and isinstance(events[0], Response) else None
                if proto.handshake_exc is not None:
                    # Without a response event the peer did not even speak HTTP; the
                    # engine then waits for EOF forever, so stop here.
                    status = response.status_code if response is not None else 0
                    cause = proto.handshake_exc.__cause__
                    detail = f"{proto.handshake_exc}" + (f": {cause}" if cause else "")
                    raise handshake_failed(host, status, detail)
                if response is None:
                    continue
                return await _start(stream, proto, FrameCodec(True, max_message_size))
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def accept_websocket(
    stream: ByteStream, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> WebSocket:
    """Run the server side of the opening handshake over ``stream``."""
    proto = _ServerHandshake(logger=_SERVER_ENGINE_LOGGER)
    try:
        while True:
            with client_left_errors():
                data = await stream.receive(_READ_SIZE)
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    response = proto.accept(event)
                    proto.send_response(response)
                    await stream.send(b"".join(proto.data_to_send()))
                    if proto.handshake_exc is not None:
                        raise ProtocolError(f"bad WebSocket handshake: {proto.handshake_exc}")
                    return await _start(stream, proto, FrameCodec(False, max_message_size))
            if proto.parser_exc is not None:
                raise ProtocolError(f"bad WebSocket handshake: {proto.parser_exc}")
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _start(stream: ByteStream, proto: Protocol, codec: FrameCodec) -> WebSocket:
    """The WebSocket after a handshake; frames that came with it are decoded now."""
    ws = WebSocket(stream, codec)
    leftover = bytes(proto.reader.buffer)  # kept there by _HandshakeOnly
    if leftover:
        ws._pending = await ws._process(leftover)
    return ws


def split_url(url: str) -> tuple[bool, str, int, str]:
    """``ws[s]://host[:port][/path]`` -> (tls, host, port, resource)."""
    expected = "expected ws://host[:port] or wss://host[:port]"
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"Invalid RELAY URL {url!r}: {expected}")
    try:
        explicit_port = parts.port
    except ValueError as exc:
        raise ValueError(f"Invalid RELAY URL {url!r}: {exc}; {expected}") from None
    tls = parts.scheme == "wss"
    port = explicit_port or (443 if tls else 80)
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return tls, parts.hostname, port, resource


async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    open_timeout: float | None = None,
    proxy: Proxy | None = None,
) -> WebSocket:
    """Open TCP (and TLS for ``wss``), then the WebSocket handshake.

    Certificate and hostname verification are never disabled for ``wss``: a context
    without them is refused (``ValueError``), and a verification failure is a fatal
    ``TransportError`` (no plaintext fallback, no retry); other network failures
    are retryable ones. ``open_timeout`` bounds the three phases together, so a peer
    that accepts and then stalls cannot hang the reconnect loop. With ``proxy``, TCP
    goes through its CONNECT tunnel and TLS runs inside it, verified as without one.
    """
    tls, host, port, resource = split_url(url)
    host_header = host if port == (443 if tls else 80) else f"{host}:{port}"
    ctx: ssl.SSLContext | None = None
    if tls:
        ctx = ssl_context or build_ssl_context()
        check_verifying_context(ctx)
    with opening(
        host,
        port,
        phase="TCP connect" if ctx is None else "TCP connect and TLS handshake",
        timeout=open_timeout,
        proxy=proxy.url if proxy is not None else None,
        host_header=host_header,
    ) as attempt:
        stream = await connect_stream(
            host, port, ssl_context=ctx, server_hostname=host, proxy=proxy
        )
        attempt.phase = HANDSHAKE_PHASE
        return await open_websocket(
            stream, host_header, resource, max_message_size=max_message_size
        )
    raise AssertionError("unreachable: opening() raises when the body did not return")


def check_verifying_context(ctx: ssl.SSLContext) -> None:
    """Refuse a client TLS context that would not verify the certificate and hostname."""
    if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
        raise ValueError(
            "refusing a TLS context without certificate and hostname checks: "
            "RELAY is only reached over verified TLS"
        )
