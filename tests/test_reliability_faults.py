"""Connection faults, one at a time and deterministic: what a request in flight, a
request issued while disconnected, a call's waits and its events go through.

The random-drop run with 200 calls is ``tests/stress/test_stress_faults.py``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    ConnectionLost,
    ConnectionState,
    Message,
    RelayEvent,
    RequestTimeout,
)
from relay_anyio.testing import FakeCall, FakeRelayServer, FakeSession, JournalEntry

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio

SEQ = FakeRelayServer.EVENT_SEQ_KEY


async def test_request_dropped_before_it_took_effect(relay_server: FakeRelayServer) -> None:
    relay_server.drop_next("test.ok")
    async with make_client(relay_server) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionLost) as lost:
            await client.execute("test.ok", {})
        assert "test.ok" in lost.value.message
        assert "may or may not have taken effect" in lost.value.message
        assert lost.value.close_code == 1006
        # The next request waits for the reconnect and goes through on the resumed session.
        assert (await client.execute("test.ok", {}))["code"] == "200"
        assert relay_server.connections == 2
        connects = relay_server.received("signalwire.connect")
        assert connects[1]["params"]["protocol"] == client.relay_protocol
    assert len(relay_server.received("test.ok")) == 2  # the lost one did arrive: journalled


async def test_command_that_took_effect_has_its_events_delivered_once_after_resume(
    relay_server: FakeRelayServer,
) -> None:
    """The play ran on the server but its response was lost: the handler sees
    ConnectionLost, and the play's events still reach the listener, each once."""
    relay_server.stamp_events = True
    relay_server.drop_next("calling.play", after_effect=True)
    client = make_client(relay_server)
    seen: list[tuple[str, int]] = []
    outcome: list[str] = []

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_PLAY, lambda e: seen.append((e.params["state"], e.raw_params[SEQ])))
        await call.answer()
        try:
            await call.play([{"type": "tts", "text": "hi"}], control_id="p1")
        except ConnectionLost:
            outcome.append("lost")
        await call.wait_for(EVENT_CALL_PLAY, lambda e: e.params["state"] == "finished", 10)
        await call.hangup()
        await call.wait_for_ended()
        outcome.append("ended")

    async with client:
        await relay_server.offer_call()
        await eventually(lambda: "ended" in outcome)
        # Every event is acknowledged in the end (the last acks may be on their way).
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
    assert outcome == ["lost", "ended"]
    assert [state for state, _ in seen] == ["playing", "finished"]
    sent = [f["params"]["params"][SEQ] for f in relay_server.sent_events("calling.call.play")]
    assert sorted(set(sent)) == [seq for _, seq in seen]  # each sent event, once, in order


@pytest.mark.parametrize("fault", ["drop", "half-open"])
async def test_a_retry_after_connection_lost_waits_for_the_reconnect(
    relay_server: FakeRelayServer, fault: str
) -> None:
    """A handler that retries at once on ConnectionLost must find the next connection.

    Regression: when the keepalive declared a link dead, the session kept handing
    the dead connection out until its task group had unwound, so the retry failed
    again without ever yielding, and a retry loop spun forever, starving the very
    reconnect it waited for.
    """
    client = make_client(relay_server, ping_interval=0.05, ping_timeout=0.1)
    attempts = 0
    async with client:
        if fault == "drop":
            relay_server.drop_next("test.ok")
        else:
            relay_server.stop_reading()  # the request is never answered; pings neither
        with anyio.fail_after(10):
            while True:
                attempts += 1
                try:
                    await client.execute("test.ok", {})
                    break
                except ConnectionLost:
                    if attempts > 100:
                        pytest.fail("retries keep failing without waiting")
    assert attempts == 2
    assert relay_server.connections == 2


async def test_requests_issued_while_disconnected_wait_then_go_through(
    relay_server: FakeRelayServer,
) -> None:
    # The reconnect waits 0.5 s: time enough to issue the requests while disconnected.
    async with make_client(relay_server, reconnect_min_delay=0.5, reconnect_max_delay=0.5) as c:
        await relay_server.drop_connection()
        await eventually(lambda: c.connection_state is ConnectionState.RECONNECTING)
        with anyio.fail_after(10):
            results: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(lambda: _append(results, c.execute("test.ok", {})))
        assert [r["code"] for r in results] == ["200"] * 5
        # They waited for the reconnect: all five went out on the second connection.
        assert [e.connection for e in relay_server.journal if _is(e, "test.ok")] == [2] * 5
        assert relay_server.connections == 2


