"""Structured lifetimes: waits, listeners, callbacks and cleanup always finish.

What ``test_call_basics.py`` does not cover: ``wait_for`` with predicates and
timeouts, the state waits, listener failures, listeners dropped with the call,
``on_completed`` in both flavours, actions on ended calls, the error policy of
controls, cancellation of a handler (and of an action's start), and waits on a call
whose session was replaced.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_STATE,
    Call,
    CallEnded,
    ConnectionLost,
    RelayError,
    RelayEvent,
)
from relay_anyio.testing import (
    DEFAULT_HANDLERS,
    FakeRelayServer,
    HandlerContext,
    JsonRpcError,
)
from relay_anyio.testing._calls import finish_action

from .helpers import eventually, make_client, messages
from .test_call_basics import inbound_call, run_one_call

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]


# -- wait_for and the state waits -------------------------------------------------------------


async def test_wait_for_with_a_predicate(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 0.05
    async with inbound_call(relay_server) as (call, _):
        async with anyio.create_task_group() as tg:
            got: list[RelayEvent] = []

            async def wait_finished() -> None:
                got.append(
                    await call.wait_for(
                        EVENT_CALL_PLAY, lambda e: e.params["state"] == "finished", timeout=2
                    )
                )

            tg.start_soon(wait_finished)
            await anyio.wait_all_tasks_blocked()
            play = await call.play_tts("x")
    [event] = got
    assert (event.params["state"], event.control_id) == ("finished", play.control_id)
    assert call._waiters == []


async def test_wait_for_timeout_leaves_the_call_usable(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        with pytest.raises(TimeoutError):
            await call.wait_for(EVENT_CALL_PLAY, timeout=0.02)
        assert call._waiters == []  # the timed-out waiter is gone
        assert await call.answer() == {"code": "200", "message": "Answered"}
        play = await call.play_tts("still here")
        assert (await play.wait(timeout=2)).params["state"] == "finished"
        with pytest.raises(TimeoutError):
            await call.wait_for_ended(timeout=0.02)
        await fake.remote_hangup()
        # A timed-out wait_for_ended does not poison the next one (official defect).
        ended = await call.wait_for_ended(timeout=2)
        assert ended.params["call_state"] == "ended"
        assert await call.wait_for_ended() is ended


async def test_a_failing_predicate_fails_its_waiter_only(relay_server: FakeRelayServer) -> None:
    def broken(event: RelayEvent) -> bool:
        raise KeyError("oops")

    async with inbound_call(relay_server) as (call, _):
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def wait_broken() -> None:
                try:
                    await call.wait_for(EVENT_CALL_STATE, broken, timeout=2)
                except KeyError as exc:
                    outcome.append(exc)

            tg.start_soon(wait_broken)
            await anyio.wait_all_tasks_blocked()
            await call.answer()
        assert await call.hangup() == {"code": "200", "message": "Disconnecting call"}
    assert [type(e) for e in outcome] == [KeyError]


async def test_wait_for_ringing_ending_and_ended(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        got: dict[str, RelayEvent] = {}

        async def wait(name: str, waiter: Any) -> None:
            got[name] = await waiter(timeout=2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, "ringing", call.wait_for_ringing)
            tg.start_soon(wait, "ending", call.wait_for_ending)
            tg.start_soon(wait, "ended", call.wait_for_ended)
            await anyio.wait_all_tasks_blocked()
            await fake.set_state("ringing")
            await eventually(lambda: "ringing" in got)
            assert set(got) == {"ringing"}
            await fake.remote_hangup("busy")
        # Once past a state, its wait returns at once with the event that got there.
        assert await call.wait_for_ringing() is got["ringing"]
        assert await call.wait_for_ending() is got["ending"]
        late_answer = await call.wait_for_ringing(timeout=0)
    assert [got[k].params["call_state"] for k in ("ringing", "ending", "ended")] == [
        "ringing",
        "ending",
        "ended",
    ]
    assert got["ended"].params["end_reason"] == "busy"
    assert late_answer.params["call_state"] == "ringing"
    with pytest.raises(CallEnded) as info:
        await call.wait_for_answered()
    assert info.value.end_reason == "busy"


async def test_state_waits_return_synthetic_events_for_skipped_states(
    relay_server: FakeRelayServer,
) -> None:
    async with inbound_call(relay_server) as (call, fake):
        await call.answer()
        await call.wait_for_answered(timeout=2)
        ringing = await call.wait_for_ringing(timeout=0.01)  # never sent: skipped
    assert ringing.params["call_state"] == "answered"
    assert ringing.params["call_id"] == fake.call_id


# -- listeners ----------------------------------------------------------------------------


async def test_listener_exceptions_are_logged_and_later_events_still_delivered(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[str] = []

    def sync_boom(event: RelayEvent) -> None:
        delivered.append("sync:" + event.params["call_state"])
        raise ValueError("sync listener broke")

    async def async_boom(event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        delivered.append("async:" + event.params["call_state"])
        raise RuntimeError("async listener broke")

    async with inbound_call(relay_server) as (call, fake):
        call.on(EVENT_CALL_STATE, sync_boom)
        call.on(EVENT_CALL_STATE, async_boom)
        await call.answer()
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=2)
        await eventually(lambda: len(delivered) == 6)
    assert delivered == [
        "sync:answered",
        "async:answered",
        "sync:ending",
        "async:ending",
        "sync:ended",
        "async:ended",
    ]
    failures = [m for m in messages(caplog, logging.ERROR) if "failed on calling.call.state" in m]
    assert len(failures) == 6 and all(fake.call_id in m for m in failures)


async def test_listeners_are_dropped_when_the_call_ends(
    relay_server: FakeRelayServer,
) -> None:
    call_events: list[RelayEvent] = []
    strays: list[RelayEvent] = []

    def listen(client: Any) -> None:
        client.on(EVENT_CALL_PLAY, strays.append)

    async with inbound_call(relay_server, configure=listen) as (call, fake):
        call.on(EVENT_CALL_PLAY, call_events.append)
        call.on(EVENT_CALL_STATE, call_events.append)
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=2)
        assert not call._listeners
        with pytest.raises(CallEnded):
            call.on(EVENT_CALL_PLAY, call_events.append)
        # A late event for the ended call reaches no call listener.
        late = {
            "call_id": fake.call_id,
            "node_id": fake.node_id,
            "control_id": "x",
            "state": "finished",
        }
        await fake.send_event(EVENT_CALL_PLAY, late)
        await eventually(lambda: strays)
    assert [e.event_type for e in call_events] == [EVENT_CALL_STATE, EVENT_CALL_STATE]
    assert [e.params for e in strays] == [late]


async def test_off_removes_listeners(relay_server: FakeRelayServer) -> None:
    seen: list[str] = []

    def one(event: RelayEvent) -> None:
        seen.append("one")

    def two(event: RelayEvent) -> None:
        seen.append("two")

    async with inbound_call(relay_server) as (call, _):
        call.on(EVENT_CALL_PLAY, one)
        call.on(EVENT_CALL_PLAY, two)
        call.off(EVENT_CALL_PLAY, one)
        await (await call.play_tts("x")).wait(timeout=2)
        await eventually(lambda: len(seen) == 2)
        call.off(EVENT_CALL_PLAY)
        await (await call.play_tts("y")).wait(timeout=2)
        await anyio.sleep(0.02)
    assert seen == ["two", "two"]


async def test_plain_listeners_have_run_when_a_wait_returns(
    relay_server: FakeRelayServer,
) -> None:
    """Plain listeners run as the event is routed, before the waits it ends wake up."""
    seen: list[str] = []
    async with inbound_call(relay_server) as (call, _):
        call.on(EVENT_CALL_PLAY, lambda event: seen.append(event.params["state"]))
        await (await call.play_tts("x")).wait(timeout=2)
        assert seen == ["playing", "finished"]  # no waiting: they ran already
        await call.hangup()
        ended = await call.wait_for_ended(timeout=2)
        assert ended.params["call_state"] == "ended"
    assert seen == ["playing", "finished"]


async def test_plain_and_async_listeners_keep_the_order_of_events(
    relay_server: FakeRelayServer,
) -> None:
    """An async listener moves the call's listeners onto its task; none overtakes."""
    order: list[tuple[str, int]] = []

    def plain(tag: str) -> Any:
        return lambda event: order.append((tag, event.params["n"]))

    async def slow(event: RelayEvent) -> None:
        await anyio.sleep(0.002)
        order.append(("async", event.params["n"]))

    async def awaited_later(event: RelayEvent) -> None:
        await anyio.sleep(0.001)
        order.append(("returned", event.params["n"]))

    async with inbound_call(relay_server) as (call, fake):
        call.on("test.seq", plain("first"))
        call.on("test.seq", slow)
        call.on("test.seq", plain("last"))
        # A plain function that returns an awaitable: awaited in its turn.
        call.on("test.other", lambda event: awaited_later(event))
        call.on("test.other", plain("after"))
        for n in range(5):
            await fake.send_event("test.seq", {"call_id": fake.call_id, "n": n})
            await fake.send_event("test.other", {"call_id": fake.call_id, "n": n})
        await eventually(lambda: len(order) == 25)
    assert order == [
        (tag, n) for n in range(5) for tag in ("first", "async", "last", "returned", "after")
    ]


