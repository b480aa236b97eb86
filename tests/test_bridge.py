"""Bridge objects: ``call.bridge(...)``, its peer ``Call``, its waits and its end.

Against the loopback fake, under each value of the fake's bridge switches
(``bridge_peer_events``, ``bridge_unconnected_end``, ``bridge_failure_reason``):
what the client sent, and what its ``Bridge`` and peer ``Call`` say.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_CONNECT,
    EVENT_CALL_STATE,
    Bridge,
    BridgeFailed,
    BridgeTimeout,
    Call,
    CallEnded,
    ConnectionLost,
    Device,
    Media,
    RelayClient,
    RelayError,
    RelayEvent,
)
from relay_anyio.testing import FakeCall, FakeRelayServer, HandlerContext, ok

from .helpers import eventually, make_client
from .test_call_basics import inbound_call
from .test_examples import run_snippet

pytestmark = pytest.mark.anyio

AGENT = Device.phone("+15551001000", "+15550000000", timeout=20)
UNCONNECTED_ENDS = ["failed", "disconnected", "silent"]


def params(frame: dict[str, Any]) -> dict[str, Any]:
    return dict(frame["params"])


def sent(fake: FakeCall) -> list[str]:
    """The methods the client sent about ``fake``, in order."""
    return [frame["method"] for frame in fake.requests]


async def test_bridge_sends_connects_frame_and_async_with_unbridges(
    relay_server: FakeRelayServer,
) -> None:
    clients: list[RelayClient] = []
    async with inbound_call(relay_server, configure=clients.append) as (call, fake):
        options: dict[str, Any] = {
            "ringback": [Media.ringtone("us")],
            "tag": "sales-1",
            "max_duration": 600,
            "max_price_per_minute": 1.5,
            "status_url": "https://example.com/status",
        }
        async with await call.bridge([[AGENT]], **options) as bridge:
            assert isinstance(bridge, Bridge)
            peer = await bridge.wait_connected(timeout=10)
            assert call.peer is peer and peer.peer is call and bridge.peer is peer
        assert sent(fake) == ["calling.connect", "calling.disconnect"]
        connect, disconnect = fake.requests
        ids = {"node_id": call.node_id, "call_id": call.call_id}
        assert params(connect) == {
            **ids,
            "devices": [[dict(AGENT)]],
            "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
            "tag": "sales-1",
            "max_duration": 600,
            "max_price_per_minute": 1.5,
            "status_url": "https://example.com/status",
        }
        assert params(disconnect) == ids
        assert bridge.is_over and bridge.state == "disconnected"
        assert call.peer is None and peer.peer is None and bridge.peer is peer
        # Unbridged, not hung up: the call goes on; the peer, never reported on, is let go.
        assert call.state == "created" and fake.state == "created"
        ended = await peer.wait_for_ended(timeout=10)
        assert ended.params["end_reason"] == "disconnected"
        await eventually(lambda: clients[0].active_calls == 1)

        # connect() sends the very same frame, returns the RPC result, tracks no peer.
        result = await call.connect([[AGENT]], **options)
        assert result["code"] == "200"
        assert params(fake.requests[-1]) == params(connect)
        await eventually(lambda: fake.connect_state == "connected")
        assert call.peer is None and clients[0].active_calls == 1


@pytest.mark.parametrize("peer_events", [False, True])
async def test_bridge_lifecycle_to_the_call_s_end(
    relay_server: FakeRelayServer, peer_events: bool
) -> None:
    relay_server.bridge_peer_events = peer_events
    clients: list[RelayClient] = []
    async with inbound_call(relay_server, configure=clients.append) as (call, fake):
        await call.answer()
        bridge = await call.bridge([[AGENT]])
        peer = await bridge.wait_connected(timeout=10)
        assert bridge.state == "connected" and not bridge.is_over
        leg = fake.peer
        assert leg is not None
        assert (peer.call_id, peer.node_id, peer.device) == (leg.call_id, leg.node_id, leg.device)
        assert peer.direction == "outbound" and peer.state == "answered"
        assert isinstance(peer, Call) and clients[0].active_calls == 2
        # The peer is a call like any other: commands on it name its call_id.
        play = await peer.play([Media.tts("You have a caller")])
        assert (await play.wait(timeout=10)).params["state"] == "finished"
        assert leg.requests[-1]["params"]["call_id"] == peer.call_id

        await fake.remote_hangup()
        event = await bridge.wait_disconnected(timeout=10)
        assert event.params["connect_state"] == "disconnected"
        await peer.wait_for_ended(timeout=10)
        await call.wait_for_ended(timeout=10)
        # Its own "ended" when the server reports on the peer, else the bridge's end.
        assert peer.end_reason == ("hangup" if peer_events else "disconnected")
        assert call.peer is None and peer.peer is None
        assert await bridge.wait_connected() is peer  # it did connect
        await eventually(lambda: clients[0].active_calls == 0)


@pytest.mark.parametrize("peer_events", [False, True])
async def test_the_peer_hanging_up_ends_the_bridge_not_the_call(
    relay_server: FakeRelayServer, peer_events: bool
) -> None:
    relay_server.bridge_peer_events = peer_events
    async with inbound_call(relay_server) as (call, fake):
        await call.answer()
        bridge = await call.bridge([[AGENT]])
        peer = await bridge.wait_connected(timeout=10)
        states: list[str] = []
        peer.on(EVENT_CALL_STATE, lambda e: states.append(e.params["call_state"]))
        assert fake.peer is not None
        await fake.peer.remote_hangup()
        event = await bridge.wait_disconnected(timeout=10)
        assert event.params["connect_state"] == "disconnected"
        await peer.wait_for_ended(timeout=10)
        assert states == (["ending", "ended"] if peer_events else ["ended"])
        assert peer.end_reason == ("hangup" if peer_events else "disconnected")
        assert call.state == "answered" and call.peer is None
        # The call lives on and can be bridged again.
        again = await call.bridge([[AGENT]])
        assert (await again.wait_connected(timeout=10)) is not peer
        assert sent(fake) == ["calling.answer", "calling.connect", "calling.connect"]


@pytest.mark.parametrize("with_reason", [False, True])
async def test_a_failed_bridge_raises_bridge_failed(
    relay_server: FakeRelayServer, with_reason: bool
) -> None:
    relay_server.bridge_failure_reason = with_reason
    clients: list[RelayClient] = []
    async with inbound_call(relay_server, configure=clients.append) as (call, fake):
        fake.script_bridge("busy")
        async with await call.bridge([[AGENT]]) as bridge:
            with pytest.raises(BridgeFailed) as caught:
                await bridge.wait_connected(timeout=10)
            assert caught.value.call_id == call.call_id
            assert caught.value.connect_state == "failed"
            assert caught.value.reason == ("busy" if with_reason else "")
            event = await bridge.wait_disconnected(timeout=10)
            assert event.params["connect_state"] == "failed"
        assert bridge.is_over and bridge.state == "failed" and bridge.peer is None
        assert call.peer is None and clients[0].active_calls == 1
        assert sent(fake) == ["calling.connect"]  # nothing to unbridge on the way out


@pytest.mark.parametrize("unconnected_end", UNCONNECTED_ENDS)
async def test_the_bridge_s_timeout_gives_it_up(
    relay_server: FakeRelayServer, unconnected_end: str
) -> None:
    relay_server.bridge_unconnected_end = unconnected_end  # type: ignore[assignment]
    async with inbound_call(relay_server) as (call, fake):
        fake.script_bridge(delay=3600)  # the agent's phone rings on
        bridge = await call.bridge([[AGENT]], timeout=0.2)
        with pytest.raises(BridgeTimeout) as caught:
            await bridge.wait_connected()
        assert isinstance(caught.value, TimeoutError) and caught.value.timeout == 0.2
        assert caught.value.waiting_for == "connected"
        assert sent(fake) == ["calling.connect", "calling.disconnect"]
        assert bridge.is_over and bridge.peer is None and call.peer is None
        assert fake.connecting is None  # called off on the server too
        with pytest.raises(BridgeTimeout):  # and it stays given up
            await bridge.wait_connected(timeout=5)
        if unconnected_end == "silent":  # no word from the server: given up, that is all
            with pytest.raises(BridgeTimeout):
                await bridge.wait_disconnected(timeout=5)
        else:  # the server's word on how it ended
            event = await bridge.wait_disconnected(timeout=5)
            assert event.params["connect_state"] == unconnected_end
        assert sent(fake) == ["calling.connect", "calling.disconnect"]


@pytest.mark.parametrize("unconnected_end", UNCONNECTED_ENDS)
async def test_a_wait_s_own_timeout_ends_only_that_wait(
    relay_server: FakeRelayServer, unconnected_end: str
) -> None:
    relay_server.bridge_unconnected_end = unconnected_end  # type: ignore[assignment]
    async with inbound_call(relay_server) as (call, fake):
        fake.script_bridge(delay=3600)
        bridge = await call.bridge([[AGENT]])
        with pytest.raises(BridgeTimeout) as caught:
            await bridge.wait_connected(timeout=0.05)
        assert caught.value.timeout == 0.05
        with pytest.raises(BridgeTimeout) as waited:
            await bridge.wait_disconnected(timeout=0.05)
        assert waited.value.waiting_for == "disconnected"
        assert sent(fake) == ["calling.connect"] and not bridge.is_over
        assert bridge.state == "connecting"
        # Called off by hand while still connecting: it never connected.
        assert (await bridge.disconnect())["code"] == "200"
        with pytest.raises(BridgeFailed) as failed:
            await bridge.wait_connected()
        expected = "failed" if unconnected_end == "failed" else "disconnected"
        assert failed.value.connect_state == expected
        assert bridge.is_over and call.peer is None
        assert await bridge.disconnect() == {}  # over: nothing more is sent
        assert sent(fake) == ["calling.connect", "calling.disconnect"]


@pytest.mark.parametrize("unconnected_end", UNCONNECTED_ENDS)
async def test_the_call_ending_ends_every_bridge_wait(
    relay_server: FakeRelayServer, unconnected_end: str
) -> None:
    relay_server.bridge_unconnected_end = unconnected_end  # type: ignore[assignment]
    outcomes: dict[str, object] = {}

    async def wait(name: str, waiter: Callable[[], Awaitable[object]]) -> None:
        try:
            outcomes[name] = await waiter()
        except (CallEnded, BridgeFailed) as exc:
            outcomes[name] = exc

    async with inbound_call(relay_server) as (call, fake):
        fake.script_bridge(delay=3600)
        bridge = await call.bridge([[AGENT]])
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, "connected", bridge.wait_connected)
                tg.start_soon(wait, "disconnected", bridge.wait_disconnected)
                await anyio.wait_all_tasks_blocked()
                await fake.remote_hangup()
        await call.wait_for_ended(timeout=10)
        late = await call.bridge([[AGENT]])  # on an ended call: nothing is sent
        with pytest.raises(CallEnded):
            await late.wait_connected()
    assert sent(fake) == ["calling.connect"]
    assert bridge.is_over and late.is_over
    connected, disconnected = outcomes["connected"], outcomes["disconnected"]
    if unconnected_end == "silent":  # the call's end is all the client hears
        assert isinstance(connected, CallEnded) and connected.end_reason == "hangup"
        assert isinstance(disconnected, CallEnded)
    else:  # the server reported the bridge's end first
        assert isinstance(connected, BridgeFailed)
        assert connected.connect_state == unconnected_end
        assert disconnected.params["connect_state"] == unconnected_end  # type: ignore[attr-defined]


async def test_one_bridge_at_a_time(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        bridge = await call.bridge([[AGENT]])
        peer = await bridge.wait_connected(timeout=10)
        with pytest.raises(RuntimeError, match="already bridged"):
            await call.bridge([[AGENT]])
        with pytest.raises(RuntimeError, match="already bridged"):
            await peer.bridge([[AGENT]])
        assert (await bridge.disconnect())["code"] == "200"
        assert bridge.is_over and bridge.state == "disconnected"
        await (await call.bridge([[AGENT]])).wait_connected(timeout=10)
        assert sent(fake) == ["calling.connect", "calling.disconnect", "calling.connect"]


async def test_a_bridge_cancelled_in_flight_is_called_off(relay_server: FakeRelayServer) -> None:
    relay_server.withhold_next("calling.connect")  # its response never comes
    async with inbound_call(relay_server) as (call, _):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_once_sent() -> None:
                    await relay_server.wait_for_request("calling.connect")
                    scope.cancel()

                tg.start_soon(cancel_once_sent)
                await call.bridge([[AGENT]])
        assert scope.cancelled_caught
        assert [
            f["method"] for f in relay_server.received() if f["method"].startswith("calling.")
        ] == [
            "calling.connect",
            "calling.disconnect",
        ]
        assert call.peer is None
        await (await call.bridge([[AGENT]])).wait_connected(timeout=10)  # not stuck


async def test_a_fresh_session_fails_the_bridge_waits_with_connection_lost(
    relay_server: FakeRelayServer,
) -> None:
    async with inbound_call(relay_server) as (call, _):
        bridge = await call.bridge([[AGENT]])
        peer = await bridge.wait_connected(timeout=10)
        relay_server.forget_sessions()
        await relay_server.drop_connection()
        with pytest.raises(ConnectionLost):
            await bridge.wait_disconnected(timeout=10)
        with pytest.raises(ConnectionLost):
            await peer.wait_for_ended(timeout=10)
        assert bridge.is_over and call.peer is None
        assert await bridge.wait_connected() is peer


async def test_odd_connect_events_neither_move_a_bridge_back_nor_end_it(
    relay_server: FakeRelayServer,
) -> None:
    async def connect(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        ids = {"call_id": ctx.call.call_id, "node_id": ctx.call.node_id}
        for extra in (
            {"connect_state": "connected", "peer": "nobody"},  # no usable peer
            {"connect_state": "connecting"},  # late: a bridge never goes back
            {"connect_state": "failed", "tag": "another-bridge"},  # not this one's
        ):
            ctx.emit("calling.call.connect", {**ids, "tag": "mine", **extra})
        return ok("Connecting")

    relay_server.set_handler("calling.connect", connect)
    seen: list[RelayEvent] = []
    async with inbound_call(relay_server) as (call, _):
        call.on(EVENT_CALL_CONNECT, seen.append)
        bridge = await call.bridge([[AGENT]], tag="mine")
        with pytest.raises(RelayError, match="has no peer"):
            await bridge.wait_connected(timeout=10)
        await eventually(lambda: len(seen) == 3)
        assert bridge.state == "connected" and not bridge.is_over
        assert bridge.peer is None and call.peer is None


@pytest.mark.parametrize("peer_events", [False, True])
async def test_a_handler_that_bridged_and_returned_keeps_nothing_alive(
    relay_server: FakeRelayServer, peer_events: bool
) -> None:
    """The bridge and its peer do not outlive the call: gone once it ends."""
    relay_server.bridge_peer_events = peer_events
    refs: list[weakref.ref[Any]] = []
    client = make_client(relay_server)

    @client.on_call
    async def sales(call: Call) -> None:
        await call.answer()
        bridge = await call.bridge([[AGENT]])
        peer = await bridge.wait_connected(timeout=10)
        refs.extend([weakref.ref(call), weakref.ref(bridge), weakref.ref(peer)])

    async with client:
        fake = await relay_server.offer_call()
        await eventually(lambda: len(refs) == 3 and not client._router.handled)
        assert client.active_calls == 2  # the call and its peer, bridged
        await fake.remote_hangup()
        await eventually(lambda: client.active_calls == 0)

        def none_alive() -> bool:
            gc.collect()
            return all(ref() is None for ref in refs)

        await eventually(none_alive, interval=0.05)
    assert fake.peer is None and sent(fake) == ["calling.answer", "calling.connect"]


# -- examples/bridge_with_peer.py ------------------------------------------------------------


def connected_peer_id(server: FakeRelayServer) -> str:
    [connected] = [
        frame["params"]["params"]
        for frame in server.sent_events("calling.call.connect")
        if frame["params"]["params"]["connect_state"] == "connected"
    ]
    peer_id: str = connected["peer"]["call_id"]
    return peer_id


async def test_example_the_agent_answers_then_leaves(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def agent_leaves(fake: FakeCall) -> None:
        await eventually(lambda: fake.peer is not None)
        assert fake.peer is not None
        await fake.peer.remote_hangup()

    fake = await run_snippet(relay_server, "bridge_with_peer", agent_leaves)
    assert sent(fake) == ["calling.answer", "calling.connect", "calling.play", "calling.end"]
    assert params(fake.requests[1])["ringback"] == [{"type": "ringtone", "params": {"name": "us"}}]
    assert "has left the call" in params(fake.requests[2])["play"][0]["params"]["text"]
    assert capsys.readouterr().out.splitlines() == [
        f"call {fake.call_id}: bridged to agent leg {connected_peer_id(relay_server)}",
        f"call {fake.call_id}: bridge disconnected",
    ]


async def test_example_the_caller_hangs_up_while_bridged(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def caller_leaves(fake: FakeCall) -> None:
        await eventually(lambda: fake.peer is not None)
        await fake.remote_hangup()

    fake = await run_snippet(relay_server, "bridge_with_peer", caller_leaves)
    assert sent(fake) == ["calling.answer", "calling.connect"]  # nothing after: gone
    assert capsys.readouterr().out.splitlines() == [
        f"call {fake.call_id}: bridged to agent leg {connected_peer_id(relay_server)}",
        f"call {fake.call_id}: bridge disconnected",
    ]


async def test_example_nobody_answers(
    relay_server: FakeRelayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def busy(fake: FakeCall) -> None:
        fake.script_bridge("busy")

    fake = await run_snippet(relay_server, "bridge_with_peer", busy)
    assert sent(fake) == ["calling.answer", "calling.connect", "calling.play", "calling.end"]
    assert "nobody can take your call" in params(fake.requests[2])["play"][0]["params"]["text"]
    out = capsys.readouterr().out
    assert out.startswith(f"call {fake.call_id}: no agent (") and "failed" in out
