"""Event streams: ``async for event in action`` and ``call.events(...)``.

What is checked is what the client's stream yielded and when it ended: every event of
the action (partial results, state changes, detector updates), the end after the
terminal event or the call's end (under each ``action_end_on_call_end``), the
session's loss, and the overflow rule.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    ConnectionLost,
    DetectEvent,
    EventOverflow,
    EventStream,
    RelayClient,
    RelayEvent,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, messages
from .test_call_basics import inbound_call
from .test_fake_server import answered_call

pytestmark = pytest.mark.anyio

NOISE = "test.noise"


def text_of(event: RelayEvent) -> Any:
    result = event.params.get("result") or {}
    return result.get("type") if result.get("type") != "speech" else result["params"]["text"]


async def test_the_fakes_input_waits_for_give_input(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(10):
        async with answered_call(relay_server) as (client, ids):
            fake = relay_server.calls[ids["call_id"]]
            fake.hold_input()
            fake.script_digits("12")
            params = {**ids, "control_id": "c1", "digits": {"max": 2}, "partial_results": True}
            assert (await client.call("calling.collect", params))["result"]["code"] == "200"
            # A round trip later, still nothing: the input is held.
            await client.call("calling.answer", ids)
            assert relay_server.sent_events(EVENT_CALL_COLLECT) == []
            await fake.give_input()
            partial = await client.event(EVENT_CALL_COLLECT)
            final = await client.event(EVENT_CALL_COLLECT)
    assert (partial["result"], partial["final"]) == (
        {"type": "digit", "params": {"digits": "1"}},
        False,
    )
    assert final["result"]["params"]["digits"] == "12" and final["final"] is True


@pytest.mark.parametrize("prompted", [False, True], ids=["collect", "play_and_collect"])
async def test_async_for_over_a_collect_yields_its_partial_results(
    relay_server: FakeRelayServer, prompted: bool
) -> None:
    got: list[tuple[str, Any, Any]] = []
    async with inbound_call(relay_server) as (call, fake):
        fake.hold_input()
        fake.script_speech("I want sales please")
        await call.answer()
        spec = {"speech": {}, "partial_results": True, "send_start_of_input": True}
        if prompted:
            action: Any = await call.play_and_collect([{"type": "tts", "text": "Speak"}], spec)
        else:
            action = await call.collect(speech={}, partial_results=True, send_start_of_input=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(fake.give_input)  # the caller speaks once the loop listens
            async for event in action:
                got.append((event.event_type, event.params.get("final"), text_of(event)))
        assert action.is_done
    collected = [entry for entry in got if entry[0] == EVENT_CALL_COLLECT]
    assert collected == [
        (EVENT_CALL_COLLECT, False, "start_of_input"),
        (EVENT_CALL_COLLECT, False, "I"),
        (EVENT_CALL_COLLECT, False, "I want"),
        (EVENT_CALL_COLLECT, False, "I want sales"),
        (EVENT_CALL_COLLECT, True, "I want sales please"),
    ]
    assert got[-1] == collected[-1]  # the terminal event comes last, then the loop ends
    if prompted:  # the prompt's play events carry the same control_id
        assert (EVENT_CALL_PLAY, None, None) in got


async def test_a_recordings_stream_yields_its_state_changes(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        record = await call.record()  # records until stopped
        async with record.events() as events:
            await record.pause()
            await record.resume()
            await record.stop()
            states = [event.params["state"] async for event in events]
        assert isinstance(events, EventStream)
    # "recording" (the start) may have been routed before the block was entered.
    assert states[-3:] == ["paused", "recording", "finished"]
    assert states[-1] == record.result.params["state"]  # type: ignore[union-attr]


async def test_a_detectors_stream_yields_its_updates(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        await call.answer()
        fake.script_detect("MACHINE", "NOT_READY", "READY")
        detect = await call.detect_answering_machine(wait_for_beep=True)
        verdicts = [e.params["detect"]["params"]["event"] async for e in detect]
    assert verdicts == ["MACHINE", "NOT_READY", "READY"][-len(verdicts) :]
    assert verdicts[-1] == "READY"
    assert isinstance(detect.result, DetectEvent) and detect.result.beep


async def test_every_iteration_is_a_stream_of_its_own(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        record = await call.record()
        async with record.events() as first, record.events() as second:
            await record.stop()
            one = [event async for event in first]
            two = [event async for event in second]
            assert [event async for event in first] == []  # read once
        again = [event async for event in record]  # done: its result, then the end
    assert one == two and one[-1] is record.result
    assert again == [record.result]


async def test_a_finished_action_yields_its_result_and_ends(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hi"}])
        await play.wait(timeout=10)
        assert [event async for event in play] == [play.result]


@pytest.mark.parametrize("mode", ["before_ended", "after_ended", "never"])
async def test_an_actions_stream_ends_with_its_call(
    relay_server: FakeRelayServer, mode: str
) -> None:
    """Whether or not the server ends the action itself (reference §6.3, unconfirmed)."""
    relay_server.action_end_on_call_end = mode  # type: ignore[assignment]
    relay_server.play_duration = 60  # plays until the call ends
    async with inbound_call(relay_server) as (call, fake):
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hold on"}])
        async with play.events() as events:
            await fake.remote_hangup()
            got = [event async for event in events]
    assert got[-1] is play.result
    if mode == "before_ended":
        assert play.result.params["state"] == "finished"
    else:
        assert play.call_ended


@pytest.mark.parametrize("mode", ["after_ended", "never"])
async def test_a_recordings_stream_waits_for_its_late_result(
    relay_server: FakeRelayServer, mode: str
) -> None:
    relay_server.action_end_on_call_end = mode  # type: ignore[assignment]
    async with inbound_call(relay_server, late_result_grace=0.2) as (call, fake):
        await call.answer()
        record = await call.record()
        async with record.events() as events:
            await fake.remote_hangup()
            got = [event async for event in events]
    assert got[-1] is record.result
    assert record.call_ended == (mode == "never")


async def test_call_events_yields_until_the_call_has_ended(relay_server: FakeRelayServer) -> None:
    got: list[tuple[str, str]] = []
    async with inbound_call(relay_server) as (call, _):

        async def read(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            async with call.events(EVENT_CALL_STATE, EVENT_CALL_PLAY) as events:
                task_status.started()
                async for event in events:
                    got.append(
                        (event.event_type, event.params.get("call_state") or event.params["state"])
                    )

        with anyio.fail_after(10):  # the reader ends by itself, with the call
            async with anyio.create_task_group() as tg:
                await tg.start(read)
                await call.answer()
                await (await call.play([{"type": "tts", "text": "bye"}])).wait()
                await call.hangup()
    assert got == [
        (EVENT_CALL_STATE, "answered"),
        (EVENT_CALL_PLAY, "playing"),
        (EVENT_CALL_PLAY, "finished"),
        (EVENT_CALL_STATE, "ending"),
        (EVENT_CALL_STATE, "ended"),
    ]


async def test_call_events_with_no_types_yields_everything_it_knows(
    relay_server: FakeRelayServer,
) -> None:
    async with inbound_call(relay_server) as (call, fake):
        async with call.events() as events:
            await call.answer()
            await fake.send_event(NOISE, {"call_id": fake.call_id})  # unknown: not included
            await fake.remote_hangup()
            types = [event.event_type async for event in events]
    assert types == [EVENT_CALL_STATE] * 3


async def test_call_events_on_an_ended_call(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=10)
        states = [e.params["call_state"] async for e in call.events(EVENT_CALL_STATE)]
        plays = [e async for e in call.events(EVENT_CALL_PLAY)]
    assert states == ["ended"]
    assert plays == []


async def test_leaving_the_block_early_stops_the_stream(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Closed, it gets nothing more: events past its buffer overflow nothing."""
    clients: list[RelayClient] = []
    seen: list[int] = []
    async with inbound_call(relay_server, call_event_buffer=2, configure=clients.append) as (
        call,
        fake,
    ):
        listener = call.on(NOISE, lambda e: seen.append(e.params["n"])).listener
        async with call.events(NOISE) as events:
            await fake.send_event(NOISE, {"call_id": fake.call_id, "n": 0})
            first = await events.receive()
        assert call._listeners[NOISE] == (listener,)  # unsubscribed at the block's end
        for n in range(1, 10):
            await fake.send_event(NOISE, {"call_id": fake.call_id, "n": n})
        await eventually(lambda: len(seen) == 10)
        with pytest.raises(anyio.ClosedResourceError):
            await events.receive()
        assert clients[0].health().listener_overflows == 0
    assert first.params["n"] == 0
    assert not [m for m in messages(caplog, logging.ERROR) if "overflow" in m or "behind" in m]


