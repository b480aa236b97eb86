"""The scale sweep's handlers (``scale.py``: workloads S, R, M), on either SDK.

Same rules as ``bench_handlers.py``, which this extends: the guide's API only, plus
``client.send_message(to_number=, from_number=, body=, on_completed=)``,
``message.wait()`` and ``message.state`` for M. It imports nothing outside the
standard library. See ``loadserver_scale.py`` for what the server does in each.

* S: every call registers the play and state listeners, answers, plays and waits;
  the listeners count every event by type and state, time the blast (``"bench"``)
  and take the latency of the paced events (``"sent_ns"``: the server's
  ``time.monotonic_ns()`` at the write, one clock for the machine).
* R: every call answers, plays and waits; ``ctl-drop`` starts the clock (the server
  drops the link after its hangup). With a resumed session every wait returns and
  the call hangs up; with a fresh one every wait must fail, and the call is left.
* M: ``ctl-start``'s handler sends ``--messages`` messages at once, each
  ``send_message`` -> ``wait()``.
"""

from __future__ import annotations

import time
from typing import Any

from bench_common import CTL_DONE, CTL_DROP, CTL_HOLD, CTL_START, Sample, percentile
from bench_handlers import MEDIA, CallLike, EventLike, Workload


class ScaleWorkload(Workload):
    """S, R and M (see the module docstring)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.latencies: list[float] = []
        self.drop: Sample | None = None
        self.all_failed = self.rt.make_flag()

    async def on_call(self, call: CallLike) -> None:
        call_id = call.call_id
        try:
            if call_id.startswith("ctl-"):
                await self._scale_control(call, call_id)
            elif self.cfg.workload == "S":
                await self._s(call)
            elif self.cfg.workload == "R":
                await self._r(call)
            else:
                self._error(f"unexpected call {call_id}", RuntimeError("M offers none"))
        except Exception as exc:
            self._error(f"handler {call_id}", exc)

    def _held_one(self) -> None:
        self.held += 1
        if self.held == self.cfg.calls:
            self.all_held.set()

    async def _s(self, call: CallLike) -> None:
        call.on(self.rt.event_call_play, self._on_play)
        call.on(self.rt.event_call_state, self._on_state)
        await call.answer()
        action = await call.play(MEDIA)
        self._held_one()
        await action.wait()
        await call.hangup()
        self._completed()

    async def _r(self, call: CallLike) -> None:
        await call.answer()
        action = await call.play(MEDIA)
        self._held_one()
        try:
            await action.wait()
        except Exception:  # the session was replaced: this wait must fail
            self.report.failed += 1
            self.report.mono_last = time.monotonic()
            if self.report.failed == self.cfg.calls:
                self.all_failed.set()
            return
        await call.hangup()
        self.report.mono_last = time.monotonic()
        self._completed()

    # -- S listeners: every event counted; blast timed; paced ones' latency -----------------

    def _on_play(self, event: EventLike) -> None:
        params = event.params
        key = "play:" + str(params.get("state"))
        counts = self.report.listener_counts
        counts[key] = counts.get(key, 0) + 1
        if params.get("bench"):
            self.report.listener_play += 1
            self._tick()
        else:
            sent = params.get("sent_ns")
            if sent is not None:
                self.latencies.append(float(time.monotonic_ns() - sent))

    def _on_state(self, event: EventLike) -> None:
        params = event.params
        state = params.get("call_state")
        key = "state:" + str(state)
        counts = self.report.listener_counts
        counts[key] = counts.get(key, 0) + 1
        if params.get("bench"):
            self.report.listener_state += 1
            self._tick()
            return
        sent = params.get("sent_ns")
        if sent is not None:
            self.latencies.append(float(time.monotonic_ns() - sent))
        elif state == "ended":
            self.ended_seen += 1
            if self.ended_seen == self.cfg.calls:
                self.all_ended.set()

    # -- M ----------------------------------------------------------------------------------

    def _message_completed(self, event: Any) -> None:
        self.report.completed_callbacks += 1

    async def _send_one(self) -> None:
        try:
            message = await self.client.send_message(
                to_number="+15552220000",
                from_number="+15551110000",
                body="bench",
                on_completed=self._message_completed,
            )
            await message.wait()
        except Exception as exc:
            self._error("send_message", exc)
            return
        if message.state == "delivered":
            self.report.delivered += 1
        self.report.completed += 1
        if self.report.completed == self.cfg.messages:
            self.report.mono_last = time.monotonic()
            self.all_completed.set()

    # -- control calls ----------------------------------------------------------------------

    async def _scale_control(self, call: CallLike, call_id: str) -> None:
        workload = self.cfg.workload
        if call_id == CTL_START:
            self.start = Sample.take(collect=workload == "S")
            self.report.rss_base = self.start.rss
            await call.hangup()
            if workload == "M":
                await self.rt.gather([self._send_one] * self.cfg.messages)
        elif call_id == CTL_HOLD:  # S: every call is held in its wait
            await self.rt.wait_flag(self.all_held, 30.0)
            hold = Sample.take(collect=True)
            self.report.held = self.held
            self.report.rss_hold = hold.rss
            await call.hangup()
        elif call_id == CTL_DROP:  # R: the clock starts; the link drops after this hangup
            await self.rt.wait_flag(self.all_held, 30.0)
            self.report.held = self.held
            self.drop = Sample.take()
            await call.hangup()
        elif call_id == CTL_DONE:
            if workload == "R" and self.cfg.mode == "fresh":
                await self.rt.wait_flag(self.all_failed, 30.0)
            else:
                await self.rt.wait_flag(self.all_completed, 30.0)
            if workload == "S":
                await self.rt.wait_flag(self.all_ended, 30.0)
            end = Sample.take()
            begin = self.drop if workload == "R" else self.start
            if begin is not None:
                self.report.run_cpu_s = end.cpu - begin.cpu
                self.report.run_wall_s = end.wall - begin.wall
            self.report.listener_events = self.seen
            if self.latencies:
                ordered = sorted(self.latencies)
                self.report.lat_n = len(ordered)
                self.report.lat_p50_us = percentile(ordered, 50) / 1000.0
                self.report.lat_p99_us = percentile(ordered, 99) / 1000.0
            self.done.set()
