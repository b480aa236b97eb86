"""A listener sees its call to the end, whether or not the handler has returned.

The call-detail logger of a new user: ``call.on(EVENT_CALL_STATE, log)`` in the
handler, answer, hang up, return. The ``ending`` and ``ended`` events arrive after the
handler returned; they must still reach the listener (SignalWire's client delivers
them), and then the listener and the call must go.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import EVENT_CALL_CONNECT, EVENT_CALL_STATE, Call, RelayEvent
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio


async def test_a_call_detail_logger_gets_answered_ending_ended_after_the_handler_returned(
    relay_server: FakeRelayServer,
) -> None:
    plain: list[tuple[str, str]] = []
    awaited: list[tuple[str, str]] = []
    returned = anyio.Event()
    client = make_client(relay_server)

    def log(event: RelayEvent) -> None:
        plain.append((event.params["call_state"], event.params.get("end_reason", "")))

    async def log_async(event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        awaited.append((event.params["call_state"], event.params.get("end_reason", "")))

    @client.on_call
    async def cdr(call: Call) -> None:
        call.on(EVENT_CALL_STATE, log)
        call.on(EVENT_CALL_STATE, log_async)
        await call.answer()
        await call.hangup()
        returned.set()  # returns before ending/ended have arrived

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await returned.wait()
        await fake.wait_for_state("ended")
        await eventually(lambda: len(awaited) == 3, timeout=10)
    expected = [("answered", ""), ("ending", ""), ("ended", "hangup")]
    assert plain == expected
    assert awaited == expected
    assert client.active_calls == 0


CALLS = 300


async def test_every_call_of_many_gets_every_state_event_after_its_handler_returned(
    relay_server: FakeRelayServer,
) -> None:
    """At load the late events still reach every listener: none lost, none extra."""
    seen: dict[str, list[str]] = {}
    returned = 0
    all_returned = anyio.Event()
    # Timing is not the subject: on a loaded machine 300 handshakes take a while.
    client = make_client(relay_server, max_active_calls=CALLS, request_timeout=30.0)

    @client.on_call
    async def handle(call: Call) -> None:
        nonlocal returned
        mine = seen.setdefault(call.call_id, [])

        async def log(event: RelayEvent) -> None:
            mine.append(event.params["call_state"])

        call.on(EVENT_CALL_STATE, log)
        await call.answer()
        await call.hangup()
        returned += 1
        if returned == CALLS:
            all_returned.set()

    async with client:
        for _ in range(CALLS):
            await relay_server.offer_call()
        with anyio.fail_after(60):
            await all_returned.wait()
        await relay_server.wait_until(
            lambda: all(c.state == "ended" for c in relay_server.calls.values()), timeout=60
        )
        await eventually(lambda: all(len(states) == 3 for states in seen.values()), timeout=60)
    assert len(seen) == CALLS
    assert all(states == ["answered", "ending", "ended"] for states in seen.values()), [
        s for s in seen.values() if s != ["answered", "ending", "ended"]
    ][:3]


async def test_a_bridged_call_whose_handler_returned_still_gets_its_ended(
    relay_server: FakeRelayServer,
) -> None:
    events: list[tuple[str, str]] = []
    kept: list[Call] = []
    client = make_client(relay_server)

    @client.on_call
    async def bridge(call: Call) -> None:
        call.on(EVENT_CALL_STATE, lambda e: events.append(("state", e.params["call_state"])))
        call.on(EVENT_CALL_CONNECT, lambda e: events.append(("connect", e.params["connect_state"])))
        await call.answer()
        await call.connect([[{"type": "phone", "params": {"to_number": "+15553334444"}}]])
        await call.wait_for(
            EVENT_CALL_CONNECT, lambda e: e.params["connect_state"] == "connected", timeout=5
        )
        kept.append(call)

    async with client:
        fake = await relay_server.offer_call()
        await eventually(lambda: kept and kept[0] not in client._router.handled, timeout=10)
        await fake.remote_hangup()
        [call] = kept
        await call.wait_for_ended(timeout=10)
        await eventually(lambda: events[-1:] == [("state", "ended")])
    assert events == [
        ("state", "answered"),
        ("connect", "connecting"),
        ("connect", "connected"),
        ("state", "ending"),
        ("connect", "disconnected"),
        ("state", "ended"),
    ]


async def test_nothing_runs_after_ended(relay_server: FakeRelayServer) -> None:
    """Events for a call after its ``ended`` (a late duplicate, a stray play) reach no
    listener, and the call is no longer routed."""
    got: list[str] = []
    done = anyio.Event()
    client = make_client(relay_server)

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_STATE, lambda e: got.append(e.params["call_state"]))
        call.on("calling.call.play", lambda e: got.append("play"))
        await call.answer()
        await call.hangup()
        await call.wait_for_ended(timeout=5)
        done.set()

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await done.wait()
        await fake.send_event(EVENT_CALL_STATE, fake.state_params())  # a duplicate ended
        await fake.send_event(
            "calling.call.play",
            {
                "call_id": fake.call_id,
                "node_id": fake.node_id,
                "control_id": "x",
                "state": "playing",
            },
        )
        await relay_server.wait_until(lambda: relay_server.unacked_events() == [])
        # Both events were acked and routed (the reader is past them): give the
        # reader's routing a turn, then check nobody heard them.
        await client.execute("test.ok", {})
    assert got == ["answered", "ending", "ended"]


# asyncio's debug mode records a traceback per task: 10,000 of them take the most of
# a minute on a loaded machine, and this test is about references, not misuse.
@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
async def test_10000_calls_whose_handlers_return_before_the_end_leave_no_call_alive(
    relay_server: FakeRelayServer,
) -> None:
    """Once ended, nothing holds the calls: listeners, scopes and routing let go.

    The events enter where the reader hands them over (``session_event``, the
    session's synchronous listener interface): 10,000 calls over the loopback
    socket take a minute, and the wire is not what this is about (the 300-call
    test above covers it).
    """
    count = 10_000
    refs: list[weakref.ref[Call]] = []
    client = make_client(relay_server, max_active_calls=count)
    heard = 0

    def listen(event: RelayEvent) -> None:
        nonlocal heard
        heard += 1

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_STATE, listen)
        refs.append(weakref.ref(call))

    def state(call_id: str, call_state: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "call_id": call_id,
            "node_id": "node",
            "call_state": call_state,
            "direction": "inbound",
            "context": "default",
            "device": {"type": "phone", "params": {"from_number": "+1", "to_number": "+2"}},
        }
        if call_state == "ended":
            params["end_reason"] = "hangup"
        return params

    async with client:
        ids = [f"call-{n}" for n in range(count)]
        for call_id in ids:
            client._router.session_event("calling.call.receive", state(call_id, "created"), 0.0)
        await eventually(lambda: len(refs) == count, timeout=60)
        await eventually(lambda: not client._router.handled, timeout=60)  # every handler returned
        for call_id in ids:
            client._router.session_event(EVENT_CALL_STATE, state(call_id, "ending"), 0.0)
            client._router.session_event(EVENT_CALL_STATE, state(call_id, "ended"), 0.0)
        assert heard == 2 * count
        assert client.active_calls == 0

        def none_alive() -> bool:
            gc.collect()
            return all(ref() is None for ref in refs)

        # The calls' scopes end a few scheduler turns after their ended events.
        await eventually(none_alive, timeout=60, interval=0.05)
