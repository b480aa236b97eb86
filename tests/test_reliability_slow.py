"""Slow consumers: a listener or handler that blocks for good delays nobody else.

"For good" is a listener waiting on an Event the test sets at the very end, so the
test measures how everything else fares without sleeping for seconds itself.
"""

from __future__ import annotations

import logging
import time

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    Call,
    EventOverflow,
    RelayEvent,
)
from relay_anyio.testing import FakeCall, FakeRelayServer

from .helpers import eventually, make_client, messages

pytestmark = pytest.mark.anyio

OTHER_CALLS = 20
#: Bound on production-to-listener delay for the other calls (typical: a few ms).
#: Timing is what it checks, so it stays a wall-clock bound, generous enough for a
#: loaded 2-core machine; a listener that held up the others would make it infinite
#: (the stuck one is released only at the very end).
DELAY_BOUND = 3.0


async def test_a_blocked_listener_and_handler_delay_no_other_call(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.ping_interval = 0.02
    relay_server.play_duration = 0.01
    client = make_client(relay_server)
    release = anyio.Event()
    blocked_ready = anyio.Event()
    delays: list[float] = []
    completed: list[str] = []
    blocked: list[str] = []

    @client.on_call
    async def handle(call: Call) -> None:
        if not blocked:
            blocked.append(call.call_id)

            async def stuck(event: RelayEvent) -> None:
                await release.wait()

            call.on(EVENT_CALL_STATE, stuck)
            call.on("test.noise", stuck)
            await call.answer()
            blocked_ready.set()
            await release.wait()  # the handler is stuck too
            return

        def timed(event: RelayEvent) -> None:
            delays.append(time.time() - event.timestamp)

        call.on(EVENT_CALL_PLAY, timed)
        call.on(EVENT_CALL_STATE, timed)
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hello"}])
        await play.wait()
        await call.hangup()
        await call.wait_for_ended()
        completed.append(call.call_id)

    async with client:
        stuck_call = await relay_server.offer_call()
        with anyio.fail_after(10):
            await blocked_ready.wait()
        await stuck_call.wait_for_state("answered")
        pings_before = len(relay_server.ping_replies)
        # More events for the stuck call: they must be acked all the same.
        for n in range(50):
            await stuck_call.send_event("test.noise", {"call_id": stuck_call.call_id, "n": n})
        for _ in range(OTHER_CALLS):
            await relay_server.offer_call()
        await eventually(lambda: len(completed) == OTHER_CALLS, timeout=20)
        # answered, playing, finished, ending, ended
        await eventually(lambda: len(delays) == OTHER_CALLS * 5)
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        # ...and the server's pings keep being answered while the call is stuck.
        await eventually(lambda: len(relay_server.ping_replies) >= pings_before + 5)
        release.set()
        await stuck_call.remote_hangup()
    assert max(delays) < DELAY_BOUND
    assert relay_server.connections == 1


async def test_listener_overflow_drops_that_calls_listeners_only(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented policy, small: buffer of 10, 50 events to a call whose listener
    is stuck. That call's listeners go (EventOverflow logged); its waits, the
    connection and the other calls carry on."""
    client = make_client(relay_server, call_event_buffer=10)
    release = anyio.Event()
    stuck_ready = anyio.Event()
    after_overflow: list[RelayEvent] = []
    other_done = anyio.Event()
    calls: list[Call] = []

    @client.on_call
    async def handle(call: Call) -> None:
        calls.append(call)
        if len(calls) == 1:

            async def stuck(event: RelayEvent) -> None:
                await release.wait()

            call.on("test.noise", stuck)
            await call.answer()
            stuck_ready.set()
            after_overflow.append(await call.wait_for("test.after", timeout=10))
            await call.wait_for_ended()
            return
        await call.answer()
        play = await call.play([{"type": "tts", "text": "fine"}])
        await play.wait()
        await call.hangup()
        other_done.set()

    async with client:
        stuck = await relay_server.offer_call()
        with anyio.fail_after(10):
            await stuck_ready.wait()
        for n in range(50):
            await stuck.send_event("test.noise", {"call_id": stuck.call_id, "n": n})
        await stuck.send_event("test.after", {"call_id": stuck.call_id})
        await eventually(lambda: len(after_overflow) == 1)
        await relay_server.offer_call()
        with anyio.fail_after(10):
            await other_done.wait()
        release.set()
        await stuck.remote_hangup()
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
    overflow = [m for m in messages(caplog, logging.ERROR) if "consumer too slow" in m]
    assert overflow == [
        f"listeners of call {stuck.call_id}: more than 10 events buffered; consumer too slow; "
        "its listeners are dropped"
    ]
    assert relay_server.connections == 1


async def test_listening_again_after_an_overflow_raises_event_overflow(
    relay_server: FakeRelayServer,
) -> None:
    client = make_client(relay_server, call_event_buffer=5)
    release = anyio.Event()
    outcome: list[object] = []
    ready = anyio.Event()
    overflowed = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        call.on("test.noise", lambda e: release.wait())
        await call.answer()
        ready.set()
        await overflowed.wait()
        try:
            call.on("test.noise", outcome.append)
        except EventOverflow as exc:
            outcome.append(exc)
        await call.wait_for_ended()

    async with client:
        fake: FakeCall = await relay_server.offer_call()
        with anyio.fail_after(10):
            await ready.wait()
        for n in range(20):
            await fake.send_event("test.noise", {"call_id": fake.call_id, "n": n})
        await relay_server.wait_until(lambda: not relay_server.unacked_events())
        # Acked is not yet routed: after this round trip the client has routed all
        # twenty, so the call's listeners overflowed.
        await client.execute("test.ok", {})
        overflowed.set()
        await eventually(lambda: len(outcome) == 1)  # the handler tried to listen again
        await fake.send_event("test.noise", {"call_id": fake.call_id, "n": 99})
        await client.execute("test.ok", {})  # a round trip: the client has routed that event
        release.set()
        await fake.remote_hangup()
    assert len(outcome) == 1 and isinstance(outcome[0], EventOverflow)
