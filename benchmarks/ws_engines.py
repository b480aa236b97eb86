"""Benchmark the client side of three sans-I/O WebSocket engines on small JSON frames.

Engines compared (all used purely sans-I/O, on the CLIENT side of an already
open connection, without compression / extensions):

* ``wsproto``    -- ``wsproto.WSConnection(ConnectionType.CLIENT)``:
  ``receive_data()`` + ``events()`` to decode, ``send(TextMessage(...))`` to
  encode.
* ``websockets`` -- ``websockets.client.ClientProtocol`` (the sans-I/O core of
  the ``websockets`` package): ``receive_data()`` + ``events_received()`` to
  decode (``Frame.data.decode()`` to produce ``str``, which is what its own
  I/O layers do), ``send_text()`` + ``data_to_send()`` to encode.
* ``_frames``    -- ``relay_anyio._frames.FrameCodec(client=True)``, the
  project's own codec (the engine of ``relay_anyio/_websocket.py`` after the
  handshake): ``receive()`` returns the ``str`` messages of a read,
  ``encode_text()`` encodes one frame.  The ``_frames batch`` encode row uses
  ``encode_texts()`` on 64 acks at a time (what the session does with the acks
  of one read: one call, one ``os.urandom`` for all masks).

Each engine is brought past the opening handshake in memory, against the
matching server-side object of the same library (wsproto SERVER connection /
websockets ``ServerProtocol``).  Server frames are built by hand (``0x81``,
length, payload) and cross-checked byte-for-byte against what both libraries'
server objects emit for the same payloads.

Workloads (``frames/s`` = median of the repetitions, plus the min..max spread;
``CPU us/frame`` = median ``time.process_time`` per frame):

1. ``decode``   -- the client receives N unmasked server text frames, each a
   JSON-RPC ``signalwire.event`` (~300 bytes with four UUIDs), delivered in
   64 KiB chunks as a socket read would, and produces the ``str`` payloads
   (fragmented partial messages are re-joined).  A minimal hand-written
   RFC 6455 decoder (header parse + slicing + UTF-8 decode, no validation) is
   reported as a reference "limit" to show the headroom.
2. ``encode``   -- the client sends N small masked text frames (~80-byte JSON
   acks) and produces the wire ``bytes``.
3. ``loopback`` -- an anyio TCP loopback pair in one event loop: the server
   side writes the pre-encoded frames as fast as it can, the client side reads
   with ``SocketStream.receive(65536)`` and decodes with the engine.  Run on
   the asyncio and the trio backends.  The "transport only" row reads the same
   bytes without decoding (baseline), "raw limit" uses the hand-written decoder.
   CPU time here includes the server side, which runs in the same thread.

The garbage collector is disabled inside timed sections (as ``timeit`` does),
and every timed run is verified for correctness outside the timed section.

Usage::

    python benchmarks/ws_engines.py            # full run (~30 s)
    python benchmarks/ws_engines.py --quick    # tiny N, CI smoke run (< 5 s)
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import anyio
import websockets.frames
from anyio.abc import SocketAttribute, SocketListener, SocketStream
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, Request, TextMessage

from relay_anyio._frames import FrameCodec

CHUNK_SIZE = 64 * 1024  # what one socket read delivers in the decode workload
SERVER_WRITE_SIZE = 256 * 1024  # loopback server write size
PAYLOAD_POOL = 4096  # distinct payloads, cycled over the N frames


# --------------------------------------------------------------------------
# Payloads and wire data
# --------------------------------------------------------------------------


def _uuids(rng: random.Random, count: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def make_events(n: int, rng: random.Random) -> list[str]:
    """N JSON-RPC event payloads (server -> client), cycled from a pool."""
    pool: list[str] = []
    for _ in range(min(n, PAYLOAD_POOL)):
        rid, call_id, node_id, control_id = _uuids(rng, 4)
        pool.append(
            '{"jsonrpc":"2.0","id":"' + rid + '","method":"signalwire.event",'
            '"params":{"event_type":"calling.call.play","params":{"call_id":"'
            + call_id
            + '","node_id":"'
            + node_id
            + '","control_id":"'
            + control_id
            + '","state":"playing"}}}'
        )
    return [pool[i % len(pool)] for i in range(n)]


def make_acks(n: int, rng: random.Random) -> list[str]:
    """N JSON-RPC ack payloads (client -> server), cycled from a pool."""
    ids = _uuids(rng, min(n, PAYLOAD_POOL))
    pool = ['{"jsonrpc":"2.0","id":"' + u + '","result":{}}' for u in ids]
    return [pool[i % len(pool)] for i in range(n)]


def raw_server_frame(text: str) -> bytes:
    """Unmasked, final, text frame (RFC 6455 section 5.2)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --------------------------------------------------------------------------
