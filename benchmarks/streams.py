"""Micro-benchmark of the client's byte stream: anyio's path vs the backend-native one.

The server is another process (stdlib asyncio ``Protocol`` + ``ssl``, a throw-away
``trustme`` certificate for ``localhost``), as the real RELAY server is. Over TLS on
127.0.0.1 the client runs, for each stream implementation:

* ``ping-pong``: send a 100-byte message, read until its echo is back, repeat. Reported
  as wall-clock and client CPU (``time.process_time`` of this process only) per round
  trip, in microseconds.
* ``down``: the server sends N MiB as fast as it can, the client reads with
  ``receive(65536)`` (as the WebSocket reader does): MB/s.
* ``up``: the client sends N MiB in 16 KiB writes, the server counts them and answers
  one byte at the end: MB/s.

Implementations (``--impls``):

* ``asyncio/anyio``  -- ``anyio.connect_tcp`` + ``TLSStream.wrap(standard_compatible=False)``
  on asyncio (today's path);
* ``asyncio/native`` -- ``relay_anyio._netstream.connect_stream`` on asyncio (a
  ``loop.create_connection`` protocol);
* ``asyncio/protocol`` -- ping-pong only: a bare callback ``asyncio.Protocol``, no
  task, no stream API: the floor for asyncio's TLS;
* ``trio/anyio``     -- anyio's path on trio;
* ``trio/native``    -- ``trio.open_tcp_stream`` + ``trio.SSLStream(https_compatible=True)``
  behind a thin anyio ``ByteStream`` adapter (defined here: it was measured, not adopted).

(``https_compatible=True`` is trio's name for anyio's ``standard_compatible=False``.)

Each repetition runs every implementation once (interleaved, to spread the machine's
noise); the table shows the median over the repetitions and the min..max of the CPU.
By default the client is pinned to one CPU and the server to another (``--pin
split``), which is closest to a remote server and far less noisy than letting the
scheduler move them; ``--pin same`` puts both on one CPU (no idle wake-ups, so CPU
and wall time follow the code's cost), ``--pin none`` leaves them free.

Usage::

    .venv/bin/python benchmarks/streams.py              # ~12 s
    .venv/bin/python benchmarks/streams.py --pin same
    .venv/bin/python benchmarks/streams.py --quick      # about a second
    .venv/bin/python benchmarks/streams.py --reps 9 --impls asyncio/anyio,asyncio/native
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import trio
from anyio.streams.tls import TLSStream

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay_anyio._netstream import connect_stream

MESSAGE = b"m" * 100
WRITE_SIZE = 16 * 1024
HOST = "127.0.0.1"
SERVER_NAME = "localhost"

# -- the server (a subprocess) -----------------------------------------------------------


class _ServerProtocol(asyncio.Protocol):
    """``E``: echo everything; ``D`` + u64: send that many bytes; ``U`` + u64: read them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.mode = b""
        self.head = b""
        self.remaining = 0
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.mode == b"E":
            self.transport.write(data)
            return
        if self.mode == b"U":
            self.remaining -= len(data)
            if self.remaining == 0:
                self.transport.write(b"K")
            return
        self.head += data
        if self.head[:1] == b"E":
            self.mode = b"E"
            if len(self.head) > 1:
                self.transport.write(self.head[1:])
        elif len(self.head) >= 9:
            self.mode = self.head[:1]
            (self.remaining,) = struct.unpack("!Q", self.head[1:9])
            if self.mode == b"D":
                asyncio.get_running_loop().create_task(self.source(self.remaining))
            else:
                self.remaining -= len(self.head) - 9
                if self.remaining == 0:
                    self.transport.write(b"K")

    async def source(self, count: int) -> None:
        chunk = bytes(256 * 1024)
        while count > 0 and self.transport is not None and not self.transport.is_closing():
            await self.can_write.wait()
            self.transport.write(chunk[:count])
            count -= len(chunk)

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.can_write.set()