def _is(entry: JournalEntry, method: str) -> bool:
    """A request of ``method`` from the client."""
    frame = entry.frame
    return entry.direction == "in" and isinstance(frame, dict) and frame.get("method") == method


async def _append(results: list[Any], coro: Any) -> None:
    results.append(await coro)


async def test_a_request_waiting_for_a_connection_is_bounded_by_its_timeout(
    relay_server: FakeRelayServer,
) -> None:
    # request_timeout is long: only the request's own 0.3 s may end it.
    async with make_client(relay_server, request_timeout=30.0) as client:
        relay_server.withhold_next("signalwire.connect")  # the reconnect never completes
        await relay_server.drop_connection()
        await eventually(lambda: client.connection_state is ConnectionState.RECONNECTING)
        started = anyio.current_time()
        with anyio.fail_after(20), pytest.raises(RequestTimeout):
            await client.execute("test.ok", {}, timeout=0.3)
        # Timing is the point: its 0.3 s, not the 30 s (the upper bound is generous).
        assert 0.25 <= anyio.current_time() - started < 10
        assert relay_server.received("test.ok") == []  # nothing went out before auth


@pytest.mark.parametrize("how", ["restart", "forgotten"])
async def test_a_fresh_session_ends_the_old_calls_waits_with_connection_lost(
    relay_server: FakeRelayServer, how: str
) -> None:
    relay_server.record_duration = None
    client = make_client(relay_server)
    errors: dict[str, BaseException] = {}
    recording: list[Any] = []
    ready = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        recording.append(await call.record({"format": "wav"}))
        ready.set()

        async def wait(name: str, waiter: Any) -> None:
            try:
                await waiter
            except ConnectionLost as exc:
                errors[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, "action", recording[0].wait())
            tg.start_soon(wait, "wait_for", call.wait_for(EVENT_CALL_PLAY))
            tg.start_soon(wait, "ended", call.wait_for_ended())

    async with client:
        await relay_server.offer_call()
        with anyio.fail_after(10):
            await ready.wait()
        old_protocol = client.relay_protocol
        if how == "restart":
            await relay_server.send_disconnect(restart=True)
        else:
            relay_server.forget_sessions()
            await relay_server.drop_connection()
        await eventually(lambda: len(errors) == 3)
        assert client.relay_protocol != old_protocol
        assert client.active_calls == 0
        # The client is fine for new work on the fresh session.
        assert (await client.execute("test.ok", {}))["code"] == "200"
    assert set(errors) == {"action", "wait_for", "ended"}
    for error in errors.values():
        assert "session was restarted" in str(error)


async def test_a_new_call_in_the_first_read_of_a_fresh_session_is_not_failed(
    relay_server: FakeRelayServer,
) -> None:
    """The fresh session's first events arrive in the same read as the connect result.

    Regression: the client learnt the session was fresh only after routing that
    read, so a call offered in it was failed together with the old session's calls.
    """
    client = make_client(relay_server)
    outcomes: dict[str, str] = {}
    first_answered = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        try:
            await call.answer()
            first_answered.set()
            await call.wait_for_ended()
            outcomes[call.call_id] = "ended"
        except ConnectionLost:
            outcomes[call.call_id] = "lost"

    new_calls: list[FakeCall] = []

    def offer_on_fresh_session(session: FakeSession, restored: bool) -> None:
        if restored or new_calls:
            return
        call = FakeCall.register(
            relay_server, session, direction="inbound", device={}, context="default"
        )
        session.queue_event("calling.call.receive", {**call.state_params(), "context": "default"})
        new_calls.append(call)

    async with client:
        old = await relay_server.offer_call()
        with anyio.fail_after(10):
            await first_answered.wait()
        relay_server.on_connect = offer_on_fresh_session
        relay_server.forget_sessions()
        await relay_server.drop_connection()
        await eventually(lambda: outcomes.get(old.call_id) == "lost")
        [new] = new_calls
        await eventually(lambda: "calling.answer" in _methods(new))
        await new.remote_hangup()
        await eventually(lambda: new.call_id in outcomes)
    assert outcomes == {old.call_id: "lost", new.call_id: "ended"}


