"""``client.dial``: serial and parallel devices, tag correlation, failure, no orphans.

The fake server plays every leg (``created`` → ``ringing`` → ``answered`` or
``ended``) and reports the outcome with ``calling.call.dial``. What is checked beyond
the happy path is what other RELAY SDKs got wrong: concurrent dials never get each
other's call, and a dial the client gives up on (timeout, cancellation) leaves no leg
alive on the server, even one that answers after the client stopped waiting.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    ConnectionLost,
    DialTimeout,
    RelayError,
    RelayEvent,
)
from relay_anyio.testing import DialScript, FakeRelayServer, HandlerContext
from relay_anyio.testing._calls import FollowUp
from relay_anyio.testing._handlers_bridging import dial_handler

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]


def phone(number: str) -> JSON:
    return {"type": "phone", "params": {"to_number": number, "from_number": "+15550000000"}}


def legs_of(server: FakeRelayServer, tag: str) -> list[Any]:
    return [c for c in server.calls.values() if c.tag == tag and c.direction == "outbound"]


def ends_sent(server: FakeRelayServer) -> list[tuple[str, str]]:
    return [(f["params"]["call_id"], f["params"]["reason"]) for f in server.received("calling.end")]


#: A scripted ``answer_delay`` meaning "until the event of hold_dial_outcomes is set".
HELD = 3600.0


def hold_dial_outcomes(server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch) -> anyio.Event:
    """Legs scripted with ``answer_delay=HELD`` ring until the returned event is set.

    For tests that need the legs still ringing when the client does something (gives
    up, dials again): a short scripted delay would race the client, and lose on a busy
    machine. The dial's follow-up (``server.run_after``) then waits for the event;
    every other follow-up runs as usual.
    """
    release = anyio.Event()
    run_after = server.run_after

    async def run_after_or_hold(delay: float, follow_up: FollowUp) -> None:
        if delay != HELD:
            await run_after(delay, follow_up)
            return

        async def released() -> None:
            await release.wait()
            await follow_up()

        await run_after(1e-6, released)  # in the server's background, as the delay would

    monkeypatch.setattr(server, "run_after", run_after_or_hold)
    return release


async def no_leg_alive(server: FakeRelayServer, tag: str) -> None:
    def all_ended() -> bool:
        legs = legs_of(server, tag)
        return bool(legs) and all(leg.state == "ended" for leg in legs)

    await server.wait_until(all_ended, timeout=2, what=f"every leg of dial {tag} to end")


async def test_serial_dial_tries_the_groups_in_order(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["busy", "answer"])
    async with make_client(relay_server) as client:
        call = await client.dial([[phone("+15551111111")], [phone("+15552222222")]], tag="t-serial")
        assert isinstance(call, Call)
        assert (call.direction, call.state, call.tag) == ("outbound", "answered", "t-serial")
        assert call.device == phone("+15552222222")
        await call.hangup()
        await call.wait_for_ended(timeout=2)
    [dial] = relay_server.received("calling.dial")
    assert dial["params"] == {
        "tag": "t-serial",
        "devices": [[phone("+15551111111")], [phone("+15552222222")]],
    }
    first, second = legs_of(relay_server, "t-serial")
    assert (first.device, first.states, first.end_reason) == (
        phone("+15551111111"),
        ["created", "ringing", "ended"],
        "busy",
    )
    assert second.call_id == call.call_id
    assert second.states == ["created", "ringing", "answered", "ending", "ended"]


async def test_parallel_dial_returns_the_leg_that_answered(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["no_answer", "answer", "answer"])
    async with make_client(relay_server) as client:
        call = await client.dial(
            [[phone("+15551111111"), phone("+15552222222"), phone("+15553333333")]],
            max_duration=60,
            region="us",
            max_price_per_minute=0.5,
            timeout=5,
        )
        states: list[str] = []
        call.on(EVENT_CALL_STATE, lambda e: states.append(e.params["call_state"]))
        await call.hangup()
        await call.wait_for_ended(timeout=2)
        await eventually(lambda: states[-1:] == ["ended"])
    [dial] = relay_server.received("calling.dial")
    tag = dial["params"]["tag"]
    assert dial["params"] == {
        "tag": tag,
        "max_duration": 60,
        "region": "us",
        "max_price_per_minute": 0.5,
        "devices": [[phone("+15551111111"), phone("+15552222222"), phone("+15553333333")]],
    }
    assert call.tag == tag and call.device == phone("+15552222222")
    a, b, c = legs_of(relay_server, tag)
    assert (a.end_reason, c.end_reason) == ("noAnswer", "cancel")  # c lost the race
    assert b.call_id == call.call_id
    assert states == ["ending", "ended"]  # listeners work on outbound calls
    assert client.active_calls == 0


async def test_concurrent_dials_never_get_each_others_call(relay_server: FakeRelayServer) -> None:
    """20 dials from 20 tasks, each scripted differently; answers arrive out of order."""
    outcomes = ["answer", "busy", "no_answer", "decline"]
    scripts: dict[str, DialScript] = {}
    plan: dict[str, tuple[str, str]] = {}  # number -> (own outcome, sibling outcome)
    for i in range(20):
        number = f"+1555{i:07d}"
        own, sibling = outcomes[i % 4], outcomes[(i // 4) % 4]
        plan[number] = (own, sibling)
        # Two parallel legs per dial: the dialled number and a decoy of the same dial.
        scripts[number] = DialScript((own, sibling), answer_delay=(19 - i) * 0.004)
    relay_server.set_handler(
        "calling.dial", dial_handler(lambda p: scripts[p["devices"][0][0]["params"]["to_number"]])
    )
    results: dict[str, Any] = {}

    async def place(number: str) -> None:
        try:
            call = await client.dial([[phone(number), phone(number + "9")]], timeout=5)
        except RelayError as exc:
            results[number] = exc
            return
        results[number] = call
        play = await call.play([{"type": "tts", "text": number}])
        await play.wait(timeout=2)
        await call.hangup()

    async with make_client(relay_server) as client:
        async with anyio.create_task_group() as tg:
            for number in plan:
                tg.start_soon(place, number)
        await relay_server.wait_until(
            lambda: all(c.state == "ended" for c in relay_server.calls.values())
        )
    answered = {n: r for n, r in results.items() if isinstance(r, Call)}
    assert len({id(c) for c in answered.values()}) == len(answered)
    for number, (own, sibling) in plan.items():
        result = results[number]
        if "answer" in (own, sibling):
            winner = number if own == "answer" else number + "9"
            assert isinstance(result, Call), number
            assert result.device == phone(winner)
            [dial] = [
                d
                for d in relay_server.received("calling.dial")
                if d["params"]["devices"][0][0]["params"]["to_number"] == number
            ]
            assert result.tag == dial["params"]["tag"]
            # The call played its own number: commands went to its own leg.
            [play] = [
                f
                for f in relay_server.received("calling.play")
                if f["params"]["call_id"] == result.call_id
            ]
            assert play["params"]["play"][0]["params"]["text"] == number
        else:
            assert isinstance(result, RelayError), number
            reasons = {"busy": "busy", "no_answer": "noAnswer", "decline": "decline"}
            assert result.message.endswith(
                ": " + ", ".join(dict.fromkeys((reasons[own], reasons[sibling])))
            )
    assert len(answered) == sum("answer" in p for p in plan.values())
    assert relay_server.violations == []


async def test_failed_dial_raises_with_the_reason(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["busy"])
    relay_server.script_dial(["busy", "decline"])
    async with make_client(relay_server) as client:
        with pytest.raises(RelayError) as one:
            await client.dial([[phone("+15551111111")]], tag="t-busy")
        with pytest.raises(RelayError) as two:
            await client.dial([[phone("+15551111111")], [phone("+15552222222")]], tag="t-two")
        relay_server.fail_next("calling.dial", code="402", message="Payment required")
        with pytest.raises(RelayError) as refused:
            await client.dial([[phone("+15551111111")]])
        assert client.active_calls == 0
    assert (one.value.code, one.value.message) == (-1, "Dial failed (tag=t-busy): busy")
    assert one.value.data["dial_state"] == "failed"
    assert two.value.message == "Dial failed (tag=t-two): busy, decline"
    assert (refused.value.code, refused.value.message) == (402, "Payment required")
    assert ends_sent(relay_server) == []  # nothing was left to end


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_giving_up_ends_the_ringing_legs(
    relay_server: FakeRelayServer, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_server.script_dial(["answer", "answer"], answer_delay=HELD)
    answer = hold_dial_outcomes(relay_server, monkeypatch)  # both would answer, once let
    async with make_client(relay_server) as client:
        # Ending the legs does not wait for RELAY: RELAY says nothing of this dial
        # until the legs may answer, which is after the client gave up.
        with anyio.fail_after(10):  # a failure detector only
            if how == "timeout":
                with pytest.raises(DialTimeout) as info:
                    await client.dial(
                        [[phone("+15551111111"), phone("+15552222222")]], tag="t-give", timeout=0.2
                    )
                assert isinstance(info.value, RelayError) and isinstance(info.value, TimeoutError)
                assert (info.value.tag, info.value.timeout) == ("t-give", 0.2)
                assert "Dial timed out" in info.value.message and "tag=t-give" in info.value.message
            else:
                with anyio.move_on_after(0.2):
                    await client.dial(
                        [[phone("+15551111111"), phone("+15552222222")]], tag="t-give"
                    )
                    pytest.fail("the dial should have been cancelled")
        assert relay_server.sent_events("calling.call.dial") == []
        await no_leg_alive(relay_server, "t-give")
        answer.set()  # the moment the legs would have answered
        await relay_server.wait_until(lambda: bool(relay_server.sent_events("calling.call.dial")))
        await client.execute("test.ok", {})  # a round trip: the client has read that outcome
        assert client.active_calls == 0
    legs = legs_of(relay_server, "t-give")
    assert sorted(ends_sent(relay_server)) == sorted((leg.call_id, "cancel") for leg in legs)
    for leg in legs:
        assert leg.states == ["created", "ringing", "ending", "ended"]  # never answered
        assert leg.end_reason == "cancel"
    # With every leg cancelled, nothing can answer: RELAY reports the dial failed.
    [outcome] = relay_server.sent_events("calling.call.dial")
    assert outcome["params"]["params"]["dial_state"] == "failed"


async def test_a_leg_answered_after_the_client_gave_up_is_hung_up(
    relay_server: FakeRelayServer,
) -> None:
    gave_up = anyio.Event()
    dial = dial_handler(lambda params: None)  # unscripted: the leg answers

    async def slow_dial(ctx: HandlerContext, params: JSON) -> JSON:
        await gave_up.wait()  # RELAY is slow: it answers only once the client gave up
        return await dial(ctx, params)

    relay_server.set_handler("calling.dial", slow_dial)
    async with make_client(relay_server) as client:
        with pytest.raises(TimeoutError):
            await client.dial([[phone("+15551111111")]], tag="t-late", timeout=0.05)
        assert relay_server.received("calling.end") == []
        gave_up.set()
        await no_leg_alive(relay_server, "t-late")
        await eventually(lambda: client.active_calls == 0)
    [leg] = legs_of(relay_server, "t-late")
    assert leg.states == ["created", "ringing", "answered", "ending", "ended"]
    assert ends_sent(relay_server) == [(leg.call_id, "cancel")]
    [outcome] = relay_server.sent_events("calling.call.dial")
    assert outcome["params"]["params"]["dial_state"] == "answered"


async def test_a_dialled_call_still_up_when_the_client_exits_is_hung_up(
    relay_server: FakeRelayServer,
) -> None:
    async with make_client(relay_server) as client:
        call = await client.dial([[phone("+15551111111")]], tag="t-left")
        relay_server.play_duration = 60
        await call.play([{"type": "tts", "text": "forgotten"}])
    # Leaving the client hung it up: outbound calls belong to the client.
    await no_leg_alive(relay_server, "t-left")
    assert ends_sent(relay_server) == [(call.call_id, "hangup")]


async def test_dial_events_and_commands_route_to_the_outbound_call(
    relay_server: FakeRelayServer,
) -> None:
    plays: list[RelayEvent] = []
    async with make_client(relay_server) as client:
        call = await client.dial([[phone("+15551111111")]])
        call.on(EVENT_CALL_PLAY, plays.append)
        action = await call.play_tts("hello")
        event = await action.wait(timeout=2)
        fake = relay_server.calls[call.call_id]
        await fake.remote_hangup()
        ended = await call.wait_for_ended(timeout=2)
        await eventually(lambda: len(plays) == 2)
    assert event.params["state"] == "finished"
    assert [e.params["state"] for e in plays] == ["playing", "finished"]
    assert {e.call_id for e in plays} == {call.call_id}
    assert ended.params["end_reason"] == "hangup"


async def test_dial_needs_a_connected_client(
    relay_server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(relay_server)
    with pytest.raises(RuntimeError, match="connected client"):
        await client.dial([[phone("+15551111111")]])
    async with client:
        relay_server.script_dial(["answer"], answer_delay=HELD)
        answer = hold_dial_outcomes(relay_server, monkeypatch)  # the first dial stays ringing
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(client.dial, [[phone("+15551111111")]], tag="t-dup"))
            await relay_server.wait_for_request("calling.dial")
            with pytest.raises(ValueError, match="already in progress"):
                await client.dial([[phone("+15552222222")]], tag="t-dup")
            answer.set()
    assert len(relay_server.received("calling.dial")) == 1


async def test_a_fresh_session_fails_a_dial_whose_legs_it_took(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.script_dial(["answer"], answer_delay=30)  # rings for the whole test
    async with make_client(relay_server) as client:
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def dial() -> None:
                try:
                    await client.dial([[phone("+15551111111")]], tag="t-lost", timeout=30)
                except RelayError as exc:
                    outcome.append(exc)

            tg.start_soon(dial)
            await relay_server.wait_until(lambda: len(legs_of(relay_server, "t-lost")) == 1)
            await eventually(lambda: client.active_calls == 1)  # the leg reached the client
            started = anyio.current_time()
            relay_server.forget_sessions()  # the reconnect gets a fresh session
            await relay_server.drop_connection()
        # Ended by the fresh session, not by the dial's 30 s timeout (generous for load).
        assert anyio.current_time() - started < 10
    [error] = outcome
    assert isinstance(error, ConnectionLost)


async def test_a_fresh_session_fails_a_dial_without_legs_yet(
    relay_server: FakeRelayServer,
) -> None:
    async def accept_only(ctx: HandlerContext, params: JSON) -> JSON:
        return {"code": "200", "message": "Dialing"}  # legs would come later

    relay_server.set_handler("calling.dial", accept_only)
    async with make_client(relay_server) as client:
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def dial() -> None:
                try:
                    await client.dial([[phone("+15551111111")]], timeout=30)
                except RelayError as exc:
                    outcome.append(exc)

            tg.start_soon(dial)
            await relay_server.wait_for_request("calling.dial")
            # The "Dialing" answer is in (it went out before this round trip's) and the
            # dial has taken it: it now waits for the outcome, not for its request.
            await client.execute("test.ok", {})
            await anyio.wait_all_tasks_blocked()
            relay_server.forget_sessions()
            await relay_server.drop_connection()
    [error] = outcome
    assert isinstance(error, ConnectionLost)