async def _serve(cert_dir: Path) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_dir / "server.pem")
    server = await asyncio.get_running_loop().create_server(_ServerProtocol, HOST, 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Run until the parent closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


# -- the clients --------------------------------------------------------------------------


class TrioStream(anyio.abc.ByteStream):
    """A trio stream (``trio.SSLStream`` or ``trio.SocketStream``) as an anyio byte stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            data = await self._stream.receive_some(max_bytes)
        except trio.BrokenResourceError as exc:
            raise anyio.BrokenResourceError from exc.__cause__
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        if not data:
            raise anyio.EndOfStream
        return bytes(data)

    async def send(self, item: bytes) -> None:
        try:
            await self._stream.send_all(item)
        except trio.BrokenResourceError as exc:
            raise anyio.BrokenResourceError from exc.__cause__
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None

    async def send_eof(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._stream.aclose()


Connector = Callable[[int, ssl.SSLContext], Awaitable[anyio.abc.ByteStream]]


async def _anyio_connect(port: int, ctx: ssl.SSLContext) -> anyio.abc.ByteStream:
    tcp = await anyio.connect_tcp(HOST, port)
    return await TLSStream.wrap(
        tcp, hostname=SERVER_NAME, ssl_context=ctx, standard_compatible=False
    )


async def _native_connect(port: int, ctx: ssl.SSLContext) -> anyio.abc.ByteStream:
    return await connect_stream(HOST, port, ssl_context=ctx, server_hostname=SERVER_NAME)


async def _trio_connect(port: int, ctx: ssl.SSLContext) -> anyio.abc.ByteStream:
    tcp = await trio.open_tcp_stream(HOST, port)
    tls = trio.SSLStream(tcp, ctx, server_hostname=SERVER_NAME, https_compatible=True)
    await tls.do_handshake()
    return TrioStream(tls)


@dataclass
class Result:
    rt_wall_us: float = 0.0
    rt_cpu_us: float = 0.0
    down_mbs: float = 0.0
    up_mbs: float = 0.0


async def _measure(
    connect: Connector, port: int, ctx: ssl.SSLContext, rounds: int, mib: int
) -> Result:
    result = Result()
    stream = await connect(port, ctx)
    async with stream:
        await stream.send(b"E")
        for i in range(rounds + 200):  # the first 200 warm up
            if i == 200:
                wall, cpu = time.perf_counter(), time.process_time()
            await stream.send(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                got += len(await stream.receive(65536))
        result.rt_wall_us = (time.perf_counter() - wall) / rounds * 1e6
        result.rt_cpu_us = (time.process_time() - cpu) / rounds * 1e6
    size = mib * 1024 * 1024
    stream = await connect(port, ctx)
    async with stream:
        wall = time.perf_counter()
        await stream.send(b"D" + struct.pack("!Q", size))
        got = 0
        while got < size:
            got += len(await stream.receive(65536))
        result.down_mbs = size / (time.perf_counter() - wall) / 1e6
    stream = await connect(port, ctx)
    async with stream:
        block = bytes(WRITE_SIZE)
        wall = time.perf_counter()
        await stream.send(b"U" + struct.pack("!Q", size))
        for _ in range(size // WRITE_SIZE):
            await stream.send(block)
        assert await stream.receive(1) == b"K"
        result.up_mbs = size / (time.perf_counter() - wall) / 1e6
    return result


async def _protocol_pingpong(port: int, ctx: ssl.SSLContext, rounds: int, mib: int) -> Result:
    """The floor: a callback protocol that answers each echo from data_received."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    clock: list[float] = []

    class Pinger(asyncio.Protocol):
        got = count = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.WriteTransport)
            self.transport = transport
            transport.write(b"E" + MESSAGE)

        def data_received(self, data: bytes) -> None:
            self.got += len(data)
            if self.got < len(MESSAGE):
                return
            self.got -= len(MESSAGE)
            self.count += 1
            if self.count == 200:
                clock.extend((time.perf_counter(), time.process_time()))
            if self.count == rounds + 200:
                clock.extend((time.perf_counter(), time.process_time()))
                done.set_result(None)
            else:
                self.transport.write(MESSAGE)

    transport, _ = await loop.create_connection(
        Pinger, HOST, port, ssl=ctx, server_hostname=SERVER_NAME
    )
    try:
        await done
    finally:
        transport.close()
    return Result((clock[2] - clock[0]) / rounds * 1e6, (clock[3] - clock[1]) / rounds * 1e6)


