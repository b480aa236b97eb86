"""Reliability scenarios shared by ``tests/stress`` and ``benchmarks/soak.py``.

Each scenario runs a real :class:`RelayClient` against a :class:`FakeRelayServer` over
loopback and returns a report of exact counts. The tests run them small and assert on
every field; the soak script runs them at full size and prints the report.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import attrs

from relay_anyio import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_STATE,
    Action,
    Call,
    ConnectionLost,
    RelayClient,
    RelayEvent,
)
from relay_anyio.testing import FakeRelayServer

__all__ = [
    "FaultReport",
    "FloodReport",
    "fast_client",
    "peak_rss_mib",
    "rss_mib",
    "run_fault_scenario",
    "run_flood_scenario",
]

_T = TypeVar("_T")
SEQ = FakeRelayServer.EVENT_SEQ_KEY
#: Event types a call's listeners record (everything the fake sends for these calls
#: except ``calling.call.receive``, which creates the call and is not a listener event).
CALL_EVENT_TYPES = (EVENT_CALL_STATE, EVENT_CALL_PLAY, EVENT_CALL_COLLECT, EVENT_CALL_RECORD)


#: The scenarios' own waits only catch a hang: on a loaded machine a request in the
#: middle of 200 calls' traffic took over 5 s (137 RequestTimeouts in one run).
HANG = 60.0


def fast_client(server: FakeRelayServer, **overrides: Any) -> RelayClient:
    """A client for ``server`` with test timers: quick reconnects, no client pings."""
    options: dict[str, Any] = {
        **server.client_kwargs(),
        "contexts": ["default"],
        "request_timeout": HANG,
        "reconnect_min_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "ping_interval": 3600.0,
    }
    options.update(overrides)
    return RelayClient(**options)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@attrs.define
class FaultReport:
    """What happened in one :func:`run_fault_scenario` run; every count is exact."""

    calls: int
    drops_requested: int
    drops: int = 0
    connections: int = 0
    handlers_started: int = 0
    handlers_completed: int = 0
    ended_on_server: int = 0
    ended_on_client: int = 0
    active_calls_after: int = -1
    events_sent: int = 0
    events_delivered: int = 0
    duplicates: int = 0
    missing: int = 0
    calls_out_of_order: int = 0
    actions_started: int = 0
    actions_completed: int = 0
    requests_lost: int = 0
    unacked_after: int = -1
    max_delay: float = 0.0
    elapsed: float = 0.0
    peak_rss_mib: float = 0.0
    errors: list[str] = attrs.field(factory=list)

    def lines(self) -> list[str]:
        return [
            f"calls completed      {self.handlers_completed}/{self.calls} "
            f"(ended: server {self.ended_on_server}, client {self.ended_on_client}; "
            f"active after {self.active_calls_after})",
            f"connection drops     {self.drops} (requested {self.drops_requested}), "
            f"connections {self.connections}",
            f"events delivered     {self.events_delivered} of {self.events_sent} sent; "
            f"duplicates {self.duplicates}, missing {self.missing}, "
            f"calls out of order {self.calls_out_of_order}",
            f"actions completed    {self.actions_completed}/{self.actions_started}",
            f"requests lost        {self.requests_lost} (ConnectionLost, retried)",
            f"max per-call delay   {self.max_delay * 1000:.1f} ms (server write -> listener)",
            f"unacked at the end   {self.unacked_after}",
            f"elapsed              {self.elapsed:.2f} s",
            f"peak RSS             {self.peak_rss_mib:.1f} MiB",
            f"errors               {len(self.errors)} {self.errors[:3] if self.errors else ''}",
        ]


async def _retry(report: FaultReport, operation: Callable[[], Awaitable[_T]]) -> _T:
    """Run a command; on ConnectionLost (in flight at a drop) count it and send it again.

    Retrying is what a handler does about a command whose fate is unknown. The
    counts stay exact because the test compares what was *delivered* with what the
    server *sent*, and a command that ran twice on the server sends its events twice.
    """
    while True:
        try:
            return await operation()
        except ConnectionLost:
            report.requests_lost += 1


async def run_fault_scenario(
    calls: int = 200,
    drops: int = 25,
    *,
    seed: int = 20240601,
    mean_gap: float | None = None,
    timeout: float = 60.0,
) -> FaultReport:
    """Calls doing play / collect / record while the server drops the link at random.

    Every call: answer, play (wait), play_and_collect (wait), record, stop, wait,
    hang up, wait for the end. Meanwhile ``server.drop_randomly(drops, ...)`` aborts
    the connection at seeded random frames. The report compares, per call, the
    events the server sent (unique ids, stamped in production order) with what the
    call's listeners received.
    """
    report = FaultReport(calls=calls, drops_requested=drops)
    delivered: dict[str, list[tuple[int, float]]] = {}
    all_done = anyio.Event()
    started = time.perf_counter()
    async with FakeRelayServer() as server:
        server.stamp_events = True
        server.play_duration = 0.005
        client = fast_client(server)

        @client.on_call
        async def handle(call: Call) -> None:
            report.handlers_started += 1
            received = delivered.setdefault(call.call_id, [])

            def listen(event: RelayEvent) -> None:
                received.append((event.raw_params[SEQ], anyio.current_time()))

            for event_type in CALL_EVENT_TYPES:
                call.on(event_type, listen)
            actions: list[Action] = []
            try:
                await _retry(report, call.answer)
                play = await _retry(
                    report,
                    lambda: call.play([{"type": "tts", "text": "hi"}], control_id=_id(call, "p")),
                )
                actions.append(play)
                await play.wait()
                collect = await _retry(
                    report,
                    lambda: call.play_and_collect(
                        [{"type": "tts", "text": "press a key"}],
                        {"digits": {"max": 1}},
                        control_id=_id(call, "c"),
                    ),
                )
                actions.append(collect)
                await collect.wait()
                recording = await _retry(
                    report, lambda: call.record({"format": "wav"}, control_id=_id(call, "r"))
                )
                actions.append(recording)
                await _retry(report, recording.stop)
                await recording.wait()
                await _retry(report, call.hangup)
                await call.wait_for_ended()
                report.ended_on_client += call.state == "ended"
                report.handlers_completed += 1
            except Exception as exc:
                report.errors.append(f"{call.call_id}: {exc!r}")
            finally:
                report.actions_started += len(actions)
                report.actions_completed += sum(a.is_done and not a.call_ended for a in actions)
                if report.handlers_completed + len(report.errors) == calls:
                    all_done.set()

        with anyio.fail_after(timeout):
            async with client:
                gap = mean_gap if mean_gap is not None else max(2.0, calls * 37 / (drops * 1.6))
                server.drop_randomly(drops, mean_gap=gap, seed=seed)
                for n in range(calls):
                    fake = await server.offer_call()
                    fake.script_digits(str(n % 10))
                await all_done.wait()
                report.active_calls_after = client.active_calls
                # The acks of the last events may still be on their way.
                with contextlib.suppress(TimeoutError):  # then the report shows them
                    await server.wait_until(lambda: not server.unacked_events(), timeout=HANG)
                report.unacked_after = len(server.unacked_events())
        report.drops = server.random_drops
        report.connections = server.connections
        report.ended_on_server = sum(c.state == "ended" for c in server.calls.values())
        _compare(server, delivered, report)
    report.elapsed = time.perf_counter() - started
    report.peak_rss_mib = peak_rss_mib()
    return report


def _id(call: Call, kind: str) -> str:
    """A fixed control_id per call and action: a retried start names the same action."""
    return f"{call.call_id}-{kind}"


def _compare(
    server: FakeRelayServer, delivered: dict[str, list[tuple[int, float]]], report: FaultReport
) -> None:
    """Per call: the server's events (first write of each stamp) vs the listeners' list."""
    first_write: dict[int, float] = {}
    sent: dict[str, list[int]] = {}
    for entry in server.journal:
        frame = entry.frame
        if entry.direction != "out" or not isinstance(frame, dict):
            continue
        if frame.get("method") != "signalwire.event":
            continue
        envelope = frame["params"]
        if envelope["event_type"] not in CALL_EVENT_TYPES:
            continue
        inner = envelope["params"]
        seq = inner[SEQ]
        if seq not in first_write:
            first_write[seq] = entry.time
            sent.setdefault(inner["call_id"], []).append(seq)
    for call_id in sent.keys() | delivered.keys():
        expected = sorted(sent.get(call_id, []))
        got = [seq for seq, _ in delivered.get(call_id, [])]
        report.events_sent += len(expected)
        report.events_delivered += len(got)
        report.duplicates += len(got) - len(set(got))
        report.missing += len(set(expected) - set(got))
        report.calls_out_of_order += got != sorted(got)
        for seq, at in delivered.get(call_id, []):
            if seq in first_write:
                report.max_delay = max(report.max_delay, at - first_write[seq])


def rss_mib() -> float:
    """Current resident set size of this process (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


@attrs.define
class FloodReport:
    """What happened in one :func:`run_flood_scenario` run."""

    events: int
    acked: int = 0
    unacked_after: int = -1
    connections: int = 0
    listener_calls: int = 0
    overflow_errors: int = 0
    other_call_completed: bool = False
    other_call_max_delay: float = 0.0
    rss_growth_mib: float = 0.0
    traced_peak_mib: float | None = None
    elapsed: float = 0.0

    def lines(self) -> list[str]:
        traced = (
            "" if self.traced_peak_mib is None else f", traced peak {self.traced_peak_mib:.1f} MiB"
        )
        return [
            f"events acked         {self.acked} (flood of {self.events}; unacked after: "
            f"{self.unacked_after}) on {self.connections} connection(s)",
            f"blocked listener     ran {self.listener_calls} time(s); overflow errors logged: "
            f"{self.overflow_errors}",
            f"other call           completed: {self.other_call_completed}, "
            f"max event delay {self.other_call_max_delay * 1000:.1f} ms",
            f"memory               RSS growth {self.rss_growth_mib:.1f} MiB{traced}",
            f"elapsed              {self.elapsed:.2f} s",
        ]


class _CountErrors(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__(logging.ERROR)
        self.needle = needle
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.count += 1


async def run_flood_scenario(
    events: int = 100_000,
    *,
    chunk: int = 500,
    server_window: int = 5000,
    event_buffer: int = 1000,
    trace: bool = False,
    timeout: float = 60.0,
) -> FloodReport:
    """``events`` events for a call whose only listener never returns.

    The listener blocks on its first event (it waits on an Event released at the
    end), so the call's bounded listener queue fills and overflows. Meanwhile a
    second call plays a prompt and hangs up. The server sends in chunks of ``chunk``
    events and keeps at most ``server_window`` unacknowledged (a real server's
    window is not documented; without one, the backlog only moves into the
    socket buffers). Memory is sampled as RSS after every chunk; with ``trace``,
    tracemalloc's peak is measured too (several times slower).
    """
    report = FloodReport(events=events)
    counter = _CountErrors("consumer too slow")
    call_logger = logging.getLogger("relay_anyio.listeners")
    call_logger.addHandler(counter)
    level = call_logger.level
    if not call_logger.isEnabledFor(logging.ERROR):
        call_logger.setLevel(logging.ERROR)  # the counter must see the overflow
    release = anyio.Event()
    flooded_ready = anyio.Event()
    other_done = anyio.Event()
    delays: list[float] = []
    started = time.perf_counter()
    try:
        async with FakeRelayServer() as server:
            server.keep_journal = False
            server.play_duration = 0.05
            client = fast_client(server, call_event_buffer=event_buffer)
            flooded_id: list[str] = []

            @client.on_call
            async def handle(call: Call) -> None:
                if not flooded_id:
                    flooded_id.append(call.call_id)

                    async def blocked(event: RelayEvent) -> None:
                        report.listener_calls += 1
                        await release.wait()

                    call.on("test.flood", blocked)
                    await call.answer()
                    flooded_ready.set()
                    await call.wait_for_ended()
                    return

                def timed(event: RelayEvent) -> None:
                    # The envelope timestamp is the fake's wall clock when it
                    # produced the event: same process, same clock.
                    delays.append(time.time() - event.timestamp)

                call.on(EVENT_CALL_PLAY, timed)
                await call.answer()
                play = await call.play([{"type": "tts", "text": "still here"}])
                await play.wait()
                await call.hangup()
                await call.wait_for_ended()
                report.other_call_completed = True
                other_done.set()

            with anyio.fail_after(timeout):
                async with client:
                    flooded = await server.offer_call()
                    await flooded_ready.wait()
                    if trace:
                        tracemalloc.start()
                        tracemalloc.reset_peak()
                    traced_base = tracemalloc.get_traced_memory()[0] if trace else 0
                    rss_base = peak = rss_mib()
                    session = flooded.session
                    for start in range(0, events, chunk):
                        batch = [
                            ("test.flood", {"call_id": flooded.call_id, "n": n})
                            for n in range(start, min(start + chunk, events))
                        ]
                        await session.emit_many(batch)
                        if start == events // 2:
                            await server.offer_call()  # the other call, mid-flood
                        await server.wait_until(
                            lambda: len(session.unacked_events()) < server_window, timeout=HANG
                        )
                        peak = max(peak, rss_mib())
                    await other_done.wait()
                    # Every event, the flood's and the other call's, gets acknowledged.
                    await server.wait_until(lambda: not server.unacked_events(), timeout=HANG)
                    report.rss_growth_mib = peak - rss_base
                    if trace:
                        traced_peak = tracemalloc.get_traced_memory()[1]
                        report.traced_peak_mib = (traced_peak - traced_base) / 2**20
                        tracemalloc.stop()
                    report.acked = server.acked_count
                    report.unacked_after = len(server.unacked_events())
                    report.connections = server.connections
                    release.set()
                    await flooded.remote_hangup()
    finally:
        call_logger.removeHandler(counter)
        call_logger.setLevel(level)
        if trace and tracemalloc.is_tracing():
            tracemalloc.stop()
    report.overflow_errors = counter.count
    report.other_call_max_delay = max(delays, default=0.0)
    report.elapsed = time.perf_counter() - started
    return report
