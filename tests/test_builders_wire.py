"""Builders, call info and the drop-in gaps against the fake server: the exact frames.

Every builder-made payload is compared, frame for frame (the fake server's journal),
with the dict a user would write by hand after the reference (§10-11); the call info
is read from what the server sent for inbound calls and dialled legs; refused input
sends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_CONNECT,
    EVENT_CALL_STATE,
    Call,
    CollectAction,
    ConnectEvent,
    Device,
    Media,
    RelayEvent,
    SipHeader,
)
from relay_anyio.testing import (
    FakeCall,
    FakeRelayServer,
    HandlerContext,
    messaging_send,
    ok,
    script_message,
)

from .helpers import make_client
from .test_call_basics import inbound_call

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
AGENT = "+15559876543"
ME = "+15551234567"


def params(frame: JSON) -> JSON:
    """A request's params without the call's ids."""
    return {k: v for k, v in frame["params"].items() if k not in ("node_id", "call_id")}


# -- dialling ------------------------------------------------------------------------------


async def test_dial_phone_sends_what_the_guide_writes_by_hand(
    relay_server: FakeRelayServer,
) -> None:
    async with make_client(relay_server) as client:
        by_hand = await client.dial(
            [[{"type": "phone", "params": {"to_number": AGENT, "from_number": ME, "timeout": 30}}]],
            tag="by-hand",
        )
        built = await client.dial_phone(AGENT, ME, ring_timeout=30, tag="built", timeout=45)
        for call in (by_hand, built):
            await call.hangup()
    first, second = relay_server.received("calling.dial")
    assert first["params"] == {**second["params"], "tag": "by-hand"}
    assert second["params"] == {
        "tag": "built",
        "devices": [
            [{"type": "phone", "params": {"to_number": AGENT, "from_number": ME, "timeout": 30}}]
        ],
    }
    # The leg's device came back in its state events: it is from our number, to theirs.
    assert (built.from_, built.to, built.headers) == (ME, AGENT, ())
    assert built.device_info == Device("phone", built.device["params"])


async def test_dial_sip_sends_headers_and_codecs(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server) as client:
        call = await client.dial_sip(
            "sip:bob@example.com",
            "sip:alice@example.sip.signalwire.com",
            from_name="Alice",
            headers={"X-Account": "42", "X-Campaign": "spring"},
            codecs=["PCMU", "OPUS"],
            ring_timeout=25,
            max_duration=600,
            region="us",
        )
        await call.hangup()
    [dial] = relay_server.received("calling.dial")
    assert params(dial) == {
        "tag": dial["params"]["tag"],
        "devices": [
            [
                {
                    "type": "sip",
                    "params": {
                        "to": "sip:bob@example.com",
                        "from": "sip:alice@example.sip.signalwire.com",
                        "from_name": "Alice",
                        "headers": [
                            {"name": "X-Account", "value": "42"},
                            {"name": "X-Campaign", "value": "spring"},
                        ],
                        "codecs": ["PCMU", "OPUS"],
                        "timeout": 25,
                    },
                }
            ]
        ],
        "max_duration": 600,
        "region": "us",
    }
    assert call.from_ == "sip:alice@example.sip.signalwire.com"
    assert call.to == "sip:bob@example.com"
    assert call.headers == (SipHeader("X-Account", "42"), SipHeader("X-Campaign", "spring"))


async def test_bad_dial_input_sends_nothing(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server) as client:
        with pytest.raises(TypeError, match="codecs must be a list"):
            await client.dial_sip("sip:bob@example.com", "sip:me@example.com", codecs="PCMU")
        with pytest.raises(ValueError, match="to must not be empty"):
            await client.dial_phone("", ME)
        with pytest.raises(TypeError, match="value must be a string"):
            await client.dial_sip("sip:b@x", "sip:a@x", headers={"X-Count": 3})  # type: ignore[arg-type]
    assert relay_server.received("calling.dial") == []


# -- bridging ------------------------------------------------------------------------------


async def test_bridge_phone_and_bridge_sip_send_connect_frames(
    relay_server: FakeRelayServer,
) -> None:
    async with inbound_call(relay_server) as (call, fake):
        await call.answer()
        await call.bridge_phone(AGENT, ME, ring_timeout=20, ringback=[Media.ringtone("us")])
        await call.disconnect()
        await call.bridge_sip(
            "sip:agent@pbx.example.com",
            headers=[SipHeader("X-Queue", "support")],
            tag="agent-bridge-1",
            max_duration=60,
            max_price_per_minute=1.5,
            status_url="https://example.com/status",
        )
        await call.disconnect()
        await call.hangup()
        await fake.wait_for_state("ended")
    phone, sip = relay_server.received("calling.connect")
    assert params(phone) == {
        "devices": [
            [{"type": "phone", "params": {"to_number": AGENT, "from_number": ME, "timeout": 20}}]
        ],
        "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
    }
    assert params(sip) == {
        "devices": [
            [
                {
                    "type": "sip",
                    "params": {
                        "to": "sip:agent@pbx.example.com",
                        "headers": [{"name": "X-Queue", "value": "support"}],
                    },
                }
            ]
        ],
        "tag": "agent-bridge-1",
        "max_duration": 60,
        "max_price_per_minute": 1.5,
        "status_url": "https://example.com/status",
    }
    # The same as the hand-written connect of the guide's snippet.
    assert params(phone)["devices"][0][0] == Device.phone(AGENT, ME, timeout=20)


async def test_bad_bridge_input_sends_nothing(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _fake):
        with pytest.raises(ValueError, match="timeout must be > 0"):
            await call.bridge_phone(AGENT, ring_timeout=0)
        with pytest.raises(TypeError, match="to must be a string"):
            await call.bridge_sip(None)  # type: ignore[arg-type]
    assert relay_server.received("calling.connect") == []


# -- media ---------------------------------------------------------------------------------


async def test_media_builders_play_the_wire_shapes(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _fake):
        play = await call.play(
            [
                Media.tts("Welcome to Acme.", voice="Polly.Joanna"),
                {"type": "tts", "text": "Flat, as in the guide."},
                Media.silence(1),
                Media.audio("https://example.com/hold.mp3"),
                Media.ringtone("us", duration=3),
            ]
        )
        await play.wait()
    [frame] = relay_server.received("calling.play")
    assert params(frame) == {
        "control_id": play.control_id,
        "play": [
            {"type": "tts", "params": {"text": "Welcome to Acme.", "voice": "Polly.Joanna"}},
            {"type": "tts", "params": {"text": "Flat, as in the guide."}},
            {"type": "silence", "params": {"duration": 1}},
            {"type": "audio", "params": {"url": "https://example.com/hold.mp3"}},
            {"type": "ringtone", "params": {"name": "us", "duration": 3}},
        ],
    }


# -- call info -----------------------------------------------------------------------------


async def test_an_inbound_phone_call_says_who_is_calling(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        offered = fake.device["params"]
        assert call.from_ == offered["from_number"] == "+15551110000"
        assert call.to == offered["to_number"] == "+15552220000"
        assert call.headers == ()
        assert call.device_info.type == "phone"
        assert call.device_info is call.device_info  # structured once


# -- the drop-in gaps ----------------------------------------------------------------------


async def test_collect_pause_and_resume_refuse_without_sending(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.collect_delay = 60  # the collect stays open
    async with inbound_call(relay_server) as (call, _fake):
        collect = await call.play_and_collect(
            [Media.tts("Enter your PIN.")], {"digits": {"max": 4}}
        )
        assert isinstance(collect, CollectAction)
        with pytest.raises(NotImplementedError, match=r"calling\.play_and_collect\.pause"):
            await collect.pause()
        with pytest.raises(NotImplementedError, match=r"calling\.play_and_collect\.resume"):
            await collect.resume()
        assert not collect.is_done  # nothing happened to it
        await collect.stop()
        await collect.wait()
    sent = [frame["method"] for frame in relay_server.received() if "collect" in frame["method"]]
    assert sent == ["calling.play_and_collect", "calling.play_and_collect.stop"]


async def test_call_on_takes_handler_as_signalwire_spells_it(
    relay_server: FakeRelayServer,
) -> None:
    by_keyword: list[str] = []
    positional: list[str] = []

    def on_state(event: RelayEvent) -> None:
        by_keyword.append(event.params["call_state"])

    async with inbound_call(relay_server) as (call, fake):
        call.on(EVENT_CALL_STATE, handler=on_state)
        call.on(EVENT_CALL_STATE, lambda event: positional.append(event.params["call_state"]))
        call.on(EVENT_CALL_STATE, listener=lambda event: None)
        with pytest.raises(TypeError, match="not both"):
            call.on(EVENT_CALL_STATE, on_state, handler=on_state)
        with pytest.raises(TypeError, match="needs a listener"):
            call.on(EVENT_CALL_STATE)
        with pytest.raises(TypeError, match="must be callable"):
            call.on(EVENT_CALL_STATE, handler="on_state")  # type: ignore[arg-type]
        await call.answer()
        await call.hangup()
        await call.wait_for_ended()
        assert fake.states[-1] == "ended"
    assert by_keyword == positional == ["answered", "ending", "ended"]


async def test_message_on_takes_handler_as_signalwire_spells_it(
    relay_server: FakeRelayServer,
) -> None:
    script_message(relay_server, "delivered")
    listening = anyio.Event()

    async def send_once_listened(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.then(listening.wait)  # the states follow once the test listens
        return await messaging_send(ctx, params)

    relay_server.set_handler("messaging.send", send_once_listened)
    seen: list[str] = []
    async with make_client(relay_server) as client:
        message = await client.send_message(to_number=AGENT, from_number=ME, body="hi")
        message.on(handler=lambda event: seen.append(event.params["message_state"]))
        with pytest.raises(TypeError, match="not both"):
            message.on(print, handler=print)
        listening.set()
        await message.wait(timeout=10)
    assert seen == ["initiated", "sent", "delivered"]


# -- SIP call info (reference §17.3) ---------------------------------------------------------

HEADERS = {"X-Account": "42", "X-Priority": "high"}
SHAPES = ["list", "object", "omitted"]


@asynccontextmanager
async def sip_call(server: FakeRelayServer, **offer: Any) -> AsyncIterator[tuple[Call, FakeCall]]:
    """Offer one inbound SIP call; the handler holds it open while the body runs."""
    calls: list[Call] = []
    offered, release = anyio.Event(), anyio.Event()
    relay = make_client(server)

    @relay.on_call
    async def hold_open(call: Call) -> None:
        calls.append(call)
        offered.set()
        await release.wait()

    async with relay:
        fake = await server.offer_sip_call(**offer)
        with anyio.fail_after(10):  # a failure detector only
            await offered.wait()
        try:
            yield calls[0], fake
        finally:
            release.set()


@pytest.mark.parametrize("shape", SHAPES)
async def test_an_inbound_sip_call_says_who_and_which_headers(
    relay_server: FakeRelayServer, shape: str
) -> None:
    relay_server.sip_header_shape = shape  # type: ignore[assignment]
    async with sip_call(
        relay_server,
        from_uri="sip:alice@example.com",
        to_uri="sip:support@acme.example",
        headers=HEADERS,
    ) as (call, fake):
        assert fake.device["type"] == "sip"
        assert (call.from_, call.to) == ("sip:alice@example.com", "sip:support@acme.example")
        if shape == "omitted":
            assert call.headers == ()
            assert call.device_info.header("X-Account") is None
        else:
            assert call.headers == (SipHeader("X-Account", "42"), SipHeader("X-Priority", "high"))
            assert call.device_info.header("x-account") == "42"
        assert call.device_info.type == "sip"
        assert call.device == fake.device  # the guide's dict is the wire's, untouched
    [receive] = relay_server.sent_events("calling.call.receive")
    sent_headers = receive["params"]["params"]["device"]["params"].get("headers")
    assert (
        sent_headers
        == {
            "list": [{"name": "X-Account", "value": "42"}, {"name": "X-Priority", "value": "high"}],
            "object": HEADERS,
            "omitted": None,
        }[shape]
    )


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_dialled_sip_leg_reads_its_headers_in_any_shape(
    relay_server: FakeRelayServer, shape: str
) -> None:
    relay_server.sip_header_shape = shape  # type: ignore[assignment]
    async with make_client(relay_server) as client:
        call = await client.dial_sip("sip:bob@example.com", "sip:me@example.com", headers=HEADERS)
        await call.hangup()
    assert (call.from_, call.to) == ("sip:me@example.com", "sip:bob@example.com")
    expected = () if shape == "omitted" else tuple(SipHeader(*item) for item in HEADERS.items())
    assert call.headers == expected
    [dial] = relay_server.received("calling.dial")  # the request always has the list form
    assert dial["params"]["devices"][0][0]["params"]["headers"] == [
        {"name": "X-Account", "value": "42"},
        {"name": "X-Priority", "value": "high"},
    ]


async def test_a_leg_announced_without_a_device_takes_the_dial_answers(
    relay_server: FakeRelayServer,
) -> None:
    # A server whose leg state events carry no device (their fields are unconfirmed,
    # §12.2): the answered dial's ``call.device`` still says who the leg is.
    async def dial_without_devices(ctx: HandlerContext, params: JSON) -> JSON:
        device, tag = params["devices"][0][0], params["tag"]
        leg = FakeCall.register(ctx.server, ctx.session, direction="outbound", device={}, tag=tag)
        ids = {"call_id": leg.call_id, "node_id": leg.node_id, "tag": tag}
        for state in ("created", "answered"):
            leg.state = state
            ctx.emit(EVENT_CALL_STATE, {**ids, "call_state": state, "direction": "outbound"})
        winner = {**ids, "device": device, "dial_winner": True}
        ctx.emit(
            "calling.call.dial",
            {"node_id": leg.node_id, "tag": tag, "dial_state": "answered", "call": winner},
        )
        return ok("Dialing")

    relay_server.set_handler("calling.dial", dial_without_devices)
    async with make_client(relay_server) as client:
        call = await client.dial_phone(AGENT, ME)
        assert (call.from_, call.to) == (ME, AGENT)
        assert call.device == Device.phone(AGENT, ME)
        await call.hangup()


async def test_a_bridge_peer_shows_its_sip_device(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _fake):
        connected = anyio.Event()
        peers: list[ConnectEvent] = []

        def on_connect(event: RelayEvent) -> None:
            if isinstance(event, ConnectEvent) and event.connect_state == "connected":
                peers.append(event)
                connected.set()

        call.on(EVENT_CALL_CONNECT, handler=on_connect)
        await call.bridge_sip("sip:agent@pbx.example.com", "sip:ivr@acme.example", headers=HEADERS)
        with anyio.fail_after(10):
            await connected.wait()
        await call.disconnect()
    [event] = peers
    assert event.peer_info is not None and event.peer_info.device is not None
    device = event.peer_info.device
    assert (device.to, device.from_) == ("sip:agent@pbx.example.com", "sip:ivr@acme.example")
    assert device.header("X-Priority") == "high"