# In-memory opening handshakes
# --------------------------------------------------------------------------


def wsproto_pair() -> tuple[WSConnection, WSConnection]:
    """(client, server) wsproto connections, both OPEN."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    events = list(server.events())
    if len(events) != 1 or not isinstance(events[0], Request):
        raise RuntimeError(f"wsproto server handshake failed: {events!r}")
    client.receive_data(server.send(AcceptConnection()))
    events = list(client.events())
    if len(events) != 1 or not isinstance(events[0], AcceptConnection):
        raise RuntimeError(f"wsproto client handshake failed: {events!r}")
    if client.state is not ConnectionState.OPEN or server.state is not ConnectionState.OPEN:
        raise RuntimeError("wsproto connections not OPEN after handshake")
    return client, server


def websockets_pair() -> tuple[ClientProtocol, ServerProtocol]:
    """(client, server) websockets sans-I/O protocols, both OPEN."""
    client = ClientProtocol(parse_uri("ws://localhost/"))
    client.send_request(client.connect())
    server = ServerProtocol()
    server.receive_data(b"".join(client.data_to_send()))
    events = server.events_received()
    if len(events) != 1 or not isinstance(events[0], WsRequest):
        raise RuntimeError(f"websockets server handshake failed: {events!r}")
    server.send_response(server.accept(events[0]))
    client.receive_data(b"".join(server.data_to_send()))
    events = client.events_received()
    if len(events) != 1 or not isinstance(events[0], WsResponse):
        raise RuntimeError(f"websockets client handshake failed: {events!r}")
    if client.state is not WsState.OPEN or server.state is not WsState.OPEN:
        raise RuntimeError("websockets protocols not OPEN after handshake")
    return client, server


# --------------------------------------------------------------------------
# Client-side decoders (engine adapters)
# --------------------------------------------------------------------------


class Decoder(Protocol):
    out: list[str]

    def feed(self, data: bytes) -> None: ...


class WsprotoDecoder:
    def __init__(self) -> None:
        self.conn, _ = wsproto_pair()
        self.out: list[str] = []
        self._parts: list[str] = []

    def feed(self, data: bytes) -> None:
        conn = self.conn
        out = self.out
        parts = self._parts
        conn.receive_data(data)
        for event in conn.events():
            if isinstance(event, TextMessage):
                # wsproto may hand out a frame in pieces when it straddles reads.
                if event.message_finished:
                    if parts:
                        parts.append(event.data)
                        out.append("".join(parts))
                        parts.clear()
                    else:
                        out.append(event.data)
                else:
                    parts.append(event.data)
            else:
                raise TypeError(f"unexpected wsproto event: {event!r}")


class WebsocketsDecoder:
    def __init__(self) -> None:
        self.proto, _ = websockets_pair()
        self.out: list[str] = []

    def feed(self, data: bytes) -> None:
        proto = self.proto
        out = self.out
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT and event.fin:
                # Frame.data is always bytes when parsed; this avoids a per-frame cast().
                out.append(event.data.decode())  # type: ignore[union-attr]
            else:
                raise RuntimeError(f"unexpected websockets event: {event!r}")
        if proto.data_to_send() or proto.parser_exc is not None:
            raise RuntimeError(f"websockets protocol error: {proto.parser_exc!r}")


class FramesDecoder:
    def __init__(self) -> None:
        self.codec = FrameCodec(True)
        self.out: list[str] = []

    def feed(self, data: bytes) -> None:
        codec = self.codec
        messages = codec.receive(data)
        if codec.error is not None or codec.close_received is not None:
            raise RuntimeError(f"_frames protocol error: {codec.error!r}")
        self.out.extend(messages)  # type: ignore[arg-type]  # text frames only: str


class RawDecoder:
    """Reference limit: unmasked server text frames only, no validation at all."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._buf = b""

    def feed(self, data: bytes) -> None:
        out = self.out
        if self._buf:
            data = self._buf + data
        pos = 0
        size = len(data)
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            out.append(data[start:end].decode())
            pos = end
        self._buf = data[pos:]