def _methods(call: FakeCall) -> list[str]:
    return [r["method"] for r in call.requests]


async def test_an_event_of_a_fresh_sessions_first_read_is_not_delivered_twice(
    relay_server: FakeRelayServer,
) -> None:
    """Regression: the seen-window was cleared *after* the first read of a fresh
    session had been remembered, so a redelivery of those events went through twice.
    """
    client = make_client(relay_server)
    delivered: list[str] = []
    seen_first = anyio.Event()

    @client.on_message
    async def on_message(message: Message) -> None:
        delivered.append(message.body)
        seen_first.set()

    def on_connect(session: FakeSession, restored: bool) -> None:
        if restored:
            return
        relay_server.on_connect = None
        message = {
            "message_id": "m1",
            "context": "default",
            "direction": "inbound",
            "from_number": "+1",
            "to_number": "+2",
            "body": "once",
            "media": [],
            "segments": 1,
            "message_state": "received",
            "tags": [],
        }
        session.queue_event("messaging.receive", message)
        # Frames from now: out response, out auth state, out message, in ack of
        # the auth state, in ack of the message <- the drop: that ack is lost.
        relay_server.drop_after(5)

    relay_server.on_connect = on_connect
    async with client:
        with anyio.fail_after(10):
            await seen_first.wait()
        await relay_server.wait_for_connections(2)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        # The server did send it twice: the first ack was lost with the link.
        sent = relay_server.sent_events("messaging.receive")
        bodies = [f["params"]["params"]["body"] for f in sent]
        assert bodies == ["once", "once"]
    assert delivered == ["once"]


async def test_events_queued_while_disconnected_arrive_in_order(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.stamp_events = True
    client = make_client(relay_server, reconnect_min_delay=0.1, reconnect_max_delay=0.1)
    seqs: list[int] = []
    answered = anyio.Event()
    done = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_STATE, lambda e: seqs.append(e.raw_params[SEQ]))
        call.on("test.tick", lambda e: seqs.append(e.raw_params[SEQ]))
        await call.answer()
        answered.set()
        await call.wait_for_ended()
        done.set()

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await answered.wait()
        await relay_server.drop_connection()
        for n in range(20):  # produced while the client is away
            await fake.send_event("test.tick", {"call_id": fake.call_id, "n": n})
        await fake.remote_hangup()
        with anyio.fail_after(10):
            await done.wait()
        # Listeners run on the call's own task, a little after the routing.
        await eventually(lambda: len(seqs) >= 23)
    assert len(seqs) == 1 + 20 + 2  # answered, 20 ticks, ending, ended
    assert seqs == sorted(seqs)


async def test_every_ack_of_a_read_goes_out_in_one_write_before_routing(
    relay_server: FakeRelayServer,
) -> None:
    """50 events in one server write: their 50 acks leave in one client write, before
    the first of them reaches user code (whose reaction, a request, comes after)."""
    client = make_client(relay_server)
    reacted = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        async def react(event: RelayEvent) -> None:
            if event.params["n"] == 0:
                await client.execute("test.ok", {"reaction": True})
                reacted.set()

        call.on("test.burst", react)
        await call.answer()
        await call.wait_for_ended()

    async with client:
        fake = await relay_server.offer_call()
        await fake.wait_for_state("answered")
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        frames = await fake.session.emit_many(
            [("test.burst", {"call_id": fake.call_id, "n": n}) for n in range(50)]
        )
        with anyio.fail_after(10):
            await reacted.wait()
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        await fake.remote_hangup()
    burst_ids = {f["id"] for f in frames}
    inbound = [e for e in relay_server.journal if e.direction == "in"]
    ack_reads = {
        e.read for e in inbound if isinstance(e.frame, dict) and e.frame.get("id") in burst_ids
    }
    [reaction] = [
        e
        for e in inbound
        if isinstance(e.frame, dict) and e.frame.get("params") == {"reaction": True}
    ]
    assert len(ack_reads) == 1  # one write, one read
    assert reaction.read > max(ack_reads)  # user code ran after the acks had gone out
