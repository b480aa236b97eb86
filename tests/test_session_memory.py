"""The session over an in-memory link: the test plays the server, frame by frame.

These run the real ``Session`` (``relay_anyio.lowlevel``) over
``memory_transport_pair``, with no socket and no fake server: each test scripts the
server's side exactly, so the session logic is pinned deterministically and fast.
The loopback tests cover the same behaviours end to end over the wire.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from relay_anyio import AuthenticationError, ConnectionLost, RelayError
from relay_anyio.lowlevel import (
    ConnectionState,
    MemoryTransport,
    Session,
    SessionOptions,
    memory_transport_pair,
)

pytestmark = pytest.mark.anyio

AUTH = {"project": "p", "token": "t"}


class Recorder:
    """The session's listener: what was routed, and the states it went through."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], float]] = []
        self.states: list[tuple[ConnectionState, bool]] = []
        self.on_event: Any = None

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        if self.on_event is not None:
            self.on_event(event_type, params)
        self.events.append((event_type, params, timestamp))

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        self.states.append((state, fresh_session))


class Server:
    """The far ends of the links the session opens, one per connection attempt."""

    def __init__(self, max_buffer: float = math.inf) -> None:
        self.max_buffer = max_buffer
        self._send, self._links = anyio.create_memory_object_stream[MemoryTransport](100)
        self.opened = 0
        self._ends: list[MemoryTransport] = []

    def close(self) -> None:
        """Close every link end and the queue of links (memory streams warn otherwise)."""
        for end in self._ends:
            end._shut()
        self._send.close()
        self._links.close()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MemoryTransport]:
        client, server = memory_transport_pair(self.max_buffer)
        self._ends += [client, server]
        self.opened += 1
        self._send.send_nowait(server)
        try:
            yield client
        finally:
            await client.abort()

    async def next_link(self) -> Link:
        with anyio.fail_after(30):  # a hang detector, not a timing bound
            return Link(await self._links.receive())


class Link:
    """One connection, seen from the server."""

    def __init__(self, end: MemoryTransport) -> None:
        self.end = end
        self._backlog: list[dict[str, Any]] = []

    async def frame(self) -> dict[str, Any]:
        with anyio.fail_after(30):
            while not self._backlog:
                self._backlog.extend(json.loads(raw) for raw in await self.end.receive_batch())
        return self._backlog.pop(0)

    async def send(self, *frames: dict[str, Any]) -> None:
        await self.end.send_texts([json.dumps(f) for f in frames])

    async def accept(self, protocol: str = "proto-1") -> dict[str, Any]:
        """Answer the connect frame; returns its params."""
        connect = await self.frame()
        assert connect["method"] == "signalwire.connect"
        await self.send(_result(connect["id"], {"protocol": protocol}))
        params: dict[str, Any] = connect["params"]
        return params


def _result(rid: object, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _event(eid: str, call_id: str = "c1", state: str = "answered") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": eid,
        "method": "signalwire.event",
        "params": {
            "event_type": "calling.call.state",
            "timestamp": 1.5,
            "params": {"call_id": call_id, "call_state": state},
        },
    }


def _options(**overrides: Any) -> SessionOptions:
    values: dict[str, Any] = {
        "url": "ws://unused.invalid",
        "authentication": AUTH,
        "request_timeout": 30.0,
        "ping_interval": 3600.0,
        "reconnect_min_delay": 0.0,
        "reconnect_max_delay": 0.0,
    }
    values.update(overrides)
    return SessionOptions(**values)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server() -> Iterator[Server]:
    link_server = Server()
    yield link_server
    link_server.close()


