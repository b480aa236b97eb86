"""Builders, call info and the drop-in gaps against the fake server: the exact frames.

Every builder-made payload is compared, frame for frame (the fake server's journal),
with the dict a user would write by hand after the reference (§10-11); the call info
is read from what the server sent for inbound calls and dialled legs; refused input
sends nothing.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_STATE,
    CollectAction,
    Device,
    Media,
    RelayEvent,
    SipHeader,
)
from relay_anyio.testing import FakeRelayServer, HandlerContext, messaging_send, script_message

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
