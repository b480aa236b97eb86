"""The fake server's bridges on the wire, under each of its bridge switches.

Driven by a hand-written client frame by frame, like ``test_fake_server.py``: these
pin what a client under test sees (``tests/test_bridge.py`` is the SDK's side).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio.testing import FakeCall, FakeRelayServer

from .test_fake_server import RawClient, answered_call
from .test_fake_server import relay_server as relay_server
from .test_fake_server_switches import no_more_frames

pytestmark = pytest.mark.anyio

JSONObject = dict[str, Any]
AGENT = {"type": "phone", "params": {"to_number": "+15551001000", "from_number": "+15550000000"}}


async def connect(client: RawClient, ids: JSONObject, **extra: Any) -> JSONObject:
    response = await client.call("calling.connect", {**ids, "devices": [[AGENT]], **extra})
    result: JSONObject = response["result"]
    return result


def the_call(server: FakeRelayServer, ids: JSONObject) -> FakeCall:
    return server.calls[ids["call_id"]]


@pytest.mark.parametrize("peer_events", [False, True])
async def test_a_bridge_connects_its_peer_leg(
    relay_server: FakeRelayServer, peer_events: bool
) -> None:
    relay_server.bridge_peer_events = peer_events
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            assert (await connect(client, ids, tag="t1"))["code"] == "200"
            assert await client.event("calling.call.connect") == {
                **ids,
                "tag": "t1",
                "connect_state": "connecting",
            }
            call = the_call(relay_server, ids)
            peer = call.peer
            assert peer is not None and peer.peer is call and peer.bridge_leg
            if peer_events:  # the leg's own states, before "connected"
                for state in ("created", "answered"):
                    event = await client.event("calling.call.state")
                    assert (event["call_id"], event["call_state"]) == (peer.call_id, state)
                    assert event["tag"] == "t1" and event["direction"] == "outbound"
            connected = await client.event("calling.call.connect")
            assert connected["connect_state"] == "connected"
            assert connected["peer"] == {
                "call_id": peer.call_id,
                "node_id": peer.node_id,
                "tag": "t1",
                "device": AGENT,
            }
            await no_more_frames(client)
            assert peer.states == ["created", "answered"]

            # The far end hangs up: the call stays, its bridge ends.
            await peer.remote_hangup()
            if peer_events:
                assert (await client.event("calling.call.state"))["call_state"] == "ending"
            disconnected = await client.event("calling.call.connect")
            assert disconnected["connect_state"] == "disconnected"
            assert disconnected["peer"]["call_id"] == peer.call_id
            if peer_events:
                ended = await client.event("calling.call.state")
                assert (ended["call_id"], ended["call_state"]) == (peer.call_id, "ended")
            await no_more_frames(client)
            assert call.state == "answered" and call.peer is None and peer.peer is None


@pytest.mark.parametrize("peer_events", [False, True])
async def test_the_call_s_end_takes_its_peer_leg_down_first(
    relay_server: FakeRelayServer, peer_events: bool
) -> None:
    relay_server.bridge_peer_events = peer_events
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            await connect(client, ids)
            seen: list[tuple[str, str]] = []
            for _ in range(4 if peer_events else 2):
                frame = await client.recv()
                await client.ack(frame)
            call = the_call(relay_server, ids)
            peer = call.peer
            assert peer is not None
            await call.remote_hangup()
            while len(seen) < (5 if peer_events else 3):
                inner = await client.event()
                key = "connect_state" if "connect_state" in inner else "call_state"
                who = "peer" if inner["call_id"] == peer.call_id else "call"
                seen.append((who, inner[key]))
            await no_more_frames(client)
    expected = [("call", "ending"), ("call", "disconnected"), ("call", "ended")]
    if peer_events:
        expected[1:1] = [("peer", "ending"), ("peer", "ended")]
    assert seen == expected
    assert peer.state == "ended"


@pytest.mark.parametrize("with_reason", [False, True])
@pytest.mark.parametrize("outcome", ["failed", "busy", "no_answer", "decline"])
async def test_a_scripted_failure(
    relay_server: FakeRelayServer, outcome: str, with_reason: bool
) -> None:
    relay_server.bridge_failure_reason = with_reason
    reasons = {"failed": "error", "busy": "busy", "no_answer": "noAnswer", "decline": "decline"}
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            the_call(relay_server, ids).script_bridge(outcome)
            await connect(client, ids)
            assert (await client.event("calling.call.connect"))["connect_state"] == "connecting"
            failed = await client.event("calling.call.connect")
            expected = {**ids, "tag": "", "connect_state": "failed"}
            assert failed == ({**expected, "reason": reasons[outcome]} if with_reason else expected)
            await no_more_frames(client)
            assert the_call(relay_server, ids).peer is None


@pytest.mark.parametrize("how", ["disconnect", "hangup"])
@pytest.mark.parametrize("unconnected_end", ["failed", "disconnected", "silent"])
async def test_a_bridge_called_off_while_connecting(
    relay_server: FakeRelayServer, unconnected_end: str, how: str
) -> None:
    relay_server.bridge_unconnected_end = unconnected_end  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            call = the_call(relay_server, ids)
            call.script_bridge(delay=3600)
            await connect(client, ids, tag="t2")
            assert (await client.event("calling.call.connect"))["connect_state"] == "connecting"
            assert call.connecting is not None
            if how == "disconnect":
                assert (await client.call("calling.disconnect", ids))["result"]["code"] == "200"
            else:
                await call.remote_hangup()
                assert (await client.event("calling.call.state"))["call_state"] == "ending"
            if unconnected_end != "silent":
                ended = await client.event("calling.call.connect")
                assert ended == {**ids, "tag": "t2", "connect_state": unconnected_end}
            if how == "hangup":
                assert (await client.event("calling.call.state"))["call_state"] == "ended"
            await no_more_frames(client)
            assert call.connecting is None and call.peer is None


async def test_disconnect_unbridges_and_both_legs_live_on(relay_server: FakeRelayServer) -> None:
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            await connect(client, ids)
            await client.event("calling.call.connect")
            await client.event("calling.call.connect")
            call = the_call(relay_server, ids)
            peer = call.peer
            assert peer is not None
            # A second bridge while bridged is refused.
            assert (await connect(client, ids))["code"] == "409"
            assert (await client.call("calling.disconnect", ids))["result"]["code"] == "200"
            assert (await client.event("calling.call.connect"))["connect_state"] == "disconnected"
            await no_more_frames(client)
            assert (call.state, peer.state) == ("answered", "answered")


def test_script_bridge_and_the_switch_refuse_unknown_values() -> None:
    server = FakeRelayServer()
    call = FakeCall.register(server, None, direction="inbound", device={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown bridge outcome 'maybe'"):
        call.script_bridge("maybe")
    call.script_connect("failed")  # the first name still works
    assert call.next_bridge_script().outcome == "failed"
    assert call.next_bridge_script().outcome == "connected"  # unscripted


async def test_a_misspelt_unconnected_end_fails_where_it_is_used(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.bridge_unconnected_end = "quiet"  # type: ignore[assignment]
    with anyio.fail_after(5):
        async with answered_call(relay_server) as (client, ids):
            call = the_call(relay_server, ids)
            call.script_bridge(delay=3600)
            await connect(client, ids)
            await client.event("calling.call.connect")
            with pytest.raises(ValueError, match="bridge_unconnected_end must be one of"):
                await call.remote_hangup()
