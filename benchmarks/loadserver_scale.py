"""The load server's scale-sweep workloads (``scale.py``): S, R and M.

Same process model, TLS, framing, control calls and report as ``loadserver.py``
(whose ``Bench`` this extends); three more workloads:

* ``S`` (scale): ``--calls`` L calls answered, playing and held (listeners on play
  and state); ``ctl-hold`` once every play runs (the driver samples RSS); then
  ``--events`` non-terminal events round-robin as fast as flow control allows (the
  blast, marked ``"bench": true``); once every one is acked, ``--paced`` events at
  ``--rate`` per second, each stamped with ``"sent_ns"`` (``time.monotonic_ns()``,
  CLOCK_MONOTONIC, one clock for every process of the machine) for the latency;
  once those are acked, ``finished`` for every play, and the calls hang up.
* ``R`` (resume): L calls answered and held; ``ctl-drop`` once every play runs; at
  its ``calling.end`` (every event acked) the server aborts the TCP connection. The
  client reconnects; ``--mode resume`` answers its ``signalwire.connect`` with the
  same ``protocol`` and, in the same write, the ``finished`` of every held play (the
  calls hang up on the new link; ``calling.clear_digit_bindings`` probes, which
  relay_anyio sends to recheck live calls after a resume, are answered 200 while the
  call lives, 404 after); ``--mode fresh`` answers with a new ``protocol``, forgets
  every call and offers ``ctl-done`` at once: the client must fail every wait.
* ``M`` (messaging): after ``ctl-start`` the driver sends ``--messages`` SMS at once;
  each ``messaging.send`` is answered 200 with a fresh ``message_id``, followed in
  the same write by its ``initiated``, ``sent`` and ``delivered`` state events.

The times of the drop (``t_drop``), of the reconnect's ``signalwire.connect``
(``t_connect``) and of completion (``t_done``) are ``time.monotonic()`` values, so the
harness can subtract a driver's own monotonic timestamps from them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from loadserver import (
    _EVENT_HEAD,
    BENCH_MARK,
    CONTEXT,
    CTL_HOLD,
    R_200,
    T_PLAY,
    T_RESULT,
    T_STATE,
    WRITE_BATCH,
    Bench,
    CallState,
    Connection,
    _dumps,
    _frame,
    make_parser,
    serve,
)

CTL_DROP = "ctl-drop"
PROBE_METHOD = "calling.clear_digit_bindings"
R_CONNECT_FMT = (
    b'{"protocol":"%s","identity":"bench@relay","sessionid":"bench-session",'
    b'"nodeid":"b2e8d4c6-1a3f-4b5d-9e7c-0f2a4c6e8b1d","session_restored":%s,"authorization":{}}'
)
PROTOCOL = b"signalwire_bench_protocol"
PROTOCOL_FRESH = b"signalwire_bench_protocol_fresh"
T_MESSAGE = _EVENT_HEAD + (
    b'"messaging.state","timestamp":%s,"params":{"message_id":"%s","context":"'
    + CONTEXT
    + b'","direction":"outbound","from_number":"+15551110000","to_number":"+15552220000",'
    b'"body":"bench","media":[],"segments":1,"tags":[],"message_state":"%s"}}}'
)
MESSAGE_STATES = (b"initiated", b"sent", b"delivered")


class ScaleBench(Bench):
    """S, R and M on top of the base workloads' bookkeeping (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.n_paced: int = args.paced
        self.rate: float = args.rate
        self.mode: str = args.mode
        self.n_messages: int = args.messages
        self.counts.update(
            {"paced_sent": 0, "probes": 0, "messages": 0, "delivered_sent": 0, "forgotten": 0}
        )
        self.drop_pending = False
        self.dropped = False
        self.reconnected = False
        self.resume_requested = False
        self.t_drop = self.t_connect = self.t_done_mono = 0.0
        self.phase_s: dict[str, float] = {}
        self.acked: asyncio.Event | None = None  # set once nothing is outstanding

    # -- shared ---------------------------------------------------------------------

    def start_workload(self, out: list[bytes]) -> None:
        self.started = True
        self.t_start = time.perf_counter()
        self.cpu_start = time.process_time()
        if self.workload != "M":  # S and R: every call offered at once
            for _ in range(self.n_calls):
                self.offer(out, self.new_call_id())

    def finish_workload(self, out: list[bytes]) -> None:
        self.t_done_mono = time.monotonic()
        super().finish_workload(out)

    def workload_complete(self) -> bool:
        if not self.started or self.outstanding:
            return False
        if self.workload == "S":
            return self.blast_done and self.counts["ended"] == self.n_calls
        if self.workload == "R":
            return self.reconnected and self.counts["ended"] == self.n_calls
        return self.counts["delivered_sent"] == self.n_messages

    def on_play(self, out: list[bytes], call: CallState, params: dict[str, Any]) -> None:
        super().on_play(out, call, params)
        if self.counts["plays"] == self.n_calls and not self.hold_offered:
            self.hold_offered = True
            self.offer(out, CTL_HOLD if self.workload == "S" else CTL_DROP)

    def on_end(self, out: list[bytes], call: CallState) -> None:
        super().on_end(out, call)
        if call.call_id == CTL_DROP:
            self.drop_pending = True

    def on_request(self, out: list[bytes], rid: Any, method: str, params: dict[str, Any]) -> None:
        if method == "signalwire.connect" and self.counts["connects"]:
            self.on_reconnect(out, rid, params)
        elif method == PROBE_METHOD:
            self.methods[method] = self.methods.get(method, 0) + 1
            self.counts["probes"] += 1
            call = self.calls.get(params.get("call_id", ""))
            code = R_200 if call is not None and not call.ended else b'{"code":"404"}'
            out.append(_frame(T_RESULT % (_dumps(rid), code)))
        elif method == "messaging.send" and self.workload == "M":
            self.methods[method] = self.methods.get(method, 0) + 1
            self.on_send(out, rid)
        else:
            super().on_request(out, rid, method, params)

    # -- S: blast, paced, release ----------------------------------------------------------

    def release(self, out: list[bytes]) -> None:
        """ctl-hold hung up: S runs its event phases first (W3 releases at once)."""
        if self.workload != "S":
            super().release(out)
            return
        self.blast_started = True
        asyncio.get_running_loop().create_task(self.event_phases())

    async def until_acked(self) -> None:
        """Until every event sent so far is acked (or the connection is gone)."""
        if self.outstanding and self.conn is not None and not self.conn.closed:
            self.acked = asyncio.Event()
            await self.acked.wait()
        self.acked = None

    def on_message(self, out: list[bytes], payload: bytes) -> None:
        super().on_message(out, payload)
        if self.acked is not None and not self.outstanding:
            self.acked.set()

    async def event_phases(self) -> None:
        conn = self.conn
        assert conn is not None
        calls = [c for c in self.calls.values() if not c.call_id.startswith("ctl-")]
        ids = [(c.call_id.encode(), c.play_id or b"") for c in calls]
        t0 = time.perf_counter()
        await self.send_events(conn, ids, self.n_events, paced=False)
        await self.until_acked()
        t1 = time.perf_counter()
        await self.send_events(conn, ids, self.n_paced, paced=True)
        await self.until_acked()
        t2 = time.perf_counter()
        self.phase_s = {"blast": t1 - t0, "paced": t2 - t1}
        if conn.closed:
            return
        out: list[bytes] = []
        super().release(out)
        self.blast_done = True
        conn.write(out)

    async def send_events(
        self, conn: Connection, ids: list[tuple[bytes, bytes]], count: int, *, paced: bool
    ) -> None:
        """``count`` events round-robin: as fast as flow control allows, or at the rate."""
        n_calls = len(ids)
        to_calls = self.to_calls
        counts = self.counts
        batch: list[bytes] = []
        start = time.monotonic()
        per_tick = max(1, round(self.rate / 1000.0))  # a tick is ~1 ms
        for i in range(count):
            call_id, play_id = ids[i % n_calls]
            rnd = i // n_calls
            eid = self.next_event_id()
            mark = b',"sent_ns":%d' % time.monotonic_ns() if paced else BENCH_MARK
            if rnd % 2 == 0:
                state = b"paused" if rnd % 4 == 0 else b"playing"
                batch.append(_frame(T_PLAY % (eid, self.now_ts, call_id, play_id, state, mark)))
                key = "play:" + state.decode()
            else:
                batch.append(_frame(T_STATE % (eid, self.now_ts, call_id, b"answered", mark)))
                key = "state:answered"
            to_calls[key] = to_calls.get(key, 0) + 1
            counts["paced_sent" if paced else "blast_sent"] += 1
            if paced:
                if len(batch) >= per_tick:
                    conn.write(batch)
                    batch = []
                    # the next tick's events go out at their time, not earlier
                    due = start + (i + 1) / self.rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            elif len(batch) >= WRITE_BATCH:
                conn.write(batch)
                batch = []
                await conn.writable()
            if conn.closed:
                return
        conn.write(batch)

    # -- R: drop, reconnect --------------------------------------------------------------

    def after_write(self, conn: Connection) -> None:
        if self.drop_pending and not self.outstanding and conn is self.conn:
            self.drop_pending = False
            self.dropped = True
            self.t_drop = time.monotonic()
            assert conn.transport is not None
            conn.transport.abort()

    def connection_closed(self, conn: Connection) -> None:
        if self.acked is not None:
            self.acked.set()
        if self.conn is conn and not (self.dropped and not self.reconnected):
            self.finished.set()

    def on_reconnect(self, out: list[bytes], rid: Any, params: dict[str, Any]) -> None:
        self.counts["connects"] += 1
        self.methods["signalwire.connect"] = self.methods.get("signalwire.connect", 0) + 1
        rid_json = _dumps(rid)
        if self.workload != "R" or not self.dropped or self.reconnected:
            self.error("reconnect", "an unexpected second signalwire.connect")
            out.append(_frame(T_RESULT % (rid_json, R_CONNECT_FMT % (PROTOCOL, b"false"))))
            return
        self.reconnected = True
        self.t_connect = time.monotonic()
        self.resume_requested = params.get("protocol") == PROTOCOL.decode()
        if self.mode == "resume":
            out.append(_frame(T_RESULT % (rid_json, R_CONNECT_FMT % (PROTOCOL, b"true"))))
            super().release(out)  # every live call gets its play's finished
            return
        out.append(_frame(T_RESULT % (rid_json, R_CONNECT_FMT % (PROTOCOL_FRESH, b"false"))))
        forgotten = [c for c in self.calls if not c.startswith("ctl-")]
        self.counts["forgotten"] = len(forgotten)
        for cid in forgotten:
            del self.calls[cid]
        self.finish_workload(out)

    # -- M: messaging --------------------------------------------------------------------

    def on_send(self, out: list[bytes], rid: Any) -> None:
        self.counts["messages"] += 1
        message_id = b"5e6f7a8b-0000-4e1f-a2b3-%012d" % self.counts["messages"]
        result = b'{"code":"200","message":"Message accepted","message_id":"%s"}' % message_id
        out.append(_frame(T_RESULT % (_dumps(rid), result)))
        for state in MESSAGE_STATES:
            eid = self.next_event_id()
            out.append(_frame(T_MESSAGE % (eid, self.now_ts, message_id, state)))
        self.counts["delivered_sent"] += 1

    def report(self) -> dict[str, Any]:
        report = super().report()
        report.update(
            {
                "mode": self.mode,
                "resume_requested": self.resume_requested,
                "t_drop": self.t_drop,
                "t_connect": self.t_connect,
                "t_done": self.t_done_mono,
                "phase_s": self.phase_s,
            }
        )
        return report


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0], ("S", "R", "M"))
    parser.add_argument("--paced", type=int, default=0, help="S: latency events")
    parser.add_argument("--rate", type=float, default=5000.0, help="S: paced events per second")
    parser.add_argument("--mode", choices=("resume", "fresh"), default="resume")
    parser.add_argument("--messages", type=int, default=0, help="M: messages to accept")
    args = parser.parse_args(argv)
    report = asyncio.run(serve(args, ScaleBench))
    sys.stdout.write(__import__("json").dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
