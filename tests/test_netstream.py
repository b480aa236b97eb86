"""The client's byte stream (``relay_anyio._netstream``) against real loopback servers.

Every test runs on asyncio (the native protocol stream) and trio (anyio's streams),
over plain TCP and over TLS (a ``trustme`` CA and a certificate for ``localhost``), so
both implementations are held to the same anyio semantics.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import sniffio
import trustme
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from relay_anyio import _netstream
from relay_anyio._netstream import connect_stream

from .helpers import eventually

pytestmark = pytest.mark.anyio

Handler = Callable[[anyio.abc.ByteStream], Awaitable[None]]
LOCALHOST = "127.0.0.1"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture(params=[False, True], ids=["tcp", "tls"])
def tls(request: pytest.FixtureRequest) -> bool:
    return request.param  # type: ignore[no-any-return]


class Peer:
    """A loopback server running ``handler`` on each accepted (and TLS-wrapped) stream."""

    def __init__(self, tls: bool, server_context: ssl.SSLContext, client_context: ssl.SSLContext):
        self.tls = tls
        self.server_context = server_context
        self.client_context = client_context
        self.port = 0

    @asynccontextmanager
    async def serving(self, handler: Handler) -> AsyncIterator[Peer]:
        async def serve_one(tcp: anyio.abc.SocketStream) -> None:
            async with tcp:
                stream: anyio.abc.ByteStream = tcp
                if self.tls:
                    try:
                        stream = await TLSStream.wrap(
                            tcp,
                            server_side=True,
                            ssl_context=self.server_context,
                            standard_compatible=False,
                        )
                    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                        return  # the client refused the certificate
                await handler(stream)

        listener = await anyio.create_tcp_listener(local_host=LOCALHOST)
        async with listener, anyio.create_task_group() as tg:
            self.port = listener.extra(SocketAttribute.local_port)
            tg.start_soon(listener.serve, serve_one)
            yield self
            tg.cancel_scope.cancel()

    async def connect(
        self, *, ssl_context: ssl.SSLContext | None = None, server_hostname: str = "localhost"
    ) -> anyio.abc.ByteStream:
        """Connect as the RELAY client would (``ssl_context`` replaces the trusting one)."""
        if self.tls and ssl_context is None:
            ssl_context = self.client_context
        return await connect_stream(
            LOCALHOST, self.port, ssl_context=ssl_context, server_hostname=server_hostname
        )


@pytest.fixture
def peer(tls: bool, server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> Peer:
    return Peer(tls, server_context, client_context)


async def echo(stream: anyio.abc.ByteStream) -> None:
    """Send back what arrives, until the client closes."""
    try:
        async for data in stream:
            await stream.send(data)
    except anyio.BrokenResourceError:
        pass


async def receive_exactly(stream: anyio.abc.ByteStream, size: int, max_bytes: int = 65536) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = await stream.receive(max_bytes)
        assert 0 < len(data) <= max_bytes
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def read_to_the_end(stream: anyio.abc.ByteStream) -> None:
    """Read until the client closes: a peer that answers the client's close."""
    try:
        async for _ in stream:
            pass
    except anyio.BrokenResourceError:
        pass


def pattern(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def is_native(stream: anyio.abc.ByteStream) -> bool:
    return isinstance(stream, _netstream._AsyncioStream)


# -- data ---------------------------------------------------------------------------------


async def test_echo_round_trips_of_many_sizes(peer: Peer) -> None:
    async with peer.serving(echo):
        async with await peer.connect() as stream:
            assert is_native(stream) == (sniffio.current_async_library() == "asyncio")
            for size in (1, 100, 1000, 16383, 16384, 65535, 65536, 65537, 200_000, MIB):
                payload = pattern(size, size)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.send, payload)
                    assert await receive_exactly(stream, size) == payload
            # max_bytes is honoured, with data split and joined across reads.
            await stream.send(b"abcdefghij")
            assert await receive_exactly(stream, 10, max_bytes=3) == b"abcdefghij"
            for _ in range(5):
                await stream.send(b"xy")
            assert await receive_exactly(stream, 10, max_bytes=4) == b"xy" * 5