IMPLS: dict[str, tuple[str, Callable[..., Awaitable[Result]]]] = {
    "asyncio/anyio": ("asyncio", lambda *a: _measure(_anyio_connect, *a)),
    "asyncio/native": ("asyncio", lambda *a: _measure(_native_connect, *a)),
    "asyncio/protocol": ("asyncio", _protocol_pingpong),
    "trio/anyio": ("trio", lambda *a: _measure(_anyio_connect, *a)),
    "trio/native": ("trio", lambda *a: _measure(_trio_connect, *a)),
}


def _run(impl: str, port: int, ctx: ssl.SSLContext, rounds: int, mib: int) -> Result:
    backend, func = IMPLS[impl]
    gc.collect()
    gc.disable()
    try:
        return anyio.run(func, port, ctx, rounds, mib, backend=backend)
    finally:
        gc.enable()


def _pin(mode: str, server_pid: int) -> str:
    """Pin this process and the server; say how, for the table's header."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if mode == "none" or not cpus or (mode == "split" and len(cpus) < 2):
        return "not pinned"
    client_cpu, server_cpu = cpus[0], cpus[1] if mode == "split" else cpus[0]
    os.sched_setaffinity(0, {client_cpu})
    os.sched_setaffinity(server_pid, {server_cpu})
    return f"client on CPU {client_cpu}, server on CPU {server_cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5000, help="ping-pong round trips")
    parser.add_argument("--mib", type=int, default=32, help="MiB per one-way transfer")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument(
        "--pin",
        choices=["split", "same", "none"],
        default="split",
        help="CPU affinity: client and server on two CPUs (default), on one, or free",
    )
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if args.quick:
        args.reps, args.rounds, args.mib = 1, 300, 2
    impls = [name.strip() for name in args.impls.split(",")]
    for name in impls:
        if name not in IMPLS:
            parser.error(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")

    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        ca.issue_cert(SERVER_NAME).private_key_and_cert_chain_pem.write_to_path(
            os.path.join(tmp, "server.pem")
        )
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            pinned = _pin(args.pin, server.pid)
            results: dict[str, list[Result]] = {name: [] for name in impls}
            for _ in range(args.reps):
                for name in impls:
                    results[name].append(_run(name, port, ctx, args.rounds, args.mib))
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(10)

    print(
        f"TLS loopback, server in a subprocess; {args.rounds} round trips of "
        f"{len(MESSAGE)} B, {args.mib} MiB each way; median of {args.reps} "
        f"(CPU min..max); {pinned}; Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}"
    )
    print(
        f"{'path':<18} {'wall us/rt':>10} {'CPU us/rt':>10} {'CPU range':>13} "
        f"{'down MB/s':>10} {'up MB/s':>9}"
    )
    for name, runs in results.items():
        med = statistics.median
        cpu = [r.rt_cpu_us for r in runs]
        down = f"{med(r.down_mbs for r in runs):10.0f}" if runs[0].down_mbs else f"{'-':>10}"
        up = f"{med(r.up_mbs for r in runs):9.0f}" if runs[0].up_mbs else f"{'-':>9}"
        print(
            f"{name:<18} {med(r.rt_wall_us for r in runs):10.1f} {med(cpu):10.1f} "
            f"{f'{min(cpu):.0f}..{max(cpu):.0f}':>13} {down} {up}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
