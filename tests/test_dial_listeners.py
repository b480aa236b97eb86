"""``client.dial(..., listeners=...)``: a leg's listeners are there before its first event.

Whether RELAY sends a leg's ``created``/``ringing`` before or after its answer to
``calling.dial`` is not pinned down (it knows the legs before it answers; the
reference only says the client must register the pending dial first). The fake's
``script_dial(early_states=True)`` makes them overtake the response; the client must
see them either way.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import EVENT_CALL_STATE, Device, RelayEvent
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client
from .test_fake_server import phone, raw_client

pytestmark = pytest.mark.anyio

TO, FROM = "+15559876543", "+15551234567"


async def test_the_fake_can_announce_legs_before_the_dial_response(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.script_dial(["answer"], early_states=True)
    with anyio.fail_after(5):
        async with raw_client(relay_server) as client:
            await client.authenticate()
            request_id = await client.request(
                "calling.dial", {"tag": "T1", "devices": [[phone("+1A")]]}
            )
            frames = []
            while True:
                frame = await client.recv()
                frames.append(frame)
                if frame.get("method") == "signalwire.event":
                    await client.ack(frame)
                    if frame["params"]["event_type"] == "calling.call.dial":
                        break
    shapes = [
        "response"
        if f.get("id") == request_id and "result" in f
        else f["params"]["params"].get("call_state") or f["params"]["event_type"]
        for f in frames
    ]
    assert shapes == ["created", "ringing", "response", "answered", "calling.call.dial"]


@pytest.mark.parametrize("early_states", [False, True], ids=["after-response", "before-response"])
async def test_dial_listeners_see_every_state_of_the_leg(
    relay_server: FakeRelayServer, early_states: bool
) -> None:
    relay_server.script_dial(["answer"], early_states=early_states)
    states: list[str] = []
    late: list[str] = []
    client = make_client(relay_server)
    async with client:
        call = await client.dial_phone(
            TO, FROM, listeners={EVENT_CALL_STATE: lambda e: states.append(e.params["call_state"])}
        )
        call.on(EVENT_CALL_STATE, lambda e: late.append(e.params["call_state"]))
        await call.hangup()
        await call.wait_for_ended(timeout=10)
    assert states == ["created", "ringing", "answered", "ending", "ended"]
    assert late == ["ending", "ended"]  # what a listener added to the returned call gets


async def test_every_leg_of_a_parallel_dial_gets_the_listeners(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.script_dial(["busy", "answer"], early_states=True)
    seen: dict[str, list[str]] = {}

    async def record(event: RelayEvent) -> None:  # async: on each leg's listener task
        seen.setdefault(event.params["call_id"], []).append(event.params["call_state"])

    client = make_client(relay_server)
    async with client:
        call = await client.dial(
            [[Device.phone("+1A", FROM), Device.phone("+1B", FROM)]],
            listeners={EVENT_CALL_STATE: record},
        )
        await call.hangup()
        await call.wait_for_ended(timeout=10)
        await eventually(lambda: len(seen.get(call.call_id, ())) == 5)
    [loser] = [call_id for call_id in seen if call_id != call.call_id]
    assert seen[loser] == ["created", "ringing", "ended"]
    assert seen[call.call_id] == ["created", "ringing", "answered", "ending", "ended"]


@pytest.mark.parametrize(
    "listeners",
    [{EVENT_CALL_STATE: 42}, {3: print}, {"": print}],
    ids=["not-callable", "not-a-type", "empty-type"],
)
async def test_bad_dial_listeners_are_refused_before_anything_is_sent(
    relay_server: FakeRelayServer, listeners: Any
) -> None:
    client = make_client(relay_server)
    async with client:
        with pytest.raises(TypeError):
            await client.dial([[Device.phone(TO, FROM)]], listeners=listeners)
    assert relay_server.received("calling.dial") == []
