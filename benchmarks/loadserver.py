"""Loopback RELAY load server for the client benchmarks (one process, one client).

It speaks just enough RELAY to drive the four workloads of ``compare.py``: TLS
(stdlib ``ssl`` through asyncio), a minimal hand-written RFC 6455 server framing (no
extensions, so no compression), JSON-RPC with ``orjson`` when it is importable (plain
``json`` otherwise). Every server frame is built from a pre-encoded byte template with
``%`` formatting, and all frames produced while handling one socket read go out in one
write. It is single-threaded and counts its own CPU time (``time.process_time``) over
the workload window, so the report can show it never sets the pace.

Control flow, identical for every client (the drivers only use the guide's API):

1. the client connects (``signalwire.connect``: any credentials are accepted) and the
   server offers the control call ``ctl-start`` on context ``bench``;
2. the driver takes its baseline samples and hangs ``ctl-start`` up; that
   ``calling.end`` starts the workload clock and the workload;
3. W3 only: once every call's play has started the server offers ``ctl-hold``; the
   driver samples its memory and hangs ``ctl-hold`` up, which releases the plays;
4. when every count is complete (every call ended, every event acked) the server
   stops its clock and offers ``ctl-done``; the driver samples and disconnects;
5. on disconnect (or at ``--deadline``) the server prints one JSON line and exits.

Workloads (``--workload``):

* ``W1``: ``--calls`` inbound calls, at most ``--concurrency`` offered at once; each
  is answered, plays (``playing`` + ``finished`` at once) and hangs up. Latency is
  measured here: ``calling.call.receive`` written -> ``calling.end`` read.
* ``W2``: ``--calls`` calls answered and playing; then ``--events`` non-terminal
  events (``calling.call.play`` ``paused``/``playing`` and repeated
  ``calling.call.state`` ``answered``, each carrying ``"bench": true``) round-robin
  across the calls, then ``finished`` for every play; the calls then hang up.
* ``W3``: ``--calls`` calls held in their play until the driver has sampled memory
  (``ctl-hold``), then released.
* ``W4``: one call; the play finishes when the ``--requests``-th
  ``calling.play.volume`` has been answered.

Usage: ``python loadserver.py --cert C --key K --workload W1 --calls 5000 ...``; it
prints ``{"event": "listening", "port": N}`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    _loads: Callable[[bytes], Any] = orjson.loads
    _dumps: Callable[[Any], bytes] = orjson.dumps
    CODEC = "orjson"
else:  # pragma: no cover - depends on the environment
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    CODEC = "json"

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NODE_ID = b"b2e8d4c6-1a3f-4b5d-9e7c-0f2a4c6e8b1d"
CONTEXT = b"bench"
_EVENT_ID_FORMAT = "5e6f7a8b-9c0d-4e1f-a2b3-%012d"  # UUID-shaped event ids
WRITE_BATCH = 256  # blast frames per write

# -- frame templates (JSON text; the WebSocket header is added by _frame) -------------

_EVENT_HEAD = b'{"jsonrpc":"2.0","id":"%s","method":"signalwire.event","params":{"event_type":'
T_RECEIVE = _EVENT_HEAD + (
    b'"calling.call.receive","timestamp":%s,"params":{"call_id":"%s","node_id":"'
    + NODE_ID
    + b'","context":"'
    + CONTEXT
    + b'","tag":"","call_state":"created","direction":"inbound",'
    b'"device":{"type":"phone","params":{"from_number":"+15551110000",'
    b'"to_number":"+15552220000"}}}}}'
)
T_STATE = _EVENT_HEAD + (
    b'"calling.call.state","timestamp":%s,"params":{"call_id":"%s","node_id":"'
    + NODE_ID
    + b'","tag":"","call_state":"%s","direction":"inbound"%s}}}'
)
T_PLAY = _EVENT_HEAD + (
    b'"calling.call.play","timestamp":%s,"params":{"call_id":"%s","node_id":"'
    + NODE_ID
    + b'","control_id":"%s","state":"%s"%s}}}'
)
T_RESULT = b'{"jsonrpc":"2.0","id":%s,"result":%s}'
R_200 = b'{"code":"200","message":"OK"}'
R_EMPTY = b"{}"
R_CONNECT = (
    b'{"protocol":"signalwire_bench_protocol","identity":"bench@relay",'
    b'"sessionid":"bench-session","nodeid":"' + NODE_ID + b'","session_restored":false,'
    b'"authorization":{}}'
)
BENCH_MARK = b',"bench":true'
ENDED_EXTRA = b',"end_reason":"hangup"'

CTL_START, CTL_HOLD, CTL_DONE = "ctl-start", "ctl-hold", "ctl-done"


def _frame(payload: bytes) -> bytes:
    """One unmasked, final text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def _unmask_py(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


_unmask: Callable[[bytes, bytes], bytes]
try:  # the one C helper worth borrowing: 7x faster than the int trick on ~80-byte acks
    from websockets.speedups import apply_mask

    _unmask = apply_mask
except ImportError:  # pragma: no cover - depends on the environment
    _unmask = _unmask_py


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class CallState:
    __slots__ = ("answered", "call_id", "ended", "ended_sent", "offered_at", "play_id", "playing")

    def __init__(self, call_id: str, offered_at: float) -> None:
        self.call_id = call_id
        self.offered_at = offered_at
        self.answered = False
        self.play_id: bytes | None = None
        self.playing = False
        self.ended = False  # calling.end received
        self.ended_sent = False


class Bench:
    """The workload, its counters and the one client connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.workload: str = args.workload
        self.n_calls: int = args.calls
        self.concurrency: int = args.concurrency
        self.n_events: int = args.events
        self.n_requests: int = args.requests
        self.conn: Connection | None = None
        self.finished = asyncio.Event()
        self.calls: dict[str, CallState] = {}
        self.event_seq = 0
        self.outstanding: set[str] = set()
        self.errors: dict[str, int] = {}
        self.error_samples: list[str] = []
        self.methods: dict[str, int] = {}
        self.counts: dict[str, int] = {
            "connects": 0,
            "events_sent": 0,
            "acks": 0,
            "offered": 0,
            "answered": 0,
            "plays": 0,
            "volumes": 0,
            "ended": 0,
            "completed": 0,
            "blast_sent": 0,
            "blast_play": 0,
            "blast_state": 0,
            "held": 0,
        }
        #: Every event sent to a non-control call after its offer (the events a
        #: listener registered in the handler can see), by "play:<state>" /
        #: "state:<call_state>": the drivers' listeners must have seen exactly these.
        self.to_calls: dict[str, int] = {}
        #: counts, methods and to_calls when the workload completed (ctl-done offered):
        #: the exact expectations are checked on these, acks on the final counts.
        self.at_done: dict[str, Any] = {}
        self.latencies: list[float] = []
        self.started = False
        self.done = False
        self.hold_offered = False
        self.released = False
        self.blast_started = False
        self.blast_done = False
        self.t_start = self.t_done = 0.0
        self.cpu_start = self.cpu_done = 0.0
        self.now_ts = b"0"

    # -- bookkeeping ------------------------------------------------------------------

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail}"[:300])

    def next_event_id(self) -> bytes:
        self.event_seq += 1
        eid = _EVENT_ID_FORMAT % self.event_seq
        self.outstanding.add(eid)
        self.counts["events_sent"] += 1
        return eid.encode()

    # -- frames -----------------------------------------------------------------------

    def offer(self, out: list[bytes], call_id: str) -> None:
        self.calls[call_id] = CallState(call_id, time.perf_counter())
        eid = self.next_event_id()
        out.append(_frame(T_RECEIVE % (eid, self.now_ts, call_id.encode())))

    def sent_to_call(self, call_id: str, key: str) -> None:
        """Count an event for a workload call (control calls have no listeners)."""
        if not call_id.startswith("ctl-"):
            self.to_calls[key] = self.to_calls.get(key, 0) + 1

    def state_event(self, out: list[bytes], call_id: str, state: bytes, extra: bytes = b"") -> None:
        eid = self.next_event_id()
        self.sent_to_call(call_id, "state:" + state.decode())
        out.append(_frame(T_STATE % (eid, self.now_ts, call_id.encode(), state, extra)))

    def play_event(
        self, out: list[bytes], call_id: str, control_id: bytes, state: bytes, extra: bytes = b""
    ) -> None:
        eid = self.next_event_id()
        self.sent_to_call(call_id, "play:" + state.decode())
        out.append(_frame(T_PLAY % (eid, self.now_ts, call_id.encode(), control_id, state, extra)))

    # -- workload ---------------------------------------------------------------------

    def new_call_id(self) -> str:
        self.counts["offered"] += 1
        return str(uuid.uuid4())

    def start_workload(self, out: list[bytes]) -> None:
        self.started = True
        self.t_start = time.perf_counter()
        self.cpu_start = time.process_time()
        if self.workload == "W1":
            for _ in range(min(self.concurrency, self.n_calls)):
                self.offer(out, self.new_call_id())
        elif self.workload in ("W2", "W3"):
            for _ in range(self.n_calls):
                self.offer(out, self.new_call_id())
        elif self.workload == "W4":
            self.offer(out, self.new_call_id())

    def workload_complete(self) -> bool:
        if not self.started or self.outstanding:
            return False
        if self.workload == "W1":
            return self.counts["ended"] == self.n_calls
        if self.workload == "W2":
            return self.blast_done and self.counts["ended"] == self.n_calls
        if self.workload == "W3":
            return self.released and self.counts["ended"] == self.n_calls
        return self.counts["ended"] == 1

    def finish_workload(self, out: list[bytes]) -> None:
        self.done = True
        self.t_done = time.perf_counter()
        self.cpu_done = time.process_time()
        self.offer(out, CTL_DONE)
        self.at_done = {
            "counts": dict(self.counts),
            "methods": dict(self.methods),
            "to_calls": dict(self.to_calls),
        }

    def on_request(self, out: list[bytes], rid: Any, method: str, params: dict[str, Any]) -> None:
        self.methods[method] = self.methods.get(method, 0) + 1
        rid_json = _dumps(rid)
        if method == "signalwire.connect":
            self.counts["connects"] += 1
            out.append(_frame(T_RESULT % (rid_json, R_CONNECT)))
            if self.counts["connects"] == 1:
                self.offer(out, CTL_START)
            else:
                self.error("reconnect", "a second signalwire.connect")
            return
        if method == "signalwire.ping":
            out.append(_frame(T_RESULT % (rid_json, R_EMPTY)))
            return
        if not method.startswith("calling."):
            self.error("unexpected_method", method)
            out.append(_frame(T_RESULT % (rid_json, R_200)))
            return
        call_id = params.get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None:
            self.error("unknown_call", f"{method} {call_id!r}")
            out.append(_frame(T_RESULT % (rid_json, b'{"code":"404","message":"Call not found"}')))
            return
        if call.ended:
            self.error("request_after_end", f"{method} {call_id}")
            out.append(_frame(T_RESULT % (rid_json, b'{"code":"410","message":"Call gone"}')))
            return
        out.append(_frame(T_RESULT % (rid_json, R_200)))
        if method == "calling.answer":
            if call.answered:
                self.error("duplicate_answer", call.call_id)
            call.answered = True
            self.counts["answered"] += 1
            self.state_event(out, call.call_id, b"answered")
        elif method == "calling.play":
            self.on_play(out, call, params)
        elif method == "calling.play.volume":
            self.on_volume(out, call, params)
        elif method == "calling.play.stop":
            if call.playing and call.play_id is not None:
                call.playing = False
                self.play_event(out, call.call_id, call.play_id, b"finished")
        elif method == "calling.end":
            self.on_end(out, call)
        else:
            self.error("unexpected_method", method)

    def on_play(self, out: list[bytes], call: CallState, params: dict[str, Any]) -> None:
        control_id = params.get("control_id")
        if not isinstance(control_id, str) or not call.answered or call.play_id is not None:
            self.error("bad_play", f"{call.call_id} control_id={control_id!r}")
            return
        call.play_id = control_id.encode()
        call.playing = True
        self.counts["plays"] += 1
        self.play_event(out, call.call_id, call.play_id, b"playing")
        if self.workload == "W1":
            call.playing = False
            self.play_event(out, call.call_id, call.play_id, b"finished")
        elif self.workload == "W3":
            self.counts["held"] += 1
            if self.counts["held"] == self.n_calls:
                self.hold_offered = True
                self.offer(out, CTL_HOLD)
        elif self.workload == "W2" and self.counts["plays"] == self.n_calls:
            self.blast_started = True
            asyncio.get_running_loop().create_task(self.blast())

    def on_volume(self, out: list[bytes], call: CallState, params: dict[str, Any]) -> None:
        control_id = params.get("control_id")
        if (
            not call.playing
            or not isinstance(control_id, str)
            or control_id.encode() != call.play_id
        ):
            self.error("bad_volume", call.call_id)
            return
        self.counts["volumes"] += 1
        if self.workload == "W4" and self.counts["volumes"] == self.n_requests:
            call.playing = False
            assert call.play_id is not None
            self.play_event(out, call.call_id, call.play_id, b"finished")

    def on_end(self, out: list[bytes], call: CallState) -> None:
        call.ended = True
        self.state_event(out, call.call_id, b"ending")
        self.state_event(out, call.call_id, b"ended", ENDED_EXTRA)
        call.ended_sent = True
        cid = call.call_id
        if cid.startswith("ctl-"):
            if cid == CTL_START and not self.started:
                self.start_workload(out)
            elif cid == CTL_HOLD and not self.released:
                self.release(out)
            return
        self.counts["ended"] += 1
        if call.answered and call.play_id is not None and not call.playing:
            self.counts["completed"] += 1
        else:
            self.error("incomplete_call", f"{cid} answered={call.answered} play={call.play_id!r}")
        if self.workload == "W1":
            self.latencies.append(time.perf_counter() - call.offered_at)
            if self.counts["offered"] < self.n_calls:
                self.offer(out, self.new_call_id())
        del self.calls[cid]

    def release(self, out: list[bytes]) -> None:
        self.released = True
        for call in self.calls.values():
            if call.playing and call.play_id is not None:
                call.playing = False
                self.play_event(out, call.call_id, call.play_id, b"finished")

    async def blast(self) -> None:
        """W2: the event storm, in write batches, honouring the transport's flow control."""
        conn = self.conn
        assert conn is not None
        calls = [c for c in self.calls.values() if not c.call_id.startswith("ctl-")]
        ids = [(c.call_id.encode(), c.play_id or b"") for c in calls]
        n_calls = len(ids)
        to_calls = self.to_calls
        batch: list[bytes] = []
        for i in range(self.n_events):
            call_id, play_id = ids[i % n_calls]
            rnd = i // n_calls
            eid = self.next_event_id()
            if rnd % 2 == 0:
                state = b"paused" if rnd % 4 == 0 else b"playing"
                batch.append(
                    _frame(T_PLAY % (eid, self.now_ts, call_id, play_id, state, BENCH_MARK))
                )
                self.counts["blast_play"] += 1
                key = "play:" + state.decode()
            else:
                batch.append(_frame(T_STATE % (eid, self.now_ts, call_id, b"answered", BENCH_MARK)))
                self.counts["blast_state"] += 1
                key = "state:answered"
            to_calls[key] = to_calls.get(key, 0) + 1
            self.counts["blast_sent"] += 1
            if len(batch) >= WRITE_BATCH:
                conn.write(batch)
                batch = []
                await conn.writable()
                if conn.closed:
                    return
        out: list[bytes] = batch
        for call in calls:
            if call.playing and call.play_id is not None:
                call.playing = False
                self.play_event(out, call.call_id, call.play_id, b"finished")
        self.blast_done = True
        conn.write(out)

    def on_message(self, out: list[bytes], payload: bytes) -> None:
        try:
            msg = _loads(payload)
        except ValueError:
            self.error("bad_json", payload[:80].decode("utf-8", "replace"))
            return
        if not isinstance(msg, dict):
            self.error("not_object", payload[:80].decode("utf-8", "replace"))
            return
        method = msg.get("method")
        if method is None:  # a reply: the ack of one of our events
            rid = msg.get("id")
            if "error" in msg:
                self.error("client_error_reply", repr(msg.get("error")))
            if rid in self.outstanding:
                self.outstanding.discard(rid)
                self.counts["acks"] += 1
            else:
                self.error("unknown_ack", repr(rid))
            return
        params = msg.get("params")
        self.on_request(out, msg.get("id"), str(method), params if isinstance(params, dict) else {})

    def connection_closed(self, conn: Connection) -> None:
        """The client's connection is gone: the run is over (the sweep's R overrides)."""
        if self.conn is conn:
            self.finished.set()

    def after_write(self, conn: Connection) -> None:
        """Called after the frames of one read went out (a hook for the sweep's R)."""

    def report(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        t_end = self.t_done if self.done else time.perf_counter()
        cpu_end = self.cpu_done if self.done else time.process_time()
        wall, cpu = t_end - self.t_start, cpu_end - self.cpu_start
        unacked = len(self.outstanding)
        return {
            "role": "server",
            "workload": self.workload,
            "codec": CODEC,
            "complete": self.done,
            "counts": self.counts,
            "to_calls": self.to_calls,
            "at_done": self.at_done,
            "unacked": unacked,
            "methods": self.methods,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "wall_s": wall if self.started else 0.0,
            "cpu_s": cpu if self.started else 0.0,
            "latency_p50_ms": percentile(lat, 50) * 1000.0,
            "latency_p99_ms": percentile(lat, 99) * 1000.0,
            "latency_n": len(lat),
        }


class Connection(asyncio.Protocol):
    """One WebSocket connection: handshake, frame parsing, batched writes."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.closed = False
        self.fragments: list[bytes] = []
        self._can_write = asyncio.Event()
        self._can_write.set()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20)
        if self.bench.conn is not None and not self.bench.conn.closed:
            self.bench.error("second_connection")
        self.bench.conn = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._can_write.set()
        self.bench.connection_closed(self)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    async def writable(self) -> None:
        """Wait until the transport drains below its high-water mark (and yield once)."""
        await asyncio.sleep(0)
        await self._can_write.wait()

    def write(self, frames: list[bytes]) -> None:
        if frames and self.transport is not None and not self.closed:
            self.transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded and not self._handshake():
            return
        out: list[bytes] = []
        bench = self.bench
        bench.now_ts = b"%.4f" % time.time()
        buf = self.buf
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            hdr = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hdr = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            masked = b1 & 0x80
            if masked:
                hdr += 4
            if end - pos < hdr + length:
                break
            payload = bytes(buf[pos + hdr : pos + hdr + length])
            if masked:
                payload = _unmask(payload, bytes(buf[pos + hdr - 4 : pos + hdr]))
            else:
                bench.error("unmasked_client_frame")
            pos += hdr + length
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == 0x1 or opcode == 0x2 or opcode == 0x0:
                if not fin:
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload = b"".join([*self.fragments, payload])
                    self.fragments = []
                bench.on_message(out, payload)
            elif opcode == 0x8:  # close: echo it and hang up
                out.append(bytes((0x88, min(len(payload), 125))) + payload[:125])
                self.write(out)
                if self.transport is not None:
                    self.transport.close()
                self.closed = True
                del buf[:pos]
                return
            elif opcode == 0x9:  # ping -> pong
                out.append(bytes((0x8A, len(payload))) + payload)
        del buf[:pos]
        if not bench.done and bench.workload_complete():
            bench.finish_workload(out)
        self.write(out)
        bench.after_write(self)

    def _handshake(self) -> bool:
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self.buf) > 65536:
                self.bench.error("bad_handshake", "header too long")
                assert self.transport is not None
                self.transport.close()
            return False
        head = bytes(self.buf[:head_end]).decode("latin-1")
        del self.buf[: head_end + 4]
        key = ""
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        assert self.transport is not None
        if not key:
            self.bench.error("bad_handshake", head[:200])
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.upgraded = True
        return True


async def serve(args: argparse.Namespace, bench_cls: type[Bench] = Bench) -> dict[str, Any]:
    """Serve one client until it disconnects (or the deadline); return the report."""
    bench = bench_cls(args)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(bench), "127.0.0.1", args.port, ssl=ctx, backlog=16
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "listening", "port": port, "pid": os.getpid()}), flush=True)
    timed_out = False
    try:
        await asyncio.wait_for(bench.finished.wait(), args.deadline)
    except TimeoutError:
        timed_out = True
    server.close()
    if bench.conn is not None and bench.conn.transport is not None:
        bench.conn.transport.abort()
    report = bench.report()
    report["deadline_hit"] = timed_out
    return report


def make_parser(description: str, workloads: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options every load server takes (the sweep's adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cert", required=True, help="PEM certificate chain for localhost")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workload", choices=workloads, required=True)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=120.0, help="give up after N s")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0], ("W1", "W2", "W3", "W4"))
    args = parser.parse_args(argv)
    report = asyncio.run(serve(args))
    print(json.dumps(report), flush=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