async def test_large_transfers_both_ways_with_backpressure(peer: Peer) -> None:
    """4 MiB echoed while being sent, then 8 MiB one way each direction at once."""
    size = 8 * MIB
    down, up = pattern(size, 1), pattern(size, 2)
    received_up = bytearray()
    up_done = anyio.Event()

    async def handler(stream: anyio.abc.ByteStream) -> None:
        if await stream.receive(1) == b"E":
            await echo(stream)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.send, down)
            while len(received_up) < size:
                received_up.extend(await stream.receive())
            up_done.set()

    async with peer.serving(handler):
        async with await peer.connect() as stream:
            await stream.send(b"E")
            payload = pattern(4 * MIB, 3)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.send, payload)
                assert await receive_exactly(stream, len(payload)) == payload
        async with await peer.connect() as stream:
            await stream.send(b"D")

            async def send_up() -> None:
                for offset in range(0, size, 256 * 1024):
                    await stream.send(up[offset : offset + 256 * 1024])

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_up)
                assert await receive_exactly(stream, size) == down
            await up_done.wait()
        assert received_up == up


async def test_receive_on_a_flood_yields_to_other_tasks(peer: Peer) -> None:
    async def flood(stream: anyio.abc.ByteStream) -> None:
        try:
            for _ in range(64):
                await stream.send(bytes(64 * 1024))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with peer.serving(flood):
        async with await peer.connect() as stream:
            await receive_exactly(stream, 256 * 1024)  # the flood is on: data is buffered
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                await anyio.lowlevel.checkpoint()
                ticks = 0
                for _ in range(100):
                    await stream.receive(4096)
                tg.cancel_scope.cancel()
            # The native stream yields on every receive; anyio's TLSStream only when it
            # reads the socket (here once per 16 receives).
            assert ticks >= (50 if is_native(stream) or not peer.tls else 3)


# -- end of stream, errors ----------------------------------------------------------------


async def test_eof_after_the_buffered_data(peer: Peer) -> None:
    closed = anyio.Event()

    async def handler(stream: anyio.abc.ByteStream) -> None:
        await stream.send(b"hello ")
        await stream.send(b"world")
        await stream.aclose()
        closed.set()

    async with peer.serving(handler):
        async with await peer.connect() as stream:
            await closed.wait()
            if is_native(stream):  # it reads ahead: wait until it has read the end too
                assert isinstance(stream, _netstream._AsyncioStream)
                await eventually(lambda: stream._eof or stream._lost)
            # (anyio's streams read the socket on demand: the kernel has it all now)
            assert await receive_exactly(stream, 11) == b"hello world"
            for _ in range(2):
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()


async def test_peer_reset_is_a_broken_resource(peer: Peer) -> None:
    async def handler(stream: anyio.abc.ByteStream) -> None:
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.send(b"bye")
        await anyio.aclose_forcefully(stream)  # linger 0: RST

    async with peer.serving(handler):
        async with await peer.connect() as stream:
            with pytest.raises(anyio.BrokenResourceError) as info:
                while True:
                    await stream.receive()
            assert isinstance(info.value.__cause__, OSError)
            with pytest.raises(anyio.BrokenResourceError):
                for _ in range(10):  # an OS may take one send to notice
                    await stream.send(b"more")
                    await anyio.sleep(0.01)


async def test_use_after_aclose_is_a_closed_resource(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_netstream, "CLOSE_GRACE", 30.0)
    async with peer.serving(echo):
        stream = await peer.connect()
        await stream.send(b"ping")
        assert await receive_exactly(stream, 4) == b"ping"
        started = time.monotonic()
        await stream.aclose()
        # The peer answered: aclose did not wait out the grace (generous for load).
        assert time.monotonic() - started < 10
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send(b"x")
        await stream.aclose()  # again: a no-op


async def test_aclose_does_not_wait_long_for_a_silent_peer(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_netstream, "CLOSE_GRACE", 0.2)

    async def silent(stream: anyio.abc.ByteStream) -> None:
        await anyio.sleep_forever()

    async with peer.serving(silent):
        stream = await peer.connect()
        with anyio.fail_after(5):  # timing is the point: 0.2 s of grace, generous for load
            await stream.aclose()


