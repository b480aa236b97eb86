"""Answering-machine detection that waits for the beep (reference §12.8, §17.2).

The fake server plays a machine whose greeting lasts a while (``MACHINE`` at once,
``READY`` when it ends), optionally with ``NOT_READY`` in between, and ends the
detector as each ``detect_end`` switch value says. The tests check when the client's
action completed, against the events the call saw: a plain listener and
``on_completed`` run inline as each event is routed, so their common timeline shows
exactly which event ended the action. Nothing extra may go on the wire.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_DETECT,
    Call,
    DetectAction,
    DetectEvent,
    RelayEvent,
)
from relay_anyio.testing import FakeRelayServer

from .test_call_basics import inbound_call

pytestmark = pytest.mark.anyio

DETECT_ENDS = ["silent", "finished_event", "finished_state"]


class Timeline:
    """What the call saw, in order: ("event", verdict) and ("completed", verdict)."""

    def __init__(self, call: Call) -> None:
        self.entries: list[tuple[str, str]] = []
        self.times: dict[tuple[str, str], float] = {}
        self.done = anyio.Event()
        call.on(EVENT_CALL_DETECT, self._seen)

    @staticmethod
    def _verdict(event: RelayEvent) -> str:
        if isinstance(event, DetectEvent) and event.detect_event:
            return event.detect_event
        return str(event.params.get("state"))

    def _seen(self, event: RelayEvent) -> None:
        self._add("event", event)

    def completed(self, event: RelayEvent) -> None:
        self._add("completed", event)
        self.done.set()

    def _add(self, what: str, event: RelayEvent) -> None:
        entry = (what, self._verdict(event))
        self.entries.append(entry)
        self.times.setdefault(entry, anyio.current_time())

    async def wait_completed(self) -> None:
        with anyio.fail_after(10):  # a failure detector only
            await self.done.wait()


def params(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame["params"].items() if k not in ("node_id", "call_id")}


async def detect(call: Call, timeline: Timeline, *, wait_for_beep: bool) -> DetectAction:
    return await call.detect_answering_machine(
        initial_timeout=4.5,
        timeout=30.0,
        wait_for_beep=wait_for_beep,
        on_completed=timeline.completed,
    )


@pytest.mark.parametrize("detect_end", DETECT_ENDS)
async def test_the_beep_ends_the_wait_not_the_machine(
    relay_server: FakeRelayServer, detect_end: str
) -> None:
    relay_server.detect_end = detect_end  # type: ignore[assignment]
    greeting = 0.3
    async with inbound_call(relay_server) as (call, fake):
        fake.script_answering_machine(greeting=greeting)
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        await timeline.wait_completed()
        result = await action.wait()
        if detect_end != "silent":
            await relay_server.wait_until(lambda: len(timeline.entries) == 4)
    assert timeline.entries[:3] == [
        ("event", "MACHINE"),
        ("completed", "READY"),
        ("event", "READY"),
    ]
    assert isinstance(result, DetectEvent)
    assert (result.beep, result.machine, result.human, action.machine) == (True, True, False, True)
    # Timing is the subject: READY came when the greeting ended, not with MACHINE.
    waited = timeline.times[("completed", "READY")] - timeline.times[("event", "MACHINE")]
    assert waited >= greeting * 0.9
    # Nothing extra went on the wire: one detect, as without the beep.
    [sent] = relay_server.received("calling.detect")
    assert params(sent) == {
        "control_id": action.control_id,
        "detect": {"type": "machine", "params": {"initial_timeout": 4.5}},
        "timeout": 30.0,
    }
    assert relay_server.received("calling.detect.stop") == []


async def test_without_wait_for_beep_the_machine_ends_it(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_answering_machine(greeting=0.05)
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=False)
        result = await action.wait(timeout=10)
        await relay_server.wait_until(lambda: len(timeline.entries) == 3)
    assert timeline.entries == [("completed", "MACHINE"), ("event", "MACHINE"), ("event", "READY")]
    assert isinstance(result, DetectEvent)
    assert (result.machine, result.beep) == (True, False)


async def test_not_ready_in_the_greeting_keeps_waiting(relay_server: FakeRelayServer) -> None:
    relay_server.machine_not_ready = True
    async with inbound_call(relay_server) as (call, fake):
        fake.script_answering_machine(greeting=0.2)
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        await timeline.wait_completed()
        result = await action.wait()
    assert timeline.entries == [
        ("event", "MACHINE"),
        ("event", "NOT_READY"),
        ("completed", "READY"),
        ("event", "READY"),
    ]
    assert isinstance(result, DetectEvent) and result.beep


@pytest.mark.parametrize("detect_end", DETECT_ENDS)
@pytest.mark.parametrize("verdict", ["HUMAN", "UNKNOWN"])
async def test_a_human_or_unknown_ends_it_at_once(
    relay_server: FakeRelayServer, detect_end: str, verdict: str
) -> None:
    relay_server.detect_end = detect_end  # type: ignore[assignment]
    async with inbound_call(relay_server) as (call, fake):
        fake.script_detect(verdict, "MACHINE", "READY", gap=0.05)  # later ones only reach listeners
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        result = await action.wait(timeout=10)
    assert timeline.entries[:2] == [("completed", verdict), ("event", verdict)]
    assert isinstance(result, DetectEvent)
    assert (result.human, result.machine, result.beep) == (verdict == "HUMAN", False, False)
    assert not action.machine


async def test_unknown_after_a_machine_keeps_waiting(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_detect("MACHINE", "UNKNOWN", "READY")
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        await timeline.wait_completed()
    assert timeline.entries == [
        ("event", "MACHINE"),
        ("event", "UNKNOWN"),
        ("completed", "READY"),
        ("event", "READY"),
    ]
    assert action.machine


@pytest.mark.parametrize("detect_end", ["finished_event", "finished_state"])
async def test_a_detector_that_ends_before_the_beep_ends_the_wait(
    relay_server: FakeRelayServer, detect_end: str
) -> None:
    relay_server.detect_end = detect_end  # type: ignore[assignment]
    async with inbound_call(relay_server) as (call, fake):
        fake.script_detect("MACHINE")  # no READY: the detector gave up on the greeting
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        result = await action.wait(timeout=10)
    assert timeline.entries == [
        ("event", "MACHINE"),
        ("completed", "finished"),
        ("event", "finished"),
    ]
    assert isinstance(result, DetectEvent)
    assert not result.beep and not result.machine  # the event is the detector's end...
    assert action.machine  # ...the action remembers the machine


async def test_a_silent_detector_waits_until_the_call_ends(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_detect("MACHINE")
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        await relay_server.wait_until(lambda: timeline.entries == [("event", "MACHINE")])
        assert not action.is_done
        await fake.remote_hangup()
        result = await action.wait(timeout=10)
    # A quiet detector has nothing left to report: the call's end ends the wait.
    assert action.call_ended and result.params["state"] == "call_ended"
    assert action.machine


async def test_a_stop_in_the_greeting_ends_it_and_the_beep_never_comes(
    relay_server: FakeRelayServer,
) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_answering_machine(greeting=60)  # no beep within the test
        timeline = Timeline(call)
        action = await detect(call, timeline, wait_for_beep=True)
        await relay_server.wait_until(lambda: timeline.entries == [("event", "MACHINE")])
        await action.stop()
        result = await action.wait(timeout=10)
        assert result.params["state"] == "finished"
    [stop] = relay_server.received("calling.detect.stop")
    assert params(stop) == {"control_id": action.control_id}
    assert timeline.entries == [
        ("event", "MACHINE"),
        ("completed", "finished"),
        ("event", "finished"),
    ]


async def test_wait_for_beep_needs_a_machine_detector(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _fake):
        with pytest.raises(ValueError, match="needs a machine detector"):
            await call.detect({"type": "fax", "params": {"tone": "CED"}}, wait_for_beep=True)
        with pytest.raises(ValueError, match="needs a machine detector"):
            await call.detect({"params": {}}, wait_for_beep=True)
    assert relay_server.received("calling.detect") == []


async def test_the_detect_form_waits_for_the_beep_too(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_answering_machine()
        action = await call.detect({"type": "machine", "params": {}}, wait_for_beep=True)
        result = await action.wait(timeout=10)
    assert isinstance(result, DetectEvent) and result.beep
    [sent] = relay_server.received("calling.detect")
    assert params(sent) == {
        "control_id": action.control_id,
        "detect": {"type": "machine", "params": {}},
    }