class NullDecoder:
    """Transport baseline: receives the bytes, decodes nothing."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def feed(self, data: bytes) -> None:
        pass


DECODERS: dict[str, Callable[[], Decoder]] = {
    "wsproto": WsprotoDecoder,
    "websockets": WebsocketsDecoder,
    "_frames": FramesDecoder,
    "raw limit": RawDecoder,
}


# --------------------------------------------------------------------------
# Client-side encoders (engine adapters)
# --------------------------------------------------------------------------


def encode_wsproto(conn: WSConnection, texts: Sequence[str]) -> list[bytes]:
    out: list[bytes] = []
    append = out.append
    send = conn.send
    for text in texts:
        append(send(TextMessage(data=text)))
    return out


def encode_websockets(proto: ClientProtocol, texts: Sequence[str]) -> list[bytes]:
    out: list[bytes] = []
    extend = out.extend
    send_text = proto.send_text
    data_to_send = proto.data_to_send
    for text in texts:
        send_text(text.encode())
        extend(data_to_send())
    return out


def encode_frames(codec: FrameCodec, texts: Sequence[str]) -> list[bytes]:
    out: list[bytes] = []
    append = out.append
    encode_text = codec.encode_text
    for text in texts:
        append(encode_text(text))
    return out


ACK_BATCH = 64  # acks per encode_texts() call in the "_frames batch" row


def encode_frames_batch(codec: FrameCodec, texts: Sequence[str]) -> list[bytes]:
    encode_texts = codec.encode_texts
    return [encode_texts(texts[i : i + ACK_BATCH]) for i in range(0, len(texts), ACK_BATCH)]


def check_encoded_wsproto(server: WSConnection, frames: list[bytes], texts: Sequence[str]) -> None:
    server.receive_data(b"".join(frames))
    got = [e.data for e in server.events() if isinstance(e, TextMessage)]
    if got != list(texts):
        raise RuntimeError("wsproto encode output does not round-trip")


def check_encoded_websockets(
    server: ServerProtocol, frames: list[bytes], texts: Sequence[str]
) -> None:
    server.receive_data(b"".join(frames))
    got = [bytes(e.data).decode() for e in server.events_received() if isinstance(e, Frame)]
    if got != list(texts) or server.parser_exc is not None:
        raise RuntimeError("websockets encode output does not round-trip")


ENCODERS = ("wsproto", "websockets", "_frames", "_frames batch")


# --------------------------------------------------------------------------
# Measurement plumbing
# --------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    engine: str
    frames: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def rate(self) -> float:
        return self.frames / statistics.median(self.wall)

    @property
    def rate_min(self) -> float:
        return self.frames / max(self.wall)

    @property
    def rate_max(self) -> float:
        return self.frames / min(self.wall)

    @property
    def cpu_us(self) -> float:
        return statistics.median(self.cpu) / self.frames * 1e6


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    gc.collect()
    gc.disable()
    try:
        c0 = time.process_time()
        t0 = time.perf_counter()
        value = fn()
        t1 = time.perf_counter()
        c1 = time.process_time()
    finally:
        gc.enable()
    return t1 - t0, c1 - c0, value


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


# --------------------------------------------------------------------------
# Workloads 1 and 2
# --------------------------------------------------------------------------


def _decode_all(decoder: Decoder, chunks: list[bytes]) -> Decoder:
    feed = decoder.feed
    for chunk in chunks:
        feed(chunk)
    return decoder


def run_decode(
    name: str, chunks: list[bytes], expected: list[str], reps: int, warm: list[bytes]
) -> Result:
    make = DECODERS[name]
    result = Result("decode", name, len(expected))
    for i in range(reps + 1):
        data, want = (warm, None) if i == 0 else (chunks, expected)
        decoder = make()  # in-memory handshake happens here, outside the timed section
        wall, cpu, _ = timed(partial(_decode_all, decoder, data))
        if want is not None:
            if decoder.out != want:
                raise RuntimeError(f"{name}: decoded output mismatch ({len(decoder.out)} frames)")
            result.add(wall, cpu)
    return result


def run_encode(name: str, texts: list[str], reps: int, warm: list[str]) -> Result:
    result = Result("encode", name, len(texts))
    for i in range(reps + 1):
        batch = warm if i == 0 else texts
        expected_items = len(batch)
        if name == "wsproto":
            wconn, wserver = wsproto_pair()
            wall, cpu, value = timed(partial(encode_wsproto, wconn, batch))
            assert isinstance(value, list)
            check_encoded_wsproto(wserver, value[:1000], batch[:1000])
        elif name == "websockets":
            wclient, wsserver = websockets_pair()
            wall, cpu, value = timed(partial(encode_websockets, wclient, batch))
            assert isinstance(value, list)
            check_encoded_websockets(wsserver, value[:1000], batch[:1000])
        else:
            per_item = ACK_BATCH if name == "_frames batch" else 1
            encode = encode_frames_batch if per_item > 1 else encode_frames
            wall, cpu, value = timed(partial(encode, FrameCodec(True), batch))
            assert isinstance(value, list)
            _, fserver = wsproto_pair()  # our client frames, read by wsproto's server
            check_encoded_wsproto(fserver, value[: 1024 // per_item], batch[:1024])
            expected_items = -(-len(batch) // per_item)
        if len(value) != expected_items:
            raise RuntimeError(f"{name}: expected {expected_items} items, got {len(value)}")
        if i:
            result.add(wall, cpu)
    return result


# --------------------------------------------------------------------------
# Workload 3: anyio TCP loopback
# --------------------------------------------------------------------------


async def _serve_once(listener: SocketListener, writes: list[bytes]) -> None:
    stream = await listener.accept()
    async with stream:
        await stream.receive(1)  # client says "go" once its clock is running
        for block in writes:
            await stream.send(block)
        try:
            await stream.receive()  # wait for the client to hang up
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def _loopback_once(decoder: Decoder, writes: list[bytes], total: int) -> tuple[float, float]:
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with multi:
        listener = multi.listeners[0]
        assert isinstance(listener, SocketListener)
        port = listener.extra(SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_once, listener, writes)
            stream: SocketStream = await anyio.connect_tcp("127.0.0.1", port)
            async with stream:
                feed = decoder.feed
                received = 0
                gc.collect()
                gc.disable()
                try:
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    await stream.send(b"g")
                    while received < total:
                        data = await stream.receive(65536)
                        received += len(data)
                        feed(data)
                    t1 = time.perf_counter()
                    c1 = time.process_time()
                finally:
                    gc.enable()
    return t1 - t0, c1 - c0


async def _loopback_all(
    backend: str,
    wire: bytes,
    expected: list[str],
    warm_wire: bytes,
    warm_expected: list[str],
    reps: int,
) -> list[Result]:
    writes = split(wire, SERVER_WRITE_SIZE)
    warm_writes = split(warm_wire, SERVER_WRITE_SIZE)
    makers: dict[str, Callable[[], Decoder]] = {"transport only": NullDecoder, **DECODERS}
    results: list[Result] = []
    for name, make in makers.items():
        result = Result(f"loopback/{backend}", name, len(expected))
        for i in range(reps + 1):
            decoder = make()
            if i == 0:
                await _loopback_once(decoder, warm_writes, len(warm_wire))
                want = warm_expected
            else:
                result.add(*await _loopback_once(decoder, writes, len(wire)))
                want = expected
            if name != "transport only" and decoder.out != want:
                raise RuntimeError(f"loopback/{backend} {name}: decoded output mismatch")
        results.append(result)
    return results


def run_loopback(
    backend: str, events: list[str], warm_events: list[str], reps: int
) -> list[Result]:
    wire = b"".join(raw_server_frame(t) for t in events)
    warm_wire = b"".join(raw_server_frame(t) for t in warm_events)
    return anyio.run(
        _loopback_all, backend, wire, events, warm_wire, warm_events, reps, backend=backend
    )


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def check_server_frames(events: Sequence[str]) -> None:
    """Hand-built frames must equal what both libraries' server objects emit."""
    _, wserver = wsproto_pair()
    _, sserver = websockets_pair()
    for text in events:
        raw = raw_server_frame(text)
        if wserver.send(TextMessage(data=text)) != raw:
            raise RuntimeError("hand-built frame differs from wsproto server output")
        sserver.send_text(text.encode())
        if b"".join(sserver.data_to_send()) != raw:
            raise RuntimeError("hand-built frame differs from websockets server output")