@asynccontextmanager
async def running(
    session: Session, link_server: Server, protocol: str = "proto-1"
) -> AsyncIterator[Link]:
    """Run ``session``, accept its first connect, yield the link; cancel at the end."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.run)
        link = await link_server.next_link()
        await link.accept(protocol)
        yield link
        tg.cancel_scope.cancel()


def _session(server: Server, recorder: Recorder, **overrides: Any) -> Session:
    return Session(_options(**overrides), recorder, ["office"], connect=server.connect)


async def test_the_connect_frame_and_nothing_before_its_result(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.run)
        link = await server.next_link()
        tg.start_soon(session.request, "test.early", {})  # must wait for authentication
        connect = await link.frame()
        assert connect["method"] == "signalwire.connect"
        params = connect["params"]
        assert params["event_acks"] is True
        assert params["authentication"] == AUTH
        assert params["contexts"] == ["office"]
        assert "protocol" not in params
        await link.send(_result(connect["id"], {"protocol": "proto-1"}))
        early = await link.frame()  # the first frame after the connect's result
        assert early["method"] == "test.early"
        tg.cancel_scope.cancel()
    assert recorder.states[0] == (ConnectionState.CONNECTED, False)
    assert session.protocol == "proto-1"


async def test_a_request_gets_its_result_and_the_code_rule(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    results: list[Any] = []
    async with running(session, server) as link:
        async with anyio.create_task_group() as tg:

            async def ask(method: str) -> None:
                try:
                    results.append(await session.request(method, {"x": 1}))
                except RelayError as exc:
                    results.append((exc.code, exc.message))

            tg.start_soon(ask, "test.ok")
            ok = await link.frame()
            assert (ok["method"], ok["params"]) == ("test.ok", {"x": 1})
            tg.start_soon(ask, "test.bad")
            bad = await link.frame()
            await link.send(
                _result(bad["id"], {"code": "404", "message": "gone"}),
                _result(ok["id"], {"code": "200", "message": "fine"}),
            )
    # Both waiters wake in the same read; which task runs first is the scheduler's.
    assert sorted(map(repr, results)) == sorted(
        map(repr, [(404, "gone"), {"code": "200", "message": "fine"}])
    )


async def test_events_are_acked_before_any_of_them_is_routed(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    acks_waiting: list[int] = []
    async with running(session, server) as link:
        # When the listener sees an event, the acks of the whole read are already
        # written: they wait in the server's buffer.
        recorder.on_event = lambda *_: acks_waiting.append(
            link.end._receive.statistics().current_buffer_used
        )
        await link.send(_event("e1"), _event("e2", state="ending"), _event("e3", state="ended"))
        acks = [await link.frame() for _ in range(3)]
    assert [a["id"] for a in acks] == ["e1", "e2", "e3"]
    assert all(a["result"] == {} for a in acks)
    assert acks_waiting[0] >= 1
    assert [(t, p["call_state"], ts) for t, p, ts in recorder.events] == [
        ("calling.call.state", "answered", 1.5),
        ("calling.call.state", "ending", 1.5),
        ("calling.call.state", "ended", 1.5),
    ]


async def test_a_redelivered_event_is_acked_again_but_routed_once(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    async with running(session, server) as link:
        await link.send(_event("e1"), _event("e1"))
        acks = [await link.frame(), await link.frame()]
    assert [a["id"] for a in acks] == ["e1", "e1"]
    assert len(recorder.events) == 1


async def test_server_requests_get_their_replies(server: Server, recorder: Recorder) -> None:
    session = _session(server, recorder)
    async with running(session, server) as link:
        await link.send(
            {"jsonrpc": "2.0", "id": "p1", "method": "signalwire.ping", "params": {}},
            {"jsonrpc": "2.0", "id": "u1", "method": "signalwire.nonsense", "params": {}},
            {"jsonrpc": "2.0", "id": "b1", "method": "signalwire.ping", "params": [1]},
        )
        replies = [await link.frame() for _ in range(3)]
    assert replies[0] == {"jsonrpc": "2.0", "id": "p1", "result": {}}
    assert replies[1]["error"]["code"] == -32601
    assert replies[2]["error"]["code"] == -32602
    assert recorder.events == []


async def test_a_dropped_link_fails_the_request_in_flight_and_resumes(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    outcome: list[str] = []
    async with running(session, server) as link:

        async def ask() -> None:
            try:
                await session.request("test.slow", {})
            except ConnectionLost as exc:
                outcome.append(exc.message)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            assert (await link.frame())["method"] == "test.slow"
            await link.end.abort()
        second = await server.next_link()
        params = await second.accept("proto-1")  # the same protocol: resumed
        assert params["protocol"] == "proto-1"
        with anyio.fail_after(30):
            while len(recorder.states) < 3:
                await anyio.lowlevel.checkpoint()
    assert len(outcome) == 1 and "may or may not have taken effect" in outcome[0]
    assert recorder.states[:3] == [
        (ConnectionState.CONNECTED, False),
        (ConnectionState.RECONNECTING, False),
        (ConnectionState.CONNECTED, False),
    ]


async def test_another_protocol_on_reconnect_is_a_fresh_session(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)
    async with running(session, server) as link:
        await link.send(_event("e1"))
        await link.frame()
        await link.end.abort()
        second = await server.next_link()
        await second.accept("proto-2")
        await second.send(_event("e1"))  # same id, new session: not a repeat
        await second.frame()
    assert recorder.states[2] == (ConnectionState.CONNECTED, True)
    assert len(recorder.events) == 2
    assert session.protocol == "proto-2"


async def test_server_disconnect_reconnects_at_once_without_backoff(
    server: Server, recorder: Recorder
) -> None:
    # A backoff this long would time the test out: the reconnect must skip it.
    session = _session(server, recorder, reconnect_min_delay=3600.0, reconnect_max_delay=3600.0)
    async with running(session, server) as link:
        await link.send(
            {"jsonrpc": "2.0", "id": "d1", "method": "signalwire.disconnect", "params": {}}
        )
        assert (await link.frame())["id"] == "d1"
        second = await server.next_link()
        params = await second.accept()
        assert params["protocol"] == "proto-1"
    assert server.opened == 2


async def test_a_first_rejection_raises_after_one_connect(
    server: Server, recorder: Recorder
) -> None:
    session = _session(server, recorder)

    async def reject() -> None:
        link = await server.next_link()
        connect = await link.frame()
        await link.send(
            {"jsonrpc": "2.0", "id": connect["id"], "error": {"code": -32002, "message": "no"}}
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(reject)
        with pytest.raises(AuthenticationError, match="no"):
            await session.run()
    assert server.opened == 1
    assert session.state is ConnectionState.CLOSED


async def test_an_unanswered_ping_is_a_dead_link(server: Server, recorder: Recorder) -> None:
    session = _session(server, recorder, ping_interval=0.01, ping_timeout=0.05)
    async with running(session, server) as link:
        ping = await link.frame()  # never answered
        assert ping["method"] == "signalwire.ping"
        second = await server.next_link()  # the session gave the link up
        await second.accept()
    assert recorder.states[1] == (ConnectionState.RECONNECTING, False)


# -- the memory link keeps the transport contract ----------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[MemoryTransport, MemoryTransport]]:
    a, b = memory_transport_pair(max_buffer=2)
    yield a, b
    a._shut()
    b._shut()


async def test_messages_sent_before_a_close_arrive_before_it(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    await a.send_texts(["one"])
    await a.aclose(4000, "bye")
    assert await b.receive_batch() == ["one"]
    with pytest.raises(ConnectionLost) as lost:
        await b.receive_batch()
    assert lost.value.close_code == 4000
    with pytest.raises(ConnectionLost):
        await b.send_text("late")


async def test_an_abort_is_code_1006_and_both_ends_are_idempotent(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    await a.abort()
    await a.abort()
    await a.aclose()
    with pytest.raises(ConnectionLost) as lost:
        await b.receive_batch()
    assert lost.value.close_code == 1006
    with pytest.raises(ConnectionLost):
        await a.send_text("after")


async def test_aclose_ends_a_send_blocked_on_a_peer_that_stopped_reading(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    await a.send_texts(["1", "2"])  # the buffer is full now
    failed = anyio.Event()

    async def blocked() -> None:
        with pytest.raises(ConnectionLost):
            await a.send_text("3")
        failed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked)
        await anyio.wait_all_tasks_blocked()
        await a.aclose()
        with anyio.fail_after(30):
            await failed.wait()
    assert await b.receive_batch() == ["1", "2"]
    with pytest.raises(ConnectionLost) as lost:
        await b.receive_batch()
    assert lost.value.close_code == 1006  # the close did not fit: the link dropped