# -- on_completed ---------------------------------------------------------------------------


async def test_on_completed_sync_async_and_failing(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[tuple[str, str]] = []

    def sync_done(event: RelayEvent) -> None:
        got.append(("sync", event.params["state"]))

    async def async_done(event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        got.append(("async", event.params["state"]))

    def failing_done(event: RelayEvent) -> None:
        raise ValueError("callback broke")

    async with inbound_call(relay_server) as (call, _):
        await call.play_tts("a", on_completed=sync_done)
        await call.record(on_completed=async_done)
        last = await call.play_tts("c", on_completed=failing_done)
        await (await call.play_tts("d", on_completed=sync_done)).wait(timeout=2)
        await call.hangup()  # ends the recording
        await call.wait_for_ended(timeout=2)
        await eventually(lambda: len(got) == 3)
    assert sorted(got) == [("async", "finished"), ("sync", "finished"), ("sync", "finished")]
    assert any(
        "failed on calling.call.play" in m and repr(failing_done) in m
        for m in messages(caplog, logging.ERROR)
    )
    assert last.is_done


async def test_on_completed_runs_after_the_handler_returned(
    relay_server: FakeRelayServer,
) -> None:
    """The play outlives its handler (its stop is refused): the call's scope lives
    on until the call ends, so plain and async callbacks both run when it finishes."""

    async def refuse_stop(ctx: HandlerContext, params: JSON) -> JSON:
        raise JsonRpcError(-32000, "cannot stop now")

    relay_server.set_handler("calling.play.stop", refuse_stop)
    relay_server.play_duration = 60  # the plays finish when the test says, below
    got: list[str] = []
    returned = anyio.Event()
    calls: list[Call] = []
    client = make_client(relay_server)

    async def async_done(event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        got.append("async")

    @client.on_call
    async def handle(call: Call) -> None:
        calls.append(call)
        await call.answer()
        await call.play_tts("a", on_completed=lambda event: got.append(event.params["state"]))
        await call.play_tts("b", on_completed=async_done)
        returned.set()

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):  # a failure detector only
            await returned.wait()
        # The handler has returned (its stops were refused): the plays run on.
        await eventually(lambda: calls[0] not in client._router.handled)
        assert got == []
        for action in list(fake.actions.values()):
            await finish_action(fake, action)  # what the play timer does
        await eventually(lambda: sorted(got) == ["async", "finished"])
        await fake.remote_hangup()
    assert sorted(got) == ["async", "finished"]


async def test_action_on_an_ended_call_resolves_at_once_without_sending(
    relay_server: FakeRelayServer,
) -> None:
    completed: list[RelayEvent] = []

    async def on_done(event: RelayEvent) -> None:
        completed.append(event)

    async with inbound_call(relay_server) as (call, fake):
        await fake.remote_hangup("hangup")
        await call.wait_for_ended(timeout=2)
        sent_before = len(relay_server.received())
        record = await call.record(on_completed=on_done)
        play = await call.play_tts("too late", on_completed=completed.append)
        detect = await call.detect_answering_machine()
        assert await record.stop() == {}  # a control on an ended call: a no-op
        assert len(relay_server.received()) == sent_before  # nothing went out
    for action in (record, play, detect):
        assert action.is_done and action.call_ended
        assert action.result is not None
        assert action.result.params == {
            "call_id": fake.call_id,
            "node_id": fake.node_id,
            "control_id": action.control_id,
            "state": "call_ended",
            "end_reason": "hangup",
        }
    assert [e.event_type for e in completed] == ["calling.call.record", "calling.call.play"]
    assert await record.wait() is record.result


# -- the error policy of controls ------------------------------------------------------------


async def test_gone_on_stop_is_a_no_op_other_errors_raise(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    relay_server.play_duration = 60
    async with inbound_call(relay_server) as (call, _):
        play = await call.play_tts("x")
        relay_server.fail_next("calling.play.stop", code="404", message="Control not found")
        assert await play.stop() == {}
        relay_server.fail_next("calling.play.pause", code="410", message="Call is gone")
        assert await play.pause() == {}
        relay_server.fail_next("calling.play.stop", code="500", message="Internal error")
        with pytest.raises(RelayError) as server_error:
            await play.stop()
        relay_server.fail_next(
            "calling.play.volume", code=-32602, message="Invalid params", jsonrpc_error=True
        )
        with pytest.raises(RelayError) as rpc_error:
            await play.volume(99)
        relay_server.fail_next("calling.record", code="409", message="Conflict")
        with pytest.raises(RelayError) as start_error:
            await call.record()
        assert list(call._actions) == [play.control_id]  # the refused start left nothing
        assert not play.is_done
    assert (server_error.value.code, server_error.value.message) == (500, "Internal error")
    assert server_error.value.data == {"code": "500", "message": "Internal error"}
    assert (rpc_error.value.code, rpc_error.value.message) == (-32602, "Invalid params")
    assert start_error.value.code == 409
    gone = [m for m in messages(caplog) if "call is gone" in m]
    assert len(gone) == 2


async def test_a_start_refused_as_gone_resolves_the_action(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        relay_server.fail_next("calling.play", code="404", message="Call not found")
        play = await call.play_tts("x")
    assert play.is_done and play.call_ended
    assert play.result is not None and play.result.params["end_reason"] == "gone"


# -- cancellation ---------------------------------------------------------------------------


async def test_cancelling_the_handler_stops_its_scoped_actions(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    scope = anyio.CancelScope()
    after: list[str] = []

    async def handler(call: Call) -> None:
        await call.answer()
        with scope:
            async with await call.record() as recording:
                async with await call.play_tts("hold music"):
                    await anyio.sleep_forever()
        # stop() only asks; the recording is done once its terminal event arrives.
        result = await recording.wait(timeout=2)
        after.append(f"recording done: {result.params['state']}")
        await call.hangup()

    async def cancel_when_playing() -> None:
        await relay_server.wait_for_request("calling.play")
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_when_playing)
        await run_one_call(relay_server, handler)
    [play] = relay_server.received("calling.play")
    [record] = relay_server.received("calling.record")
    [play_stop] = relay_server.received("calling.play.stop")
    [record_stop] = relay_server.received("calling.record.stop")
    assert play_stop["params"]["control_id"] == play["params"]["control_id"]
    assert record_stop["params"]["control_id"] == record["params"]["control_id"]
    methods = [f["method"] for f in relay_server.received() if f["method"].startswith("calling.")]
    assert methods.index("calling.play.stop") < methods.index("calling.record.stop")
    assert after == ["recording done: finished"]


async def test_a_handler_that_raises_leaves_no_action_running(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    relay_server.play_duration = 60

    async def handler(call: Call) -> None:
        await call.answer()
        await call.record()
        await call.play_tts("forever")
        raise RuntimeError("handler bug")

    await run_one_call(relay_server, handler)
    await relay_server.wait_for_request("calling.record.stop")
    await relay_server.wait_for_request("calling.play.stop")
    [fake] = relay_server.calls.values()
    assert not any(action.active for action in fake.actions.values())
    assert any("on_call handler failed" in m for m in messages(caplog))


async def test_cancelling_an_action_start_stops_the_operation(
    relay_server: FakeRelayServer,
) -> None:
    gave_up = anyio.Event()

    async def slow_record(ctx: HandlerContext, params: JSON) -> JSON:
        # RELAY takes its time (until the client gave up), in order: the reader waits too.
        await gave_up.wait()
        return await DEFAULT_HANDLERS["calling.record"](ctx, params)

    relay_server.set_handler("calling.record", slow_record)
    async with inbound_call(relay_server) as (call, fake):
        records: list[RelayEvent] = []
        call.on(EVENT_CALL_RECORD, records.append)
        with anyio.move_on_after(0.03) as scope:
            await call.record()
        assert scope.cancelled_caught
        gave_up.set()
        [start] = relay_server.received("calling.record")
        stop = await relay_server.wait_for_request("calling.record.stop")
        assert stop["params"]["control_id"] == start["params"]["control_id"]
        await eventually(lambda: len(records) == 2)
        assert call._actions == {}
    [action] = fake.actions.values()
    assert not action.active
    assert [e.params["state"] for e in records] == ["recording", "finished"]


# -- a session replaced under a call ---------------------------------------------------------


async def test_waits_on_a_call_whose_session_restarted_end_with_connection_lost(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    async with inbound_call(relay_server) as (call, _):
        play = await call.play_tts("long")
        outcome: dict[str, BaseException] = {}

        async def wait(name: str, waiter: Any) -> None:
            try:
                await waiter()
            except RelayError as exc:
                outcome[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, "action", play.wait)
            tg.start_soon(wait, "wait_for", lambda: call.wait_for("calling.call.never"))
            tg.start_soon(wait, "answered", call.wait_for_answered)
            await anyio.wait_all_tasks_blocked()
            relay_server.forget_sessions()  # the next connect starts a fresh session
            await relay_server.drop_connection()
        with pytest.raises(ConnectionLost):
            await play.wait()
        with pytest.raises(ConnectionLost):
            await call.wait_for_ended()
        late = await call.record()  # nothing to send to a session that is gone
    assert set(outcome) == {"action", "wait_for", "answered"}
    assert all(type(e) is ConnectionLost for e in outcome.values())
    assert play.is_done and play.result is not None
    assert play.result.params["end_reason"] == "session_lost"
    assert late.is_done
    assert relay_server.received("calling.record") == []
    assert relay_server.connections == 2


async def test_client_exit_cancels_handlers_and_their_waits(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    reached: list[str] = []
    started = anyio.Event()
    client = make_client(relay_server, shutdown_timeout=1.0)

    @client.on_call
    async def handler(call: Call) -> None:
        await call.answer()
        play = await call.play_tts("forever")
        started.set()
        try:
            await play.wait()
            reached.append(f"play ended: {play.result.params['state'] if play.result else ''}")
        finally:
            reached.append("finally")

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):  # a failure detector only
            await started.wait()
    # Leaving hung the call up: its end finished the play, and the handler ran on.
    await relay_server.wait_until(lambda: fake.state == "ended")  # follows the hangup's answer
    assert reached[-1] == "finally"


async def test_hangup_is_sent_once(relay_server: FakeRelayServer) -> None:
    """Concurrent or repeated hangups (a handler's and the client's exit) send one end."""
    relay_server.delay_next("calling.end", 0.05)
    async with inbound_call(relay_server) as (call, _):
        results: list[JSON] = []

        async def hang_up(reason: str) -> None:
            results.append(await call.hangup(reason))

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang_up, "busy")
            await relay_server.wait_for_request("calling.end")
            tg.start_soon(hang_up, "hangup")
        results.append(await call.hangup())
    [end] = relay_server.received("calling.end")
    assert end["params"]["reason"] == "busy"
    assert results == [{"code": "200", "message": "Disconnecting call"}, {}, {}]


async def test_a_failed_hangup_can_be_retried(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        relay_server.fail_next("calling.end", code="500", message="Internal error")
        with pytest.raises(RelayError):
            await call.hangup()
        assert await call.hangup() == {"code": "200", "message": "Disconnecting call"}
    assert [f["params"]["reason"] for f in relay_server.received("calling.end")] == [
        "hangup",
        "hangup",
    ]


async def test_a_listener_overflow_does_not_poison_the_calls_waits(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    release = anyio.Event()

    async def stuck(event: RelayEvent) -> None:
        await release.wait()

    async with inbound_call(relay_server, call_event_buffer=3) as (call, fake):
        call.on("test.noise", stuck)
        for n in range(10):
            await fake.send_event("test.noise", {"call_id": fake.call_id, "n": n})
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        assert any("consumer too slow" in m for m in messages(caplog, logging.ERROR))
        play = await call.play_tts("still works")  # actions do not use the listener task
        assert (await play.wait(timeout=2)).params["state"] == "finished"
        await fake.remote_hangup("busy")
        ended = await call.wait_for_ended(timeout=2)
        release.set()
        with pytest.raises(CallEnded) as waited:
            await call.wait_for(EVENT_CALL_PLAY)
        with pytest.raises(CallEnded) as answered:
            await call.wait_for_answered()
    assert ended.params["end_reason"] == "busy"
    assert (waited.value.end_reason, answered.value.end_reason) == ("busy", "busy")


async def test_listeners_see_the_call_to_its_end_after_the_handler_returned(
    relay_server: FakeRelayServer,
) -> None:
    """The call outlives its handler (e.g. bridged): so do its listeners, plain and
    async, and new ones may still be added, until the ended event; then they go."""
    kept: list[Call] = []
    seen: list[str] = []
    async_seen: list[str] = []
    handler_done = anyio.Event()

    async def log_async(event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        async_seen.append(event.params.get("call_state") or event.params["state"])

    async def handler(call: Call) -> None:
        call.on(EVENT_CALL_STATE, lambda event: seen.append(event.params["call_state"]))
        call.on(EVENT_CALL_STATE, log_async)
        await call.answer()
        await call.wait_for_answered(timeout=2)
        kept.append(call)
        handler_done.set()

    client = make_client(relay_server)
    client.on_call(handler)
    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(5):
            await handler_done.wait()
        [call] = kept
        await eventually(lambda: call not in client._router.handled)  # the handler has returned
        call.on(EVENT_CALL_PLAY, log_async)
        play = await call.play_tts("the call itself still works")
        assert (await play.wait(timeout=2)).params["state"] == "finished"
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=2)
        await eventually(lambda: async_seen[-1:] == ["ended"])
        with pytest.raises(CallEnded):
            call.on(EVENT_CALL_PLAY, log_async)
        assert not call._listeners
    assert seen == ["answered", "ending", "ended"]
    assert async_seen == ["answered", "playing", "finished", "ending", "ended"]


async def test_actions_a_handler_leaves_running_end_with_their_real_result(
    relay_server: FakeRelayServer,
) -> None:
    """A handler that returns right after starting (fire and forget, as the guide's
    on_completed snippet): the actions are stopped, and their callbacks still fire."""
    relay_server.play_duration = 60
    completed: list[RelayEvent] = []
    kept: list[Any] = []

    async def handler(call: Call) -> None:
        await call.answer()
        kept.append(await call.record(audio={"format": "wav"}, on_completed=completed.append))
        kept.append(await call.play_tts("Processing...", on_completed=completed.append))

    await run_one_call(relay_server, handler)
    recording, play = kept
    assert recording.is_done and play.is_done  # by the time the handler's scope closed
    assert recording.url == f"https://fake-relay.invalid/recordings/{recording.control_id}.wav"
    await eventually(lambda: len(completed) == 2)
    assert sorted(e.event_type for e in completed) == ["calling.call.play", "calling.call.record"]
    assert all(e.params["state"] == "finished" for e in completed)