def print_table(results: list[Result], reps: int) -> None:
    headers = (
        "workload",
        "engine",
        "frames",
        "frames/s (median)",
        "spread min..max",
        "CPU us/frame",
        "vs wsproto",
    )
    base: dict[str, float] = {r.workload: r.rate for r in results if r.engine == "wsproto"}
    rows: list[tuple[str, ...]] = []
    for r in results:
        rel = f"{r.rate / base[r.workload]:.2f}x" if r.workload in base else ""
        rows.append(
            (
                r.workload,
                r.engine,
                f"{r.frames:,}",
                fmt_rate(r.rate),
                f"{fmt_rate(r.rate_min)}..{fmt_rate(r.rate_max)}",
                f"{r.cpu_us:.2f}",
                rel,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(f"\nResults (median of {reps} repetition(s); spread = slowest..fastest)")
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    previous = ""
    for r, row in zip(results, rows, strict=True):
        if previous and r.workload != previous:
            print()
        previous = r.workload
        print(line(row))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny N for a CI smoke run")
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions per measurement (default 5, --quick 1)"
    )
    args = parser.parse_args(argv)

    if args.quick:
        n_decode, n_encode, n_loop, n_warm, reps = 2_000, 2_000, 1_000, 200, 1
    else:
        n_decode, n_encode, n_loop, n_warm, reps = 200_000, 200_000, 100_000, 5_000, 5
    if args.reps is not None:
        reps = max(1, args.reps)

    rng = random.Random(6455)
    events = make_events(n_decode, rng)
    warm_events = events[:n_warm]
    acks = make_acks(n_encode, rng)
    check_server_frames(events[:256])

    stream = b"".join(raw_server_frame(t) for t in events)
    chunks = split(stream, CHUNK_SIZE)
    warm_chunks = split(b"".join(raw_server_frame(t) for t in warm_events), CHUNK_SIZE)
    masked_ack = encode_websockets(websockets_pair()[0], acks[:1])[0]

    speedups = _websockets_speedups()
    print(__doc__.splitlines()[0] if __doc__ else "ws_engines")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"wsproto {_version('wsproto')}, websockets {_version('websockets')} "
        f"(C speedups: {'yes' if speedups else 'no'}), "
        f"anyio {_version('anyio')}, trio {_version('trio')}"
    )
    print(
        f"event payload {len(events[0].encode())} B -> "
        f"server frame {len(raw_server_frame(events[0]))} B; "
        f"ack payload {len(acks[0].encode())} B -> masked client frame {len(masked_ack)} B; "
        f"decode stream {len(stream) / 2**20:.1f} MiB in {len(chunks)} x 64 KiB chunks"
    )

    results: list[Result] = []
    t_start = time.perf_counter()
    for name in DECODERS:
        results.append(run_decode(name, chunks, events, reps, warm_chunks))
        print(f"  decode   {name:<11} {fmt_rate(results[-1].rate):>12} frames/s", flush=True)
    for name in ENCODERS:
        results.append(run_encode(name, acks, reps, acks[:n_warm]))
        print(f"  encode   {name:<11} {fmt_rate(results[-1].rate):>12} frames/s", flush=True)
    for backend in ("asyncio", "trio"):
        for r in run_loopback(backend, events[:n_loop], warm_events, reps):
            results.append(r)
            print(f"  {r.workload:<17} {r.engine:<15} {fmt_rate(r.rate):>12} frames/s", flush=True)

    print_table(results, reps)
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    return 0


def _websockets_speedups() -> bool:
    """Whether websockets masks with its C extension (its __module__ is misspelt)."""
    try:
        from websockets import speedups
    except ImportError:
        return False
    return getattr(websockets.frames, "apply_mask", None) is speedups.apply_mask


def _version(dist: str) -> str:
    return importlib.metadata.version(dist)


if __name__ == "__main__":
    sys.exit(main())
