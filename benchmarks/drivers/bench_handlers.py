"""The benchmark's handler code, run unchanged on relay_anyio and on ``signalwire.relay``.

Only the guide's API is used: ``RelayClient(project=, token=, host=, contexts=)``,
``@client.on_call`` (here ``client.on_call(handler)``), ``async with client``,
``call.answer()``, ``call.play([...])``, ``action.wait()``, ``action.volume(x)``,
``call.hangup()``, ``call.on(EVENT_CALL_PLAY / EVENT_CALL_STATE, listener)``,
``call.call_id`` and ``event.params``. The SDK's ``RelayClient`` class, its event
constants and three concurrency primitives (an event flag, ``sleep`` and "wait for a
flag with a timeout") are passed in by the driver, so both SDK drivers execute
literally this module. It imports nothing outside the standard library.

Control calls (``ctl-*``, see ``loadserver.py``) are the benchmark's in-band clock:
the driver samples CPU / wall / memory when they arrive and hangs them up to tell
the server to go on.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bench_common import (
    CTL_DONE,
    CTL_HOLD,
    CTL_START,
    Config,
    Report,
    Sample,
    count_live,
    heap_growth,
    percentile,
    window_start,
    window_stop,
)

#: One TTS prompt, in the wire shape (both SDKs send it unchanged).
MEDIA: list[dict[str, Any]] = [
    {"type": "tts", "params": {"text": "Thank you for calling the benchmark line."}}
]
VOLUMES = (-3.0, 0.0, 2.5, 6.0)
PROJECT, TOKEN, CONTEXT = "bench-project", "bench-token", "bench"


class EventLike(Protocol):
    @property
    def params(self) -> dict[str, Any]: ...


class ActionLike(Protocol):
    async def wait(self, timeout: float | None = None) -> Any: ...

    async def volume(self, volume: float) -> Any: ...


class CallLike(Protocol):
    @property
    def call_id(self) -> str: ...

    async def answer(self, **kwargs: Any) -> Any: ...

    async def play(self, media: list[dict[str, Any]], **kwargs: Any) -> ActionLike: ...

    async def hangup(self, reason: str = "hangup") -> Any: ...

    def on(self, event_type: str, listener: Callable[[Any], Any]) -> None: ...


class Flag(Protocol):
    """``asyncio.Event`` or ``anyio.Event``."""

    def set(self) -> Any: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


@dataclass
class Runtime:
    """What differs between the SDKs' event loops; everything else is shared."""

    client_cls: Callable[..., Any]
    event_call_play: str
    event_call_state: str
    make_flag: Callable[[], Flag]
    sleep: Callable[[float], Awaitable[Any]]
    wait_flag: Callable[[Flag, float], Awaitable[bool]]  # False on timeout
    #: Run the coroutine functions concurrently, return when all have (the sweep's M).
    gather: Callable[[list[Callable[[], Awaitable[Any]]]], Awaitable[Any]]


