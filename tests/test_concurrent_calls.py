"""200 inbound calls at once: every event reaches its own call and nothing else.

Each call presses different digits (scripted per call) and records; each handler must
get back exactly its own digits and its own recording URL, each call's listeners see
only events of that call, and every call ends cleanly on both sides.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_STATE,
    Call,
    RelayEvent,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import make_client

pytestmark = pytest.mark.anyio

CALLS = 200
#: The test's timers only catch a hang. It is CPU-bound: ~0.5 s on trio, ~2.5 s on
#: asyncio in debug mode when idle, 15 s seen on a loaded machine, where one call's
#: request or wait can take seconds (2-5 s limits failed there).
HANG = 60.0


@pytest.mark.timeout(180)
async def test_200_concurrent_calls_each_get_their_own_events(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.collect_delay = 0.01  # input arrives later: the calls overlap
    outcome: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []
    finished = anyio.Event()
    client = make_client(relay_server, max_active_calls=CALLS, request_timeout=HANG)

    @client.on_call
    async def handle_call(call: Call) -> None:
        mine: dict[str, Any] = {"listened": []}

        def listen(event: RelayEvent) -> None:
            mine["listened"].append((event.event_type, event.call_id))

        try:
            for event_type in (
                EVENT_CALL_STATE,
                EVENT_CALL_PLAY,
                EVENT_CALL_COLLECT,
                EVENT_CALL_RECORD,
            ):
                call.on(event_type, listen)
            await call.answer()
            recording = await call.record(audio={"format": "wav", "direction": "both"})
            collect = await call.play_and_collect(
                [{"type": "tts", "text": "Enter your code, then hash."}],
                {"digits": {"max": 8, "terminators": "#"}},
            )
            result = await collect.wait(timeout=HANG)
            await recording.stop()
            recorded = await recording.wait(timeout=HANG)
            await call.hangup()
            ended = await call.wait_for_ended(timeout=HANG)
            mine.update(
                digits=result.params.get("result", {}).get("digits", ""),
                url=recorded.params.get("record", {}).get("url", ""),
                record_control_id=recording.control_id,
                end_reason=ended.params.get("end_reason"),
            )
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            outcome[call.call_id] = mine
            if len(outcome) == CALLS:
                finished.set()

    pressed: dict[str, str] = {}
    with anyio.fail_after(150):
        async with client:
            for index in range(CALLS):
                fake = await relay_server.offer_call(from_number=f"+1555{index:07d}")
                pressed[fake.call_id] = f"{index * 7919 % 10**6:06d}"
                fake.script_digits(pressed[fake.call_id], terminator="#")
            await finished.wait()
            # Listener tasks drain what was queued before the calls ended.
            await relay_server.wait_until(
                lambda: all(c.state == "ended" for c in relay_server.calls.values()), timeout=HANG
            )

    assert errors == []
    assert set(outcome) == set(pressed)
    for call_id, mine in outcome.items():
        assert mine["digits"] == pressed[call_id]
        assert mine["url"] == (
            f"https://fake-relay.invalid/recordings/{mine['record_control_id']}.wav"
        )
        assert mine["end_reason"] == "hangup"
        assert mine["listened"], call_id
        assert {cid for _, cid in mine["listened"]} == {call_id}
        assert mine["listened"][-1] == (EVENT_CALL_STATE, call_id)  # "ended", delivered last
    urls = [mine["url"] for mine in outcome.values()]
    assert len(set(urls)) == CALLS  # no two calls share a recording
    for fake in relay_server.calls.values():
        assert fake.states == ["created", "answered", "ending", "ended"]
        assert [r["method"] for r in fake.requests] == [
            "calling.answer",
            "calling.record",
            "calling.play_and_collect",
            "calling.record.stop",
            "calling.end",
        ]
    assert client.active_calls == 0
    assert relay_server.unacked_events() == []
    assert relay_server.violations == []