async def test_a_stream_that_falls_behind_fails_alone(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The listener rule of a call ("fail"), for that stream only: its consumer reads
    what was buffered, then gets EventOverflow; the call's listeners carry on."""
    clients: list[RelayClient] = []
    seen: list[int] = []
    async with inbound_call(relay_server, call_event_buffer=3, configure=clients.append) as (
        call,
        fake,
    ):
        call.on(NOISE, lambda e: seen.append(e.params["n"]))
        got: list[int] = []
        async with call.events(NOISE) as events:
            for n in range(10):
                await fake.send_event(NOISE, {"call_id": fake.call_id, "n": n})
            await eventually(lambda: len(seen) == 10)
            with pytest.raises(EventOverflow) as raised:
                async for event in events:
                    got.append(event.params["n"])
        overflows = clients[0].health().listener_overflows
        call.on(NOISE, print)  # the call's listeners are fine
    assert got == [0, 1, 2]
    assert raised.value.limit == 3
    assert overflows == 1
    assert any("event stream" in m for m in messages(caplog, logging.ERROR))


async def test_streams_fail_with_the_calls_listeners(relay_server: FakeRelayServer) -> None:
    """The call's listener queue overflows (a stuck async listener): its streams end
    with the same EventOverflow, and new ones or new action listeners cannot start."""
    release = anyio.Event()

    async def stuck(event: RelayEvent) -> None:
        await release.wait()

    async with inbound_call(relay_server, call_event_buffer=3) as (call, fake):
        await call.answer()
        record = await call.record()
        call.on(NOISE, stuck)
        async with call.events(EVENT_CALL_PLAY) as plays, record.events() as records:
            for n in range(10):
                await fake.send_event(NOISE, {"call_id": fake.call_id, "n": n})
            with anyio.fail_after(10):
                with pytest.raises(EventOverflow):
                    async for _ in plays:
                        pass
                with pytest.raises(EventOverflow):
                    async for _ in records:
                        pass
            with pytest.raises(EventOverflow):
                record.on(print)
            with pytest.raises(EventOverflow):
                await call.events(NOISE).receive()
            with pytest.raises(EventOverflow):
                await record.events().receive()
        release.set()


async def test_streams_raise_connection_lost_when_the_session_is_gone(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hold on"}])
        async with play.events() as plays, call.events(EVENT_CALL_STATE) as states:
            relay_server.forget_sessions()  # the next connect starts a fresh session
            await relay_server.drop_connection()
            with anyio.fail_after(10), pytest.raises(ConnectionLost):
                async for _ in plays:
                    pass
            with pytest.raises(ConnectionLost):
                async for _ in states:
                    pass
        with pytest.raises(ConnectionLost):
            await play.events().receive()  # the action's outcome is lost: as wait()
        with pytest.raises(ConnectionLost):
            await call.events(EVENT_CALL_STATE).receive()


async def test_a_stream_left_without_closing_does_not_warn(relay_server: FakeRelayServer) -> None:
    """A loop that breaks out keeps its stream until the action ends, then it goes
    quietly (filterwarnings=error would turn a ResourceWarning into a failure)."""
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        record = await call.record()
        await record.pause()
        async for event in record:
            assert event.params["state"] in ("recording", "paused")
            break
        await record.stop()
        await record.wait(timeout=10)
        await anyio.lowlevel.checkpoint()


def test_a_call_stream_before_it_starts() -> None:
    call = Call(lambda *a: None, lambda *a: None, call_id="c", node_id="n")  # type: ignore[arg-type]
    stream = call.events(EVENT_CALL_STATE, EVENT_CALL_STATE)
    assert stream.event_types == (EVENT_CALL_STATE,)
    assert "not started" in repr(stream)
    stream.close()
    assert "closed" in repr(stream)
