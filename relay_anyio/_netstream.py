"""The client's TCP (+TLS) byte stream, native to the event loop where that pays.

Why. A RELAY round trip is small frames over TLS, so the byte stream's cost per
``receive``/``send`` counts. On asyncio, anyio's path (``anyio.connect_tcp`` +
``TLSStream``) runs the TLS record loop in Python over a MemoryBIO on every call,
toggles ``pause_reading``/``resume_reading`` (``epoll_ctl`` syscalls) around every
blocking receive and adds a loop iteration after every send. ``_AsyncioStream``
is one ``asyncio.Protocol`` on ``loop.create_connection`` (asyncio's own TLS),
always reading into a buffer that wakes the one receiver.

On asyncio this stream costs less client CPU per round trip than anyio's path and
moves more bytes per second; on trio, ``trio.SSLStream`` costs more than anyio's
``TLSStream``, so trio (and any other event loop) keeps anyio's path. Figures:
``benchmarks/README.md``, "Byte streams" (``python benchmarks/streams.py``).

Errors are anyio's: ``EndOfStream`` once the peer's data is consumed,
``BrokenResourceError`` (chaining the ``OSError``) when the connection is lost,
``ClosedResourceError`` after ``aclose()``. Connecting raises what anyio's path does
(``ssl.SSLCertVerificationError``, ``ssl.SSLError``, ``socket.gaierror``, ``OSError``),
which the caller maps (``relay_anyio._neterrors``); through a proxy, a failure to
reach it or a refused tunnel is already a ``TransportError`` naming the proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from ._neterrors import proxy_phase
from ._proxy import Proxy, authority, connect_through, tunnel
from ._sync import current_async_library

__all__ = ["connect_stream"]

#: Reading pauses above this many buffered bytes and resumes below a quarter of it, so
#: a client that stops reading holds about this much (plus one read) in memory.
HIGH_WATER = 1024 * 1024
LOW_WATER = HIGH_WATER // 4
#: As ``anyio.connect_tcp``: the next address is tried when one has not connected by then.
HAPPY_EYEBALLS_DELAY = 0.25
#: How long ``aclose()`` waits for the write buffer and the TLS close_notify to go out
#: (and the peer to answer) before it drops the connection.
CLOSE_GRACE = 1.0


async def connect_stream(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str,
    proxy: Proxy | None = None,
) -> anyio.abc.ByteStream:
    """Open TCP to ``host:port`` (with TLS if ``ssl_context``, checking ``server_hostname``).

    With ``proxy``, TCP goes to the proxy and a CONNECT tunnel to ``host:port``; TLS
    then runs inside the tunnel, end to end with the RELAY host. TCP_NODELAY is set.
    As with anyio's ``standard_compatible=False``, a peer closing TCP without a TLS
    close_notify reads as ``EndOfStream``.
    """
    if current_async_library() == "asyncio":
        return await _AsyncioStream.connect(host, port, ssl_context, server_hostname, proxy)
    if proxy is None:
        tcp = await anyio.connect_tcp(host, port)
    else:
        tcp = await connect_through(proxy, host, port)
    if ssl_context is None:
        return tcp
    try:
        return await TLSStream.wrap(
            tcp, hostname=server_hostname, ssl_context=ssl_context, standard_compatible=False
        )
    except BaseException:
        await anyio.aclose_forcefully(tcp)
        raise


class _AsyncioStream(anyio.abc.SocketStream, asyncio.Protocol):
    """An anyio socket stream that is its own asyncio protocol.

    The transport reads all the time into a deque of chunks, pausing only for flow
    control (``HIGH_WATER``). ``send`` writes at once and waits only while the
    transport asks to pause writing, so it costs no loop iteration otherwise.
    """

    #: ``send`` hands an item to the transport whole, or (cancelled while waiting
    #: for the transport to drain) not at all: the WebSocket need not shield it.
    sends_whole_items = True

    def __init__(self, loop: asyncio.AbstractEventLoop, tls: bool) -> None:
        self._loop = loop
        self._tls = tls
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set at once
        self._chunks: deque[bytes] = deque()
        self._buffered = 0  # bytes received and not returned yet
        self._start = 0  # the bytes of _chunks[0] before this were returned already
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._lost = False
        self._exc: BaseException | None = None
        self._closed = False  # aclose() was called
        self._receiving = False
        self._sending = False
        self._waiter: asyncio.Future[None] | None = None  # the blocked receive
        self._drain: asyncio.Future[None] | None = None  # the send waiting for resume_writing
        self._closing: asyncio.Future[None] | None = None  # aclose() waiting for the end

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str,
        proxy: Proxy | None = None,
    ) -> _AsyncioStream:
        loop = asyncio.get_running_loop()
        if proxy is None:
            sock = await _connect_socket(loop, host, port)
        else:
            sock = await _tunnel_socket(loop, proxy, host, port)
        streams: list[_AsyncioStream] = []

        def protocol() -> _AsyncioStream:
            streams.append(cls(loop, ssl_context is not None))
            return streams[0]

        try:
            await loop.create_connection(
                protocol,
                sock=sock,
                ssl=ssl_context,
                server_hostname=server_hostname if ssl_context is not None else None,
            )
        except BaseException:
            if not streams:  # else the transport has the socket, and closes it
                sock.close()
            raise
        return streams[0]

    # -- asyncio.Protocol: called by the transport ------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        _wake(self._waiter)

    def eof_received(self) -> bool:
        self._eof = True
        _wake(self._waiter)
        return not self._tls  # TCP stays open for sending, as anyio's; TLS cannot

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._exc = exc
        for waiter in (self._waiter, self._drain, self._closing):
            _wake(waiter)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._drain)

    # -- anyio.abc.ByteStream ---------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if self._receiving:
            raise anyio.BusyResourceError("reading from")
        self._receiving = True
        try:
            if self._chunks and not self._closed:
                await asyncio.sleep(0)  # data is ready, but let a flood not starve others
            while not (self._chunks or self._eof or self._lost or self._closed):
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter  # cancellable: nothing is taken from the buffer yet
                finally:
                    self._waiter = None
        finally:
            self._receiving = False
        if self._closed:
            raise anyio.ClosedResourceError
        chunks = self._chunks
        if not chunks:
            if self._exc is not None:
                raise anyio.BrokenResourceError from self._exc
            raise anyio.EndOfStream
        head, start = chunks[0], self._start
        end = start + max_bytes
        if end < len(head):  # a slice of the first chunk; the rest stays, uncopied
            self._start = end
            data = head[start:end]
        else:  # the rest of the first chunk, joined with the next ones that fit
            chunks.popleft()
            self._start = 0
            parts = [head[start:] if start else head]
            size = len(parts[0])
            while chunks and size + len(chunks[0]) <= max_bytes:
                parts.append(chunks.popleft())
                size += len(parts[-1])
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._buffered -= len(data)
        if self._reading_paused and self._buffered <= LOW_WATER and not self._lost:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def send(self, item: bytes) -> None:
        if self._writing_paused and not (self._closed or self._lost):
            if self._sending:
                raise anyio.BusyResourceError("writing to")
            self._sending = True
            try:
                while self._writing_paused and not (self._closed or self._lost):
                    self._drain = self._loop.create_future()
                    try:
                        await self._drain  # cancellable: nothing of item is written yet
                    finally:
                        self._drain = None
            finally:
                self._sending = False
        if self._closed:
            raise anyio.ClosedResourceError
        if self._lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from self._exc
        self._transport.write(item)

    async def send_eof(self) -> None:
        if self._tls:
            raise NotImplementedError("send_eof() is not supported on TLS streams")
        if self._closed:
            raise anyio.ClosedResourceError
        if not self._lost:
            self._transport.write_eof()

    async def aclose(self) -> None:
        """Flush, send close_notify (TLS) and close; drop the connection if cancelled.

        Waits at most ``CLOSE_GRACE`` for that. Under ``anyio.aclose_forcefully``
        (a cancelled scope) the close_notify still goes out if the socket takes it.
        """
        if self._closed:
            return
        self._closed = True
        _wake(self._waiter)
        _wake(self._drain)
        if self._lost:
            return
        transport = self._transport
        transport.close()
        timer = self._loop.call_later(CLOSE_GRACE, transport.abort)
        try:
            while not self._lost:
                self._closing = self._loop.create_future()
                await self._closing
        except BaseException:
            transport.abort()
            raise
        finally:
            self._closing = None
            timer.cancel()

    @property
    def _raw_socket(self) -> socket.socket:
        return self._transport.get_extra_info("socket")  # type: ignore[no-any-return]

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes = dict(super().extra_attributes)
        tls: ssl.SSLObject | None = self._transport.get_extra_info("ssl_object")
        if tls is not None:
            attributes.update(
                {
                    TLSAttribute.alpn_protocol: tls.selected_alpn_protocol,
                    TLSAttribute.channel_binding_tls_unique: tls.get_channel_binding,
                    TLSAttribute.cipher: tls.cipher,
                    TLSAttribute.peer_certificate: lambda: tls.getpeercert(False),
                    TLSAttribute.peer_certificate_binary: lambda: tls.getpeercert(True),
                    TLSAttribute.server_side: lambda: False,
                    TLSAttribute.shared_ciphers: lambda: None,
                    TLSAttribute.standard_compatible: lambda: False,
                    TLSAttribute.ssl_object: lambda: tls,
                    TLSAttribute.tls_version: tls.version,
                }
            )
        return attributes


async def _connect_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A TCP socket connected to ``host:port``, Happy Eyeballs as ``anyio.connect_tcp``.

    Not ``loop.create_connection(host, port, happy_eyeballs_delay=...)``: its race
    (``asyncio.staggered``, Python 3.11) drops the connected socket, unclosed, when
    the caller is cancelled just as a connection attempt succeeds. Here every socket
    is closed unless it is returned.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        # As anyio: the first IPv6 address, then the first IPv4 one, then the rest.
        targets: list[tuple[int, Any]] = []
        v6_found = v4_found = False
        for family, _, _, _, address in infos:
            if family == socket.AF_INET6 and not v6_found:
                v6_found = True
                targets.insert(0, (family, address))
            elif family == socket.AF_INET and not v4_found and v6_found:
                v4_found = True
                targets.insert(1, (family, address))
            else:
                targets.append((family, address))
    else:
        targets = [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (host, port))]

    connected: socket.socket | None = None
    errors: list[OSError] = []

    async def attempt(family: int, address: Any, done: anyio.Event) -> None:
        nonlocal connected
        sock: socket.socket | None = None
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            if sock is not None:
                sock.close()
            errors.append(exc)
            return
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            done.set()
        if connected is None:
            connected = sock
            tg.cancel_scope.cancel()  # the other attempts
        else:
            sock.close()

    try:
        async with anyio.create_task_group() as tg:
            for target_family, target in targets:
                done = anyio.Event()
                tg.start_soon(attempt, target_family, target, done)
                with anyio.move_on_after(HAPPY_EYEBALLS_DELAY):
                    await done.wait()
    except BaseException:
        if connected is not None:
            connected.close()
        raise
    if connected is None:
        # What loop.create_connection raises: the one error, or all of them in one.
        if len(errors) == 1 or len({str(exc) for exc in errors}) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(exc) for exc in errors)}")
    return connected


async def _tunnel_socket(
    loop: asyncio.AbstractEventLoop, proxy: Proxy, host: str, port: int
) -> socket.socket:
    """A TCP socket to ``proxy``, tunnelled (CONNECT) to ``host:port``; TLS comes after."""
    with proxy_phase(proxy.url, authority(host, port), "connect"):
        sock = await _connect_socket(loop, proxy.host, proxy.port)
    try:

        async def receive() -> bytes:
            return await loop.sock_recv(sock, 4096)

        async def send(data: bytes) -> None:
            await loop.sock_sendall(sock, data)

        await tunnel(proxy, host, port, send, receive)
    except BaseException:
        sock.close()
        raise
    return sock


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