async def test_concurrent_receives_are_refused(peer: Peer) -> None:
    async with peer.serving(echo):
        async with await peer.connect() as stream, anyio.create_task_group() as tg:
            tg.start_soon(stream.receive)
            await anyio.wait_all_tasks_blocked()  # that receive waits for data
            with pytest.raises(anyio.BusyResourceError):
                await stream.receive()
            tg.cancel_scope.cancel()


async def test_send_eof(peer: Peer) -> None:
    async def handler(stream: anyio.abc.ByteStream) -> None:
        data = b"".join([chunk async for chunk in stream])
        await stream.send(b"got " + data)

    async with peer.serving(handler):
        async with await peer.connect() as stream:
            if peer.tls:
                with pytest.raises(NotImplementedError):
                    await stream.send_eof()
                return
            await stream.send(b"all")
            await stream.send_eof()
            assert await receive_exactly(stream, 7) == b"got all"


# -- cancellation and closing -------------------------------------------------------------


async def test_cancelled_receive_loses_no_data(peer: Peer) -> None:
    go = anyio.Event()
    count, size = 100, 100

    async def handler(stream: anyio.abc.ByteStream) -> None:
        await go.wait()
        await stream.send(b"first")
        for i in range(count):
            await stream.send(pattern(size, i))
            if i % 10 == 0:
                await anyio.sleep(0.001)
        await read_to_the_end(stream)

    async with peer.serving(handler):
        async with await peer.connect() as stream:
            with anyio.move_on_after(0.05) as scope:
                await stream.receive()
            assert scope.cancelled_caught
            go.set()
            # Many receives cancelled at all sorts of moments, data arriving meanwhile.
            expected = b"first" + b"".join(pattern(size, i) for i in range(count))
            parts: list[bytes] = []
            got, cancelled, delays = 0, 0, [0, 0.0001, 0.0003, 0.001]
            for attempt in range(100_000):
                if got == len(expected):
                    break
                with anyio.move_on_after(delays[attempt % len(delays)]) as scope:
                    data = await stream.receive(size // 3 + 1)
                    parts.append(data)
                    got += len(data)
                cancelled += scope.cancelled_caught
            assert b"".join(parts) == expected
            assert cancelled > 0


async def test_aclose_forcefully_while_a_receive_is_blocked(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_netstream, "CLOSE_GRACE", 30.0)  # what a graceful close would wait

    async def silent(stream: anyio.abc.ByteStream) -> None:
        await anyio.sleep_forever()

    errors: list[BaseException] = []

    async def receive(stream: anyio.abc.ByteStream) -> None:
        try:
            await stream.receive()
        except Exception as exc:
            errors.append(exc)

    async with peer.serving(silent):
        stream = await peer.connect()
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive, stream)
            await anyio.wait_all_tasks_blocked()  # the receive is blocked
            started = time.monotonic()
            await anyio.aclose_forcefully(stream)
            assert time.monotonic() - started < 10  # not the grace (generous for load)
        assert [type(exc) for exc in errors] == [anyio.ClosedResourceError]


async def test_flow_control_bounds_what_a_non_reading_client_holds(peer: Peer) -> None:
    size = 8 * MIB
    sent = 0

    async def flood(stream: anyio.abc.ByteStream) -> None:
        nonlocal sent
        for offset in range(0, size, 64 * 1024):
            await stream.send(data[offset : offset + 64 * 1024])
            sent += 64 * 1024
        await read_to_the_end(stream)

    data = pattern(size, 5)
    async with peer.serving(flood):
        async with await peer.connect() as stream:
            if is_native(stream):
                assert isinstance(stream, _netstream._AsyncioStream)
                await eventually(lambda: stream._reading_paused)
                # More arrives, but the stream does not take it: once the sender is
                # blocked (the kernel buffers full), the stream still holds its bound.
                await anyio.wait_all_tasks_blocked()
                assert sent > 2 * _netstream.HIGH_WATER
                assert _netstream.HIGH_WATER < stream._buffered <= _netstream.HIGH_WATER + MIB
            else:
                await anyio.wait_all_tasks_blocked()  # the sender is blocked
            assert await receive_exactly(stream, size) == data


