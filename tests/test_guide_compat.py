"""Code written exactly as the guide writes it keeps working.

The guide's lookups do not match the wire: it reads digits at
``result.params["result"]["digits"]`` (the wire has ``result.params.digits``), the
recording URL at ``result.params["record"]["url"]`` (the wire usually has it at the
top level), writes media items flat (``{"type": "tts", "text": ...}``), and says
``call.context`` is the context the call arrived on. With the official client those
lookups come back empty; here each test uses them verbatim.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from relay_anyio import EVENT_CALL_RECEIVE, EVENT_CALL_RECORD, Call
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client
from .test_call_basics import inbound_call

pytestmark = pytest.mark.anyio


async def test_collected_digits_as_the_guide_reads_them(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_digits("1234", terminator="#")
        fake.script_digits("7")
        # Standalone collect, as in relay_inbound.py
        collect = await call.collect(digits={"max": 4, "digit_timeout": 5.0}, initial_timeout=10.0)
        result = await collect.wait()
        digit = result.params.get("result", {}).get("digits", "")
        # play_and_collect, as in relay_ivr.py
        prompt = await call.play_and_collect(
            media=[{"type": "tts", "text": "Press 7."}],
            collect={"digits": {"max": 1, "digit_timeout": 5.0}},
        )
        result = await prompt.wait()
        digit2 = result.params.get("result", {}).get("digits", "")
    assert (digit, digit2) == ("1234", "7")
    # The wire shape is still there for code written against it.
    assert result.params["result"]["params"]["digits"] == "7"
    assert result.raw_params["result"] == {
        "type": "digit",
        "params": {"digits": "7", "terminator": "#"},
    }


async def test_speech_as_the_guide_would_read_it(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_speech("sales", confidence=0.8)
        collect = await call.collect(
            digits={"max": 4, "digit_timeout": 5.0},
            speech={"end_silence_timeout": 2.0},
        )
        result = await collect.wait()
    assert result.params.get("result", {}).get("text", "") == "sales"
    assert result.params.get("result", {}).get("type") == "speech"


async def test_recording_url_as_the_guide_reads_it(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        action = await call.record(audio={"direction": "both", "format": "mp3"})
        await action.pause()
        await action.resume()
        await action.stop()
        result = await action.wait()
        url = result.params.get("record", {}).get("url", "")
    assert url == f"https://fake-relay.invalid/recordings/{action.control_id}.mp3"


@pytest.mark.parametrize("where", ["top level", "inside record"])
async def test_recording_url_wherever_the_server_puts_it(
    relay_server: FakeRelayServer, where: str
) -> None:
    relay_server.play_duration = 60
    url = "https://files.example.com/rec-1.wav"
    facts = {"url": url, "duration": 15.5, "size": 128000}
    async with inbound_call(relay_server) as (call, fake):
        action = await call.record(audio={"format": "wav"})
        event: dict[str, Any] = {
            "call_id": fake.call_id,
            "node_id": fake.node_id,
            "control_id": action.control_id,
            "state": "finished",
        }
        if where == "top level":
            event |= facts
        else:
            event["record"] = {"audio": {"format": "wav"}, **facts}
        await fake.send_event(EVENT_CALL_RECORD, event)
        result = await action.wait(timeout=2)
    assert result.params.get("record", {}).get("url", "") == url
    assert result.params.get("record", {}).get("duration") == 15.5
    assert result.params.get("record", {}).get("size") == 128000


async def test_flat_media_items_everywhere_the_guide_uses_them(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    async with inbound_call(relay_server) as (call, _):
        await call.play([{"type": "tts", "text": "Hello!"}])
        await call.play([{"type": "audio", "url": "https://example.com/audio.mp3"}])
        await call.play_and_collect(
            media=[
                {"type": "tts", "text": "Please leave your message after the beep."},
                {"type": "audio", "url": "https://example.com/beep.wav"},
            ],
            collect={"digits": {"max": 1}},
        )
        await call.connect(
            devices=[
                [
                    {
                        "type": "phone",
                        "params": {"to_number": "+15559876543", "from_number": "+15551234567"},
                    }
                ]
            ],
            ringback=[{"type": "ringtone", "name": "us"}],
        )
    tts, audio = (f["params"]["play"] for f in relay_server.received("calling.play"))
    assert tts == [{"type": "tts", "params": {"text": "Hello!"}}]
    assert audio == [{"type": "audio", "params": {"url": "https://example.com/audio.mp3"}}]
    [prompt] = relay_server.received("calling.play_and_collect")
    assert prompt["params"]["play"] == [
        {"type": "tts", "params": {"text": "Please leave your message after the beep."}},
        {"type": "audio", "params": {"url": "https://example.com/beep.wav"}},
    ]
    [connect] = relay_server.received("calling.connect")
    assert connect["params"]["ringback"] == [{"type": "ringtone", "params": {"name": "us"}}]


async def test_malformed_media_is_refused_before_sending(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        with pytest.raises(ValueError, match="type"):
            await call.play([{"text": "no type"}])
        with pytest.raises(ValueError, match="params"):
            await call.play([{"type": "tts", "params": "Hello"}])
    assert relay_server.received("calling.play") == []


async def test_call_context_is_the_context_the_call_arrived_on(
    relay_server: FakeRelayServer,
) -> None:
    seen: dict[str, tuple[str, ...]] = {}
    done = anyio.Event()
    client = make_client(relay_server, contexts=["sales", "support"])

    @client.on_call
    async def handle_call(call: Call) -> None:
        seen[call.call_id] = (
            call.context,
            call.direction,
            call.state,
            call.tag,
            call.device["params"]["from_number"],
        )
        if len(seen) == 3:
            done.set()

    async with client:
        sales = await relay_server.offer_call("sales", from_number="+15550000001")
        support = await relay_server.offer_call("support", from_number="+15550000002")
        # Some servers name the context "protocol" in the offer.
        session = await relay_server.wait_for_session()
        legacy: dict[str, Any] = {
            "call_id": "legacy-1",
            "node_id": relay_server.node_id,
            "protocol": "support",
            "call_state": "created",
            "direction": "inbound",
            "device": {
                "type": "phone",
                "params": {"from_number": "+15550000003", "to_number": "+15552220000"},
            },
        }
        await session.emit(EVENT_CALL_RECEIVE, legacy)
        with anyio.fail_after(3):
            await done.wait()
    assert seen == {
        sales.call_id: ("sales", "inbound", "created", "", "+15550000001"),
        support.call_id: ("support", "inbound", "created", "", "+15550000002"),
        "legacy-1": ("support", "inbound", "created", "", "+15550000003"),
    }
    assert client.relay_protocol.startswith("signalwire_")  # not what call.context holds


async def test_detection_result_as_the_guide_reads_it(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_detect("MACHINE")
        detect = await call.detect(
            detect={"type": "machine", "params": {"initial_timeout": 4.5}},
            timeout=30.0,
        )
        result = await detect.wait()
        machine_result = result.params.get("detect", {})
    assert machine_result == {"type": "machine", "params": {"event": "MACHINE"}}


async def test_action_pattern_and_on_completed_as_the_guide_writes_them(
    relay_server: FakeRelayServer,
) -> None:
    done: list[str] = []

    async def on_play_done(event: Any) -> None:
        done.append(event.params.get("state"))

    async with inbound_call(relay_server) as (call, _):
        action = await call.play([{"type": "tts", "text": "Hello"}])
        result = await action.wait(timeout=30.0)
        await call.play([{"type": "tts", "text": "Processing..."}], on_completed=on_play_done)
        await eventually(lambda: done)
    assert result.params.get("state") == "finished"
    assert action.control_id and action.completed and action.is_done
    assert done == ["finished"]


async def test_gone_call_errors_return_empty_dicts(relay_server: FakeRelayServer) -> None:
    """The guide: "server errors from call methods return empty dicts" (404/410 here)."""
    async with inbound_call(relay_server) as (call, fake):
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=2)
        assert await call.answer() == {}
        assert await call.hold() == {}
        assert await call.connect([[{"type": "phone", "params": {"to_number": "+1555"}}]]) == {}
        play = await call.play([{"type": "tts", "text": "too late"}])
    assert play.is_done and play.result is not None
    assert relay_server.received("calling.play") == []  # an ended call: nothing sent
    assert [
        r["result"]["code"] for r in _responses(relay_server, ("calling.answer", "calling.hold"))
    ] == ["410", "410"]


def _responses(server: FakeRelayServer, methods: tuple[str, ...]) -> list[dict[str, Any]]:
    ids = {f["id"] for f in server.received() if f["method"] in methods}
    return [
        e.frame
        for e in server.journal
        if e.direction == "out" and isinstance(e.frame, dict) and e.frame.get("id") in ids
    ]
