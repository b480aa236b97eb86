"""Listener handles: every ``on()`` returns one; ``remove()`` or a ``with`` block ends it.

``call.on``, ``client.on``, ``message.on`` and ``action.on`` share the handle of
``_listeners``. Each test proves the listener saw what came before its removal and
nothing routed after it: a second listener that stays gets a later marker event, so
the removed one had its chance at everything in between (one connection keeps the
order).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_MESSAGING_STATE,
    Call,
    EventOverflow,
    ListenerHandle,
    RelayClient,
    RelayEvent,
)
from relay_anyio._events import make_event
from relay_anyio._listeners import Dispatcher
from relay_anyio.testing import FakeRelayServer, HandlerContext, ok

from .helpers import make_client
from .test_call_basics import inbound_call

pytestmark = pytest.mark.anyio

NOISE = "test.noise"


class Seen:
    """A listener that records ``params["n"]`` (or the state) and can be waited on."""

    def __init__(self, key: str = "n", *, awaitable: bool = False) -> None:
        self.key = key
        self.items: list[Any] = []
        self.awaitable = awaitable
        self._changed = anyio.Event()

    def __call__(self, event: RelayEvent) -> Any:
        if self.awaitable:
            return self._record_later(event)
        self._record(event)
        return None

    async def _record_later(self, event: RelayEvent) -> None:
        await anyio.lowlevel.checkpoint()
        self._record(event)

    def _record(self, event: RelayEvent) -> None:
        self.items.append(event.params.get(self.key))
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, count: int) -> None:
        with anyio.fail_after(10):  # a failure detector only
            while len(self.items) < count:
                await self._changed.wait()

    async def until_has(self, value: Any) -> None:
        with anyio.fail_after(10):
            while value not in self.items:
                await self._changed.wait()


async def noise(fake: Any, n: int) -> None:
    await fake.send_event(NOISE, {"call_id": fake.call_id, "n": n})


@pytest.mark.parametrize("awaitable", [False, True], ids=["plain", "async"])
async def test_remove_stops_a_call_listener(relay_server: FakeRelayServer, awaitable: bool) -> None:
    removed, marker = Seen(awaitable=awaitable), Seen(awaitable=awaitable)
    async with inbound_call(relay_server) as (call, fake):
        handle = call.on(NOISE, removed)
        call.on(NOISE, marker)
        assert isinstance(handle, ListenerHandle) and handle.listener is removed
        await noise(fake, 1)
        await removed.until(1)
        handle.remove()
        handle.remove()  # idempotent
        await noise(fake, 2)
        await noise(fake, 3)
        await marker.until(3)
    assert removed.items == [1]
    assert marker.items == [1, 2, 3]


async def test_a_with_block_scopes_a_listener_however_it_is_left(
    relay_server: FakeRelayServer,
) -> None:
    scoped, failed, marker = Seen(), Seen(), Seen()
    async with inbound_call(relay_server) as (call, fake):
        call.on(NOISE, marker)
        with call.on(NOISE, scoped):
            await noise(fake, 1)
            await scoped.until(1)
        with pytest.raises(LookupError), call.on(NOISE, failed):
            await noise(fake, 2)
            await failed.until(1)
            raise LookupError("the block fails")
        await noise(fake, 3)
        await marker.until(3)
    assert scoped.items == [1]
    assert failed.items == [2]
    assert marker.items == [1, 2, 3]


async def test_a_handle_removes_its_own_registration_and_off_still_works(
    relay_server: FakeRelayServer,
) -> None:
    twice, other, marker = Seen(), Seen(), Seen()
    async with inbound_call(relay_server) as (call, fake):
        call.on(NOISE, marker)
        first = call.on(NOISE, twice)
        call.on(NOISE, twice)
        call.on(NOISE, other)
        await noise(fake, 1)
        await marker.until(1)
        first.remove()  # one registration of the two goes
        await noise(fake, 2)
        await marker.until(2)
        call.off(NOISE, other)
        await noise(fake, 3)
        await marker.until(3)
    assert twice.items == [1, 1, 2, 3]
    assert other.items == [1, 2]
    assert "removed" in repr(first)


async def test_removing_after_the_call_ended_is_harmless(relay_server: FakeRelayServer) -> None:
    states = Seen("call_state")
    async with inbound_call(relay_server) as (call, fake):
        handle = call.on("calling.call.state", states)
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=10)
        handle.remove()
    assert states.items[-1] == "ended"


async def test_client_on_returns_a_handle(relay_server: FakeRelayServer) -> None:
    removed, marker = Seen(), Seen()
    client = make_client(relay_server)
    handle = client.on(NOISE, removed)
    client.on(NOISE, marker)
    async with client:
        session = await relay_server.wait_for_session()
        await session.emit(NOISE, {"n": 1})
        await removed.until(1)
        with handle:  # leaving the block removes it
            pass
        await session.emit(NOISE, {"n": 2})
        await marker.until(2)
    assert isinstance(handle, ListenerHandle)
    assert removed.items == [1]
    assert marker.items == [1, 2]


async def test_message_on_returns_a_handle(relay_server: FakeRelayServer) -> None:
    """The send is answered with no state event; the test sends the states itself."""

    async def silent_send(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        return ok("Message accepted", message_id="m-1")

    relay_server.set_handler("messaging.send", silent_send)
    removed, marker = Seen("message_state"), Seen("message_state")
    client = make_client(relay_server)
    async with client:
        message = await client.send_message(to_number="+15551", from_number="+15552", body="hi")
        handle = message.on(removed)
        message.on(handler=marker)
        session = relay_server.sessions[-1]
        state = {"message_id": "m-1", "to_number": "+15551", "from_number": "+15552"}
        await session.emit(EVENT_MESSAGING_STATE, {**state, "message_state": "sent"})
        await removed.until(1)
        handle.remove()
        await session.emit(EVENT_MESSAGING_STATE, {**state, "message_state": "delivered"})
        await marker.until(2)
        assert (await message.wait(timeout=10)).params["message_state"] == "delivered"
    assert removed.items == ["sent"]
    assert marker.items == ["sent", "delivered"]


# -- action.on ---------------------------------------------------------------------------------


async def test_action_on_sees_exactly_that_actions_events(relay_server: FakeRelayServer) -> None:
    """A play and a recording run at once on one call: each listener sees its own."""
    relay_server.play_duration = 0.05
    play_seen: list[tuple[str, str]] = []
    record_seen: list[tuple[str, str]] = []

    def log(into: list[tuple[str, str]]) -> Any:
        return lambda e: into.append((e.event_type, e.params["state"]))

    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        record = await call.record()
        record_handle = record.on(log(record_seen))
        play = await call.play([{"type": "tts", "text": "hi"}])
        play.on(handler=log(play_seen))
        await play.wait(timeout=10)
        await record.stop()
        await record.wait(timeout=10)
    assert play_seen[-1] == (EVENT_CALL_PLAY, "finished")
    assert set(play_seen) <= {(EVENT_CALL_PLAY, "playing"), (EVENT_CALL_PLAY, "finished")}
    assert record_seen[-1] == (EVENT_CALL_RECORD, "finished")
    assert {t for t, _ in record_seen} == {EVENT_CALL_RECORD}
    assert isinstance(record_handle, ListenerHandle)


async def test_action_listeners_keep_order_with_the_calls_listeners(
    relay_server: FakeRelayServer,
) -> None:
    """Through the call's one queue: for each event the action's listener, then the
    call's, async ones included; ``on_completed`` between them on the terminal event."""
    order: list[tuple[str, str]] = []
    seen = Seen("state")

    def logger(who: str) -> Any:
        async def log(event: RelayEvent) -> None:
            await anyio.lowlevel.checkpoint()
            order.append((who, event.params["state"]))
            if who == "call":
                seen(event)

        return log

    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        call.on(EVENT_CALL_RECORD, logger("call"))
        record = await call.record(on_completed=logger("done"))  # records until stopped
        record.on(logger("action"))
        await record.pause()
        await record.stop()
        await record.wait(timeout=10)
        await seen.until_has("finished")
    # "recording" may have been routed before record.on() ran: the call's alone then.
    assert [entry for entry in order if entry[1] != "recording"] == [
        ("action", "paused"),
        ("call", "paused"),
        ("action", "finished"),
        ("done", "finished"),
        ("call", "finished"),
    ]


