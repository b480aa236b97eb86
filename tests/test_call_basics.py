"""Inbound calls end to end: handler scope, answer/play/hangup, listeners, call end."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    CallEnded,
    PlayAction,
    RelayClient,
    RelayError,
    RelayEvent,
)
from relay_anyio.testing import FakeCall, FakeRelayServer
from relay_anyio.testing._calls import finish_action

from .helpers import make_client, messages

pytestmark = pytest.mark.anyio

Handler = Callable[[Call], Awaitable[None]]


async def run_one_call(
    server: FakeRelayServer, handler: Handler, *, hangup_after: bool = False, **client: Any
) -> None:
    """Offer one call to ``handler`` and wait until the handler is done."""
    done = anyio.Event()
    relay = make_client(server, **client)

    @relay.on_call
    async def wrapped(call: Call) -> None:
        try:
            await handler(call)
        finally:
            done.set()

    async with relay:
        fake = await server.offer_call()
        if hangup_after:
            await server.wait_for_request("calling.play")
            await fake.remote_hangup()
        with anyio.fail_after(10):  # a failure detector only
            await done.wait()


@asynccontextmanager
async def inbound_call(
    server: FakeRelayServer,
    context: str = "default",
    configure: Callable[[RelayClient], object] | None = None,
    **client: Any,
) -> AsyncIterator[tuple[Call, FakeCall]]:
    """Offer one call and hand its ``Call`` to the test body, whose task drives it.

    The handler holds the call's scope open (listeners, scoped actions) until the
    body is done; the client is connected for exactly that long. ``configure`` sees
    the client before it connects (to add client-level listeners).
    """
    calls: list[Call] = []
    offered = anyio.Event()
    release = anyio.Event()
    relay = make_client(server, **client)
    if configure is not None:
        configure(relay)

    @relay.on_call
    async def hold_open(call: Call) -> None:
        calls.append(call)
        offered.set()
        await release.wait()

    async with relay:
        fake = await server.offer_call(context)
        with anyio.fail_after(10):  # a failure detector only
            await offered.wait()
        try:
            yield calls[0], fake
        finally:
            release.set()


async def test_hello_answer_play_hangup(relay_server: FakeRelayServer) -> None:
    seen: dict[str, Any] = {}

    async def handler(call: Call) -> None:
        seen["answer"] = await call.answer()
        action = await call.play([{"type": "tts", "text": "Hello from RELAY!"}])
        assert isinstance(action, PlayAction)
        event = await action.wait()
        seen["state"] = event.params.get("state")
        await call.hangup()
        seen["ended"] = await call.wait_for_ended()

    await run_one_call(relay_server, handler)
    assert seen["answer"]["code"] == "200"
    assert seen["state"] == "finished"
    assert seen["ended"].call_state == "ended"
    [play] = relay_server.received("calling.play")
    # The guide's flat media went out in the wire shape.
    assert play["params"]["play"] == [{"type": "tts", "params": {"text": "Hello from RELAY!"}}]
    assert set(play["params"]) == {"node_id", "call_id", "control_id", "play"}
    [end] = relay_server.received("calling.end")
    assert end["params"]["reason"] == "hangup"


async def test_call_properties(relay_server: FakeRelayServer) -> None:
    seen: list[tuple[str, ...]] = []

    async def handler(call: Call) -> None:
        seen.append(
            (
                call.direction,
                call.context,
                call.device["params"]["from_number"],
                call.state,
                call.call_id,
                call.node_id,
                call.tag,
            )
        )

    await run_one_call(relay_server, handler)
    [(direction, context, from_number, state, call_id, node_id, tag)] = seen
    assert (direction, context, from_number, state) == (
        "inbound",
        "default",
        "+15551110000",
        "created",
    )
    assert call_id and node_id
    assert tag == ""


async def test_far_end_hangup_finishes_a_wait_with_the_terminal_event(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60  # the play finishes only because the call ends
    outcome: list[Any] = []

    async def handler(call: Call) -> None:
        await call.answer()
        action = await call.play([{"type": "tts", "text": "long"}])
        outcome.append((await action.wait()).params["state"])
        outcome.append(action.call_ended)

    await run_one_call(relay_server, handler, hangup_after=True)
    assert outcome == ["finished", False]


async def test_wait_on_a_call_that_ends_without_a_terminal_event_finishes_at_once(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60  # the play would never finish on its own
    outcome: dict[str, Any] = {}
    client = make_client(relay_server)
    done = anyio.Event()

    @client.on_call
    async def on_call(call: Call) -> None:
        try:
            await handler(call)
        finally:
            done.set()

    async def handler(call: Call) -> None:
        await call.answer()
        action = await call.play([{"type": "tts", "text": "long"}])
        start = anyio.current_time()
        result = await action.wait()
        outcome["waited"] = anyio.current_time() - start
        outcome["result"] = result
        outcome["call_ended"] = action.call_ended
        with pytest.raises(CallEnded) as info:
            await call.wait_for(EVENT_CALL_PLAY)
        outcome["end_reason"] = info.value.end_reason

    async with client:
        fake = await relay_server.offer_call()
        await relay_server.wait_for_request("calling.play")
        # The server says "ended" and nothing about the play.
        await fake.send_event(
            EVENT_CALL_STATE,
            {
                "call_id": fake.call_id,
                "node_id": fake.node_id,
                "call_state": "ended",
                "end_reason": "hangup",
            },
        )
        with anyio.fail_after(20):
            await done.wait()
    assert outcome["waited"] < 10  # at the call's end, not the play's 60 s (generous for load)
    assert outcome["call_ended"] is True
    assert outcome["result"].params["state"] == "call_ended"
    assert outcome["result"].params["end_reason"] == "hangup"
    assert outcome["end_reason"] == "hangup"


async def test_listeners_sync_and_async(relay_server: FakeRelayServer) -> None:
    states: list[str] = []
    plays: list[str] = []

    async def handler(call: Call) -> None:
        def on_state(event: RelayEvent) -> None:
            states.append(event.params.get("call_state", ""))

        async def on_play(event: RelayEvent) -> None:
            await anyio.lowlevel.checkpoint()
            plays.append(event.params.get("state", ""))

        call.on(EVENT_CALL_STATE, on_state)
        call.on(EVENT_CALL_PLAY, on_play)
        await call.answer()
        action = await call.play([{"type": "tts", "text": "Hello"}])
        await action.wait()
        await call.hangup()
        await call.wait_for_ended()

    await run_one_call(relay_server, handler)
    assert states == ["answered", "ending", "ended"]
    assert plays == ["playing", "finished"]


async def test_handler_exception_is_logged_and_client_keeps_serving(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    served: list[str] = []
    client = make_client(relay_server)

    @client.on_call
    async def handle(call: Call) -> None:
        if not served:
            served.append(call.call_id)
            raise RuntimeError("boom")
        served.append(call.call_id)
        await call.answer()

    async with client:
        first = await relay_server.offer_call()
        second = await relay_server.offer_call()
        await second.wait_for_state("answered")
    assert served == [first.call_id, second.call_id]
    assert any(f"on_call handler failed for call {first.call_id}" in m for m in messages(caplog))


async def test_actions_still_running_are_stopped_when_handler_returns(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60

    async def handler(call: Call) -> None:
        await call.answer()
        await call.play([{"type": "tts", "text": "forever"}])

    await run_one_call(relay_server, handler)
    await relay_server.wait_for_request("calling.play.stop")
    [play] = relay_server.received("calling.play")
    [stop] = relay_server.received("calling.play.stop")
    assert stop["params"]["control_id"] == play["params"]["control_id"]


async def test_scoped_action_is_stopped_on_exit_and_on_cancel(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60

    async def handler(call: Call) -> None:
        await call.answer()
        async with await call.record(audio={"format": "mp3"}) as rec:
            assert not rec.is_done
        with anyio.move_on_after(0.05):
            async with await call.play([{"type": "tts", "text": "cancel me"}]):
                await anyio.sleep_forever()
        await call.hangup()

    await run_one_call(relay_server, handler)
    assert len(relay_server.received("calling.record.stop")) == 1
    assert len(relay_server.received("calling.play.stop")) == 1


async def test_gone_call_is_a_no_op_other_errors_raise(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: dict[str, Any] = {}

    async def handler(call: Call) -> None:
        relay_server.fail_next("calling.end", code="404", message="Call not found")
        outcome["gone"] = await call.hangup()
        relay_server.fail_next("calling.answer", code="409", message="Conflict")
        with pytest.raises(RelayError) as info:
            await call.answer()
        outcome["code"] = info.value.code

    await run_one_call(relay_server, handler)
    assert outcome == {"gone": {}, "code": 409}
    assert any("call is gone" in m for m in messages(caplog))


async def test_action_wait_timeout_leaves_action_usable(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 60  # it finishes when this test says, below
    outcome: list[str] = []

    async def handler(call: Call) -> None:
        await call.answer()
        action = await call.play([{"type": "tts", "text": "x"}])
        with pytest.raises(TimeoutError):
            await action.wait(timeout=0.01)
        fake = relay_server.calls[call.call_id]
        await finish_action(fake, fake.actions[action.control_id])  # the play's time is up
        outcome.append((await action.wait(timeout=10)).params["state"])
        outcome.append((await action.wait()).params["state"])

    await run_one_call(relay_server, handler)
    assert outcome == ["finished", "finished"]


async def test_wait_for_answered_raises_if_call_ends_unanswered(
    relay_server: FakeRelayServer,
) -> None:
    outcome: list[CallEnded] = []
    client = make_client(relay_server)
    done = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        try:
            await call.wait_for_answered(timeout=30)
        except CallEnded as exc:
            outcome.append(exc)
        done.set()

    async with client:
        fake = await relay_server.offer_call()
        await anyio.wait_all_tasks_blocked()  # the handler waits for the answer
        await fake.remote_hangup("cancel")
        with anyio.fail_after(10):  # a failure detector only
            await done.wait()
    assert outcome and outcome[0].end_reason == "cancel"


async def test_on_completed_callback(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    got: list[str] = []

    async def handler(call: Call) -> None:
        async def on_play_done(event: RelayEvent) -> None:
            got.append(event.params.get("state", ""))

        await call.answer()
        action = await call.play(
            [{"type": "tts", "text": "Processing..."}], on_completed=on_play_done
        )
        await action.wait()
        await call.hangup()

    await run_one_call(relay_server, handler)
    assert got == ["finished"]