# -- connecting ---------------------------------------------------------------------------


async def test_a_cancel_just_as_tcp_connects_closes_the_socket(
    peer: Peer, monkeypatch: pytest.MonkeyPatch, anyio_backend_name: str
) -> None:
    """Regression: on asyncio, ``loop.create_connection(happy_eyeballs_delay=...)``
    dropped the connected socket, unclosed, when cancelled just as the connection was
    made (Python 3.11's staggered race keeps the winner where nothing closes it): an
    fd leak, seen as a ResourceWarning failing a cancellation test on a busy machine.
    The cancellation is delivered at exactly that moment here."""
    if anyio_backend_name != "asyncio":
        pytest.skip("the native asyncio stream's connect (trio's is anyio.connect_tcp)")
    loop = asyncio.get_running_loop()
    connect = loop.sock_connect
    sockets: list[socket.socket] = []
    async with peer.serving(echo):
        with anyio.CancelScope() as scope:

            async def connect_then_cancel(sock: socket.socket, address: Any) -> None:
                sockets.append(sock)
                await connect(sock, address)
                scope.cancel()  # the deadline lands as the connection is made

            monkeypatch.setattr(loop, "sock_connect", connect_then_cancel)
            await peer.connect()
            pytest.fail("the connect should have been cancelled")
        monkeypatch.undo()
        assert scope.cancelled_caught
        assert len(sockets) == 1
        assert sockets[0].fileno() == -1  # closed, not left to the garbage collector
        async with await peer.connect() as stream:  # and the next connect works
            await stream.send(b"ok")
            assert await receive_exactly(stream, 2) == b"ok"


@pytest.mark.parametrize("why", ["untrusted CA", "wrong host name"])
async def test_a_certificate_that_does_not_verify(
    why: str, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    peer = Peer(True, server_context, client_context)
    async with peer.serving(echo):
        with pytest.raises(ssl.SSLCertVerificationError):
            if why == "untrusted CA":
                await peer.connect(ssl_context=ssl.create_default_context())
            else:
                await peer.connect(server_hostname="example.com")


async def test_a_refused_port_raises_oserror(tls: bool, client_context: ssl.SSLContext) -> None:
    with socket.socket() as sock:  # bound, not listening: the port refuses
        sock.bind((LOCALHOST, 0))
        port = sock.getsockname()[1]
        with pytest.raises(OSError):
            await connect_stream(
                LOCALHOST,
                port,
                ssl_context=client_context if tls else None,
                server_hostname="localhost",
            )


async def test_an_unknown_host_raises_gaierror() -> None:
    with pytest.raises(socket.gaierror):
        await connect_stream(
            "no-such-host.invalid", 443, ssl_context=None, server_hostname="no-such-host.invalid"
        )


async def test_attributes(peer: Peer) -> None:
    async with peer.serving(echo):
        async with await peer.connect() as stream:
            assert stream.extra(SocketAttribute.remote_port) == peer.port
            assert stream.extra(SocketAttribute.remote_address) == (LOCALHOST, peer.port)
            assert stream.extra(SocketAttribute.family) == socket.AF_INET
            sock = stream.extra(SocketAttribute.raw_socket)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            if peer.tls:
                assert stream.extra(TLSAttribute.tls_version).startswith("TLS")
                assert stream.extra(TLSAttribute.peer_certificate) is not None
                assert stream.extra(TLSAttribute.standard_compatible) is False
                assert stream.extra(TLSAttribute.server_side) is False
            else:
                assert stream.extra(TLSAttribute.ssl_object, None) is None


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
@pytest.mark.timeout(180)  # a benchmark, however quick: only a hang fails
def test_benchmark_quick_run() -> None:
    """``benchmarks/streams.py --quick`` runs and prints every row (so it cannot rot)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "streams.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--pin", "none"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for row in ("asyncio/anyio", "asyncio/native", "asyncio/protocol", "trio/anyio", "trio/native"):
        assert row in proc.stdout