async def test_action_on_after_the_action_is_done_is_inert(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 0.0
    seen: list[RelayEvent] = []
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hi"}])
        await play.wait(timeout=10)
        handle = play.on(seen.append)
        handle.remove()
        handle.remove()
    assert seen == []
    assert "removed" in repr(handle)


async def test_action_on_removed_sees_nothing_more(relay_server: FakeRelayServer) -> None:
    seen = Seen("state")
    async with inbound_call(relay_server) as (call, _):
        await call.answer()
        record = await call.record()
        with record.on(seen):
            await record.pause()
            await seen.until_has("paused")
        await record.stop()
        await record.wait(timeout=10)
    assert "finished" not in seen.items
    assert seen.items[-1] == "paused"


def test_on_needs_a_callable() -> None:
    client = RelayClient(project="p", token="t", url="ws://127.0.0.1:1")
    assert isinstance(client.on(NOISE, print), ListenerHandle)
    with pytest.raises(TypeError):
        Call(lambda *a: None, lambda *a: None, call_id="c", node_id="n").on(NOISE, 42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("what", "are", "consequence"),
    [
        ("listeners", "are", "its listeners are dropped"),
        ("an event stream", "is", "that stream ends"),
    ],
)
def test_the_one_overflow_rule_counts_then_drops_or_fails_by_policy(
    caplog: pytest.LogCaptureFixture, what: str, are: str, consequence: str
) -> None:
    """Listener queues and event streams overflow through ``Dispatcher.report_overflow``."""
    event = make_event("calling.call.play", {"call_id": "c1", "state": "playing"}, 0.0)
    told: list[tuple[str, str]] = []
    for policy in ("drop", "fail"):
        dispatcher = Dispatcher("call", 7, policy, call_id="c1")
        dispatcher.on_overflow = lambda owner, how: told.append((owner, how))
        caplog.clear()
        with caplog.at_level("ERROR", logger="relay_anyio.listeners"):
            error = dispatcher.report_overflow(what, are, event, consequence)
        [record] = caplog.records
        assert record.__dict__["call_id"] == "c1"
        if policy == "drop":
            assert error is None
            assert record.getMessage() == (
                f"{what} of call c1 {are} more than 7 events behind; "
                "dropped a calling.call.play event"
            )
        else:
            assert isinstance(error, EventOverflow)
            assert error.limit == 7
            assert error.message == (
                f"{what} of call c1: more than 7 events buffered; consumer too slow"
            )
            assert record.getMessage() == f"{error.message}; {consequence}"
    assert told == [("call c1", "drop"), ("call c1", "fail")]
