"""Benchmark driver: the limit -- the same frames answered by the least code possible.

No SDK: an asyncio ``Protocol`` over TLS (stdlib ``ssl``, trusting
``SIGNALWIRE_RELAY_CA_FILE``), a minimal hand-written RFC 6455 client framing
(masked text frames out, unmasked frames in, no extensions), ``orjson`` when it is
importable, and one small state machine per workload that sends exactly the frames
the SDK handlers cause: ``signalwire.connect``; an ack for every event; per call
``calling.answer`` -> ``calling.play`` -> (terminal ``calling.call.play``) ->
``calling.end``; W4's ``calling.play.volume`` loop; W2's "listeners" are a type check
and a counter. Every SDK figure is reported as a ratio to this one.

Measurement, control calls and the JSON report are the same as the SDK drivers'
(``bench_common``). Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import ssl
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench_common import (
    CTL_DONE,
    CTL_HOLD,
    CTL_START,
    Config,
    Report,
    Sample,
    count_live,
    heap_growth,
    parse_args,
    percentile,
    window_start,
    window_stop,
)

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    _loads: Callable[[bytes], Any] = orjson.loads
    _dumps: Callable[[Any], bytes] = orjson.dumps
else:  # pragma: no cover - depends on the environment
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


_getrandbits = random.getrandbits
EV_PLAY, EV_STATE, EV_RECEIVE = "calling.call.play", "calling.call.state", "calling.call.receive"
MEDIA: list[dict[str, Any]] = [
    {"type": "tts", "params": {"text": "Thank you for calling the benchmark line."}}
]
VOLUMES = (-3.0, 0.0, 2.5, 6.0)
TERMINAL = ("finished", "error")


def _frame(payload: bytes) -> bytes:
    """One masked, final text frame (a fresh random key per frame, as RFC 6455 asks)."""
    n = len(payload)
    mask = _getrandbits(32).to_bytes(4, "big")
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    if n < 126:
        return bytes((0x81, 0x80 | n)) + mask + body
    if n < 65536:
        return bytes((0x81, 0xFE)) + n.to_bytes(2, "big") + mask + body
    return bytes((0x81, 0xFF)) + n.to_bytes(8, "big") + mask + body


class LimitCall:
    __slots__ = ("call_id", "control_id", "node_id")

    def __init__(self, call_id: str, node_id: str) -> None:
        self.call_id = call_id
        self.node_id = node_id
        self.control_id = ""


class Client(asyncio.Protocol):
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.workload = cfg.workload
        self.report = Report(client="limit", workload=cfg.workload)
        self.done = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.out: list[bytes] = []
        self.next_id = 0
        self.pending: dict[str, tuple[str, LimitCall | None]] = {}  # request id -> (what, call)
        self.latencies: list[float] = []  # the sweep's S: paced events, server write -> here
        self.calls: dict[str, LimitCall] = {}
        self.start: Sample | None = None
        self.window_start: Sample | None = None
        self.seen = 0
        self.held = 0
        self.volumes_sent = 0
        self.rtts: list[float] = []
        self.t_request = 0
        self.w4_cpu = 0.0
        self.w4_wall = 0.0
        self.heap_snapshot: tracemalloc.Snapshot | None = None

    # -- plumbing -----------------------------------------------------------------------

    def error(self, text: str) -> None:
        if len(self.report.handler_errors) < 10:
            self.report.handler_errors.append(text[:400])

    def request(self, what: str, call: LimitCall | None, method: str, params: Any) -> None:
        self.next_id += 1
        rid = f"r{self.next_id}"
        self.pending[rid] = (what, call)
        self.out.append(
            _frame(_dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        )

    def call_request(self, what: str, call: LimitCall, method: str, **extra: Any) -> None:
        params = {"node_id": call.node_id, "call_id": call.call_id, **extra}
        self.request(what, call, method, params)

    def flush(self) -> None:
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
            self.out = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16))
        transport.write(
            b"GET / HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n" % (self.cfg.port, key)
        )

    def connect_params(self) -> dict[str, Any]:
        return {
            "version": {"major": 2, "minor": 0, "revision": 0},
            "agent": "relay-bench-limit/1",
            "event_acks": True,
            "authentication": {"project": "bench-project", "token": "bench-token"},
            "contexts": ["bench"],
        }

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.error(f"handshake refused: {bytes(buf[:80])!r}")
                self.done.set()
                return
            del buf[: end + 4]
            self.upgraded = True
            self.request("connect", None, "signalwire.connect", self.connect_params())
        pos, end = 0, len(buf)
        while end - pos >= 2:
            length = buf[pos + 1] & 0x7F
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
            if end - pos < hdr + length:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 0x1:
                self.on_message(_loads(bytes(buf[pos + hdr : pos + hdr + length])))
            elif opcode == 0x8:
                self.done.set()
            pos += hdr + length
        del buf[:pos]
        self.flush()

    # -- RELAY --------------------------------------------------------------------------

    def on_message(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        rid = msg.get("id")
        if method is None:
            entry = self.pending.pop(rid, None) if isinstance(rid, str) else None
            if "error" in msg or not str(msg.get("result", {}).get("code", "200")).startswith("2"):
                self.error(f"request failed: {msg!r}")
            if entry is not None and entry[1] is not None:
                self.on_result(entry[0], entry[1])
            return
        self.out.append(_frame(b'{"jsonrpc":"2.0","id":%s,"result":{}}' % _dumps(rid)))
        if method == "signalwire.event":
            params = msg["params"]
            self.on_event(params["event_type"], params["params"])

    def on_event(self, event_type: str, params: dict[str, Any]) -> None:
        if event_type == EV_RECEIVE:
            offered = LimitCall(params["call_id"], params["node_id"])
            self.calls[offered.call_id] = offered
            self.on_offer(offered)
            return
        call_id = params.get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None:
            return
        listened = (self.workload == "W2" or self.workload == "S") and call.call_id[:4] != "ctl-"
        if event_type == EV_PLAY:
            if listened:
                key = "play:" + str(params.get("state"))
                counts = self.report.listener_counts
                counts[key] = counts.get(key, 0) + 1
                if params.get("bench"):
                    self.report.listener_play += 1
                    self.tick()
                    return
                sent = params.get("sent_ns")
                if sent is not None:
                    self.latencies.append(float(time.monotonic_ns() - sent))
                    return
            if params.get("state") in TERMINAL and params.get("control_id") == call.control_id:
                self.call_request("end", call, "calling.end", reason="hangup")
        elif event_type == EV_STATE:
            state = params.get("call_state")
            if listened:
                key = "state:" + str(state)
                counts = self.report.listener_counts
                counts[key] = counts.get(key, 0) + 1
                if params.get("bench"):
                    self.report.listener_state += 1
                    self.tick()
                    return
                sent = params.get("sent_ns")
                if sent is not None:
                    self.latencies.append(float(time.monotonic_ns() - sent))
                    return
            if state == "ended":
                del self.calls[call.call_id]

    def on_offer(self, call: LimitCall) -> None:
        cid = call.call_id
        w3 = self.workload == "W3"
        if cid == CTL_START:
            self.start = Sample.take(collect=w3)
            if self.workload == "W1":
                window_start()
            self.report.rss_base, self.report.heap_base = self.start.rss, self.start.traced
            if tracemalloc.is_tracing():
                self.heap_snapshot = tracemalloc.take_snapshot()
            self.call_request("ctl", call, "calling.end", reason="hangup")
        elif cid == CTL_HOLD:
            hold = Sample.take(collect=True)
            self.report.held = self.held
            self.report.rss_hold, self.report.heap_hold = hold.rss, hold.traced
            if self.heap_snapshot is not None:
                self.report.extra["heap_hold_top"] = heap_growth(self.heap_snapshot, top=8)
            self.call_request("ctl", call, "calling.end", reason="hangup")
        elif cid == CTL_DONE:
            window_stop()
            end = Sample.take()
            if self.start is not None:
                self.report.run_cpu_s = end.cpu - self.start.cpu
                self.report.run_wall_s = end.wall - self.start.wall
            self.report.listener_events = self.seen
            if w3:
                after = Sample.take(collect=True)
                self.report.rss_after, self.report.heap_after = after.rss, after.traced
                self.report.calls_alive_after = count_live(("LimitCall",))["LimitCall"] - 1
                if self.heap_snapshot is not None:
                    self.report.extra["heap_left_top"] = heap_growth(self.heap_snapshot)
            self.done.set()
        else:
            self.call_request("answer", call, "calling.answer")

    def on_result(self, what: str, call: LimitCall) -> None:
        if what == "answer":
            self.next_id += 1
            call.control_id = f"k{self.next_id}"
            self.call_request("play", call, "calling.play", control_id=call.control_id, play=MEDIA)
        elif what == "play":
            if self.workload in ("W3", "S", "R"):
                self.held += 1
            elif self.workload == "W4":
                window_start()
                self.w4_cpu, self.w4_wall = time.process_time(), time.perf_counter()
                self.send_volume(call)
        elif what == "volume":
            self.rtts.append(float(time.perf_counter_ns() - self.t_request))
            if self.volumes_sent < self.cfg.requests:
                self.send_volume(call)
            else:
                window_stop()
                self.report.window_cpu_s = time.process_time() - self.w4_cpu
                self.report.window_wall_s = time.perf_counter() - self.w4_wall
        elif what == "end":
            self.report.completed += 1

    def send_volume(self, call: LimitCall) -> None:
        volume = VOLUMES[self.volumes_sent & 3]
        self.volumes_sent += 1
        self.t_request = time.perf_counter_ns()
        self.call_request(
            "volume", call, "calling.play.volume", control_id=call.control_id, volume=volume
        )
        self.flush()  # the clock runs from here: write now, not at the end of the read

    def tick(self) -> None:
        self.seen += 1
        if self.seen == 1:
            window_start()
            self.window_start = Sample.take()
        if self.seen == self.cfg.events and self.window_start is not None:
            end = Sample.take()
            window_stop()
            self.report.window_cpu_s = end.cpu - self.window_start.cpu
            self.report.window_wall_s = end.wall - self.window_start.wall


def client_ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca_file = os.environ.get("SIGNALWIRE_RELAY_CA_FILE")
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


async def run(cfg: Config, client_cls: type[Client] = Client) -> Report:
    if cfg.heap:
        tracemalloc.start()
    ctx = client_ssl_context()
    client = client_cls(cfg)
    report = client.report
    report.extra["codec"] = "json" if orjson is None else "orjson"
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_connection(
            lambda: client, "127.0.0.1", cfg.port, ssl=ctx, server_hostname="localhost"
        )
    except OSError as exc:
        report.error = f"cannot connect: {exc!r}"
        return report
    try:
        await asyncio.wait_for(client.done.wait(), cfg.timeout)
    except TimeoutError:
        report.error = (
            f"timeout: no ctl-done within {cfg.timeout:g} s (completed={report.completed})"
        )
    transport.close()
    if client.rtts:
        ordered = sorted(client.rtts)
        report.rtt_n = len(ordered)
        report.rtt_p50_us = percentile(ordered, 50) / 1000.0
        report.rtt_p99_us = percentile(ordered, 99) / 1000.0
    if not report.error:
        if report.handler_errors:
            report.error = "handler errors"
        elif report.run_wall_s == 0.0:
            report.error = "connection closed before ctl-done"
        else:
            report.ok = True
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(__doc__ or "", argv)
    report = asyncio.run(run(cfg))
    report.emit()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