class Workload:
    """One workload's handler, listeners and samples."""

    def __init__(self, cfg: Config, rt: Runtime, client_name: str) -> None:
        self.cfg = cfg
        self.rt = rt
        self.report = Report(client=client_name, workload=cfg.workload)
        self.done = rt.make_flag()
        self.start: Sample | None = None
        self.seen = 0  # W2: blast events seen by listeners
        self.window_start: Sample | None = None
        self.held = 0
        self.all_held = rt.make_flag()
        self.all_completed = rt.make_flag()
        self.ended_seen = 0  # W2: "ended" state events seen by the listeners
        self.all_ended = rt.make_flag()
        self.heap_snapshot: tracemalloc.Snapshot | None = None
        self.client: Any = None  # the SDK's RelayClient, once created

    def _completed(self) -> None:
        self.report.completed += 1
        if self.report.completed == self.cfg.calls:
            self.all_completed.set()

    def _error(self, where: str, exc: BaseException) -> None:
        if len(self.report.handler_errors) < 10:
            self.report.handler_errors.append(f"{where}: {exc!r}"[:400])

    # -- the handler --------------------------------------------------------------------

    async def on_call(self, call: CallLike) -> None:
        call_id = call.call_id
        try:
            if call_id.startswith("ctl-"):
                await self._control(call, call_id)
            elif self.cfg.workload == "W1":
                await self._w1(call)
            elif self.cfg.workload == "W2":
                await self._w2(call)
            elif self.cfg.workload == "W3":
                await self._w3(call)
            else:
                await self._w4(call)
        except Exception as exc:
            self._error(f"handler {call_id}", exc)

    async def _w1(self, call: CallLike) -> None:
        await call.answer()
        action = await call.play(MEDIA)
        await action.wait()
        await call.hangup()
        self._completed()

    async def _w2(self, call: CallLike) -> None:
        call.on(self.rt.event_call_play, self._on_play)
        call.on(self.rt.event_call_state, self._on_state)
        await call.answer()
        action = await call.play(MEDIA)
        await action.wait()
        await call.hangup()
        self._completed()

    async def _w3(self, call: CallLike) -> None:
        await call.answer()
        action = await call.play(MEDIA)
        self.held += 1
        if self.held == self.cfg.calls:
            self.all_held.set()
        await action.wait()
        await call.hangup()
        self._completed()

    async def _w4(self, call: CallLike) -> None:
        await call.answer()
        action = await call.play(MEDIA)
        n = self.cfg.requests
        rtts = [0.0] * n
        clock = time.perf_counter_ns
        window_start()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        for i in range(n):
            t0 = clock()
            await action.volume(VOLUMES[i & 3])
            rtts[i] = float(clock() - t0)
        window_stop()
        self.report.window_cpu_s = time.process_time() - t_cpu
        self.report.window_wall_s = time.perf_counter() - t_wall
        await action.wait()
        await call.hangup()
        self._completed()
        ordered = sorted(rtts)
        self.report.rtt_n = n
        self.report.rtt_p50_us = percentile(ordered, 50) / 1000.0
        self.report.rtt_p99_us = percentile(ordered, 99) / 1000.0

    # -- W2 listeners -------------------------------------------------------------------

    def _on_play(self, event: EventLike) -> None:
        params = event.params
        key = "play:" + str(params.get("state"))
        counts = self.report.listener_counts
        counts[key] = counts.get(key, 0) + 1
        if params.get("bench"):
            self.report.listener_play += 1
            self._tick()

    def _on_state(self, event: EventLike) -> None:
        params = event.params
        state = params.get("call_state")
        key = "state:" + str(state)
        counts = self.report.listener_counts
        counts[key] = counts.get(key, 0) + 1
        if params.get("bench"):
            self.report.listener_state += 1
            self._tick()
        elif state == "ended":
            self.ended_seen += 1
            if self.ended_seen == self.cfg.calls:
                self.all_ended.set()

    def _tick(self) -> None:
        self.seen += 1
        if self.seen == 1:
            window_start()
            self.window_start = Sample.take()
        if self.seen == self.cfg.events and self.window_start is not None:
            end = Sample.take()
            window_stop()
            self.report.window_cpu_s = end.cpu - self.window_start.cpu
            self.report.window_wall_s = end.wall - self.window_start.wall

    # -- control calls ------------------------------------------------------------------

    async def _control(self, call: CallLike, call_id: str) -> None:
        w3 = self.cfg.workload == "W3"
        if call_id == CTL_START:
            self.start = Sample.take(collect=w3)
            if self.cfg.workload == "W1":
                window_start()
            self.report.rss_base, self.report.heap_base = self.start.rss, self.start.traced
            if tracemalloc.is_tracing():
                self.heap_snapshot = tracemalloc.take_snapshot()
            await call.hangup()
        elif call_id == CTL_HOLD:
            # The server offers ctl-hold once every play request is answered; give the
            # handlers a bounded moment to get from play() into action.wait().
            await self.rt.wait_flag(self.all_held, 10.0)
            hold = Sample.take(collect=True)
            self.report.held = self.held
            self.report.rss_hold, self.report.heap_hold = hold.rss, hold.traced
            if self.heap_snapshot is not None:
                self.report.extra["heap_hold_top"] = heap_growth(
                    self.heap_snapshot, top=int(os.environ.get("BENCH_HEAP_TOP", "8"))
                )
            await call.hangup()
        elif call_id == CTL_DONE:
            # The server counts a call done at its calling.end, and offers ctl-done
            # then; the handler counts it once its task is back from hangup(), which
            # can come after this one runs (trio runs the tasks a read woke in any
            # order). Give the handlers a bounded moment, as for ctl-hold.
            await self.rt.wait_flag(self.all_completed, 10.0)
            window_stop()
            if self.cfg.workload == "W2":
                # Likewise the listeners' last "ended" events, which an SDK may hand
                # to its listeners after the hangup returned.
                await self.rt.wait_flag(self.all_ended, 10.0)
            end = Sample.take()
            if self.start is not None:
                self.report.run_cpu_s = end.cpu - self.start.cpu
                self.report.run_wall_s = end.wall - self.start.wall
            self.report.listener_events = self.seen
            if w3:
                await self.rt.sleep(0.05)  # let the finished handler tasks be reaped
                after = Sample.take(collect=True)
                self.report.rss_after, self.report.heap_after = after.rss, after.traced
                self.report.calls_alive_after = count_live(("Call",))["Call"] - 1
                if self.heap_snapshot is not None:
                    self.report.extra["heap_left_top"] = heap_growth(self.heap_snapshot)
            self.done.set()


async def run(rt: Runtime, cfg: Config, client_name: str) -> Report:
    """Connect, serve the workload until the server's ``ctl-done``, disconnect."""
    workload: Workload
    if cfg.workload in ("S", "R", "M"):
        from bench_scale import ScaleWorkload  # the sweep's workloads (scale.py)

        workload = ScaleWorkload(cfg, rt, client_name)
    else:
        workload = Workload(cfg, rt, client_name)
    if cfg.heap:
        tracemalloc.start()
    client = rt.client_cls(
        project=PROJECT, token=TOKEN, host=f"localhost:{cfg.port}", contexts=[CONTEXT]
    )
    client.on_call(workload.on_call)
    workload.client = client
    report = workload.report
    finished = False
    try:
        async with client:
            finished = await rt.wait_flag(workload.done, cfg.timeout)
    except Exception as exc:
        report.error = f"client raised {exc!r}"[:500]
        return report
    if not finished:
        report.error = (
            f"timeout: no ctl-done within {cfg.timeout:g} s (completed={report.completed}, "
            f"held={workload.held}, listener events={workload.seen})"
        )
    elif report.handler_errors:
        report.error = "handler errors"
    else:
        report.ok = True
    return report
