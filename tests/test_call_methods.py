"""Every Call method: the exact frame it sends, what it returns, and what follows.

The frame tables run every method of the issue against the fake server and compare
the whole ``params`` object (not a subset) with the reference (§10-11) and the
official client's signatures. The behaviour tests then check that each action ends
on the right terminal event, and that the events the fake scripts (§12) reach the
call in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from relay_anyio import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_CONNECT,
    EVENT_CALL_DENOISE,
    EVENT_CALL_DETECT,
    EVENT_CALL_ECHO,
    EVENT_CALL_FAX,
    EVENT_CALL_HOLD,
    EVENT_CALL_QUEUE,
    EVENT_CALL_REFER,
    EVENT_CALL_SEND_DIGITS,
    EVENT_CALLING_ERROR,
    EVENT_CONFERENCE,
    Action,
    AIAction,
    AIEvent,
    Call,
    CollectAction,
    CollectEvent,
    DetectAction,
    DetectEvent,
    FaxAction,
    FaxEvent,
    PayAction,
    PayEvent,
    PlayAction,
    QueueEvent,
    RecordAction,
    RecordEvent,
    ReferEvent,
    RelayClient,
    RelayError,
    RelayEvent,
    StandaloneCollectAction,
    StreamAction,
    StreamEvent,
    TapAction,
    TapEvent,
    TranscribeAction,
    TranscribeEvent,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client
from .test_call_basics import inbound_call

pytestmark = pytest.mark.anyio

JSON = dict[str, Any]
#: Stands for the control_id the SDK generated, in expected params.
CID = "<generated control_id>"

PHONE_A = {"type": "phone", "params": {"to_number": "+15551111111", "from_number": "+15550000000"}}
PHONE_B = {"type": "phone", "params": {"to_number": "+15552222222", "from_number": "+15550000000"}}
COLLECT_SPEC = {
    "digits": {"max": 4, "digit_timeout": 5.0, "terminators": "#"},
    "initial_timeout": 4.0,
}
SIP_AGENT = {"type": "sip", "params": {"to": "sip:agent@pbx.example.com"}}
RTP_TAP = {"type": "audio", "params": {"direction": "both"}}
RTP_DEVICE = {"type": "rtp", "params": {"addr": "203.0.113.10", "port": 4000, "codec": "PCMU"}}
AI_PROMPT = {"text": "You are a helpful support agent.", "temperature": 0.3}


def ok(message: str, **extra: Any) -> JSON:
    return {"code": "200", "message": message, **extra}


class Case:
    """One row: run ``call_it``, expect one ``method`` frame with exactly ``params``.

    ``result`` is what the method returns (for an action: its ``start_result``); a
    callable gets the case context (``call``, ``cid``, ``server``) to build it.
    """

    def __init__(
        self,
        name: str,
        call_it: Callable[[Call, JSON], Awaitable[Any]],
        method: str,
        params: JSON,
        result: JSON | Callable[[JSON], JSON],
        action: type[Action] | None = None,
    ) -> None:
        self.name = name
        self.call_it = call_it
        self.method = method
        self.params = params
        self.result = result
        self.action = action


def accepted(message: str, **extra: Any) -> Callable[[JSON], JSON]:
    """The result of an action's start: the fake echoes call_id and control_id."""
    return lambda ctx: ok(message, call_id=ctx["call"].call_id, control_id=ctx["cid"], **extra)


CASES: list[Case] = [
    Case("answer", lambda c, s: c.answer(), "calling.answer", {}, ok("Answered")),
    Case(
        "answer kwargs",
        lambda c, s: c.answer(codecs=["PCMU", "OPUS"], max_duration=600),
        "calling.answer",
        {"codecs": ["PCMU", "OPUS"], "max_duration": 600},
        ok("Answered"),
    ),
    # -- play (flat items, as the guide writes them, go out in the wire shape)
    Case(
        "play",
        lambda c, s: c.play(
            [
                {"type": "tts", "text": "Hello!"},
                {"type": "audio", "params": {"url": "https://cdn.example.com/a.mp3"}},
                {"type": "silence", "duration": 1.5},
                {"type": "ringtone", "name": "us", "params": {"duration": 10}},
            ],
            volume=-5.5,
            direction="both",
            loop=2,
        ),
        "calling.play",
        {
            "control_id": CID,
            "play": [
                {"type": "tts", "params": {"text": "Hello!"}},
                {"type": "audio", "params": {"url": "https://cdn.example.com/a.mp3"}},
                {"type": "silence", "params": {"duration": 1.5}},
                {"type": "ringtone", "params": {"name": "us", "duration": 10}},
            ],
            "volume": -5.5,
            "direction": "both",
            "loop": 2,
        },
        accepted("Playing"),
        PlayAction,
    ),
    Case(
        "play own control_id",
        lambda c, s: c.play([{"type": "tts", "text": "x"}], control_id="my-play", loop=0),
        "calling.play",
        {"control_id": "my-play", "play": [{"type": "tts", "params": {"text": "x"}}], "loop": 0},
        lambda ctx: ok("Playing", call_id=ctx["call"].call_id, control_id="my-play"),
        PlayAction,
    ),
    Case(
        "play_tts",
        lambda c, s: c.play_tts(
            "Welcome!", language="en-US", gender="female", voice="Polly.Joanna", volume=3.0
        ),
        "calling.play",
        {
            "control_id": CID,
            "volume": 3.0,
            "play": [
                {
                    "type": "tts",
                    "params": {
                        "text": "Welcome!",
                        "language": "en-US",
                        "gender": "female",
                        "voice": "Polly.Joanna",
                    },
                }
            ],
        },
        accepted("Playing"),
        PlayAction,
    ),
    Case(
        "play_audio",
        lambda c, s: c.play_audio("https://cdn.example.com/g.mp3", volume=1.0),
        "calling.play",
        {
            "control_id": CID,
            "volume": 1.0,
            "play": [{"type": "audio", "params": {"url": "https://cdn.example.com/g.mp3"}}],
        },
        accepted("Playing"),
        PlayAction,
    ),
    Case(
        "play_silence",
        lambda c, s: c.play_silence(2.5),
        "calling.play",
        {"control_id": CID, "play": [{"type": "silence", "params": {"duration": 2.5}}]},
        accepted("Playing"),
        PlayAction,
    ),
    Case(
        "play_ringtone",
        lambda c, s: c.play_ringtone("uk", duration=10, volume=-2.0),
        "calling.play",
        {
            "control_id": CID,
            "volume": -2.0,
            "play": [{"type": "ringtone", "params": {"name": "uk", "duration": 10}}],
        },
        accepted("Playing"),
        PlayAction,
    ),
    # -- record
    Case(
        "record",
        lambda c, s: c.record(
            audio={
                "beep": True,
                "format": "wav",
                "stereo": True,
                "direction": "both",
                "initial_timeout": 5.0,
                "end_silence_timeout": 1.0,
                "terminators": "#*",
                "input_sensitivity": 44,
            }
        ),
        "calling.record",
        {
            "control_id": CID,
            "record": {
                "audio": {
                    "beep": True,
                    "format": "wav",
                    "stereo": True,
                    "direction": "both",
                    "initial_timeout": 5.0,
                    "end_silence_timeout": 1.0,
                    "terminators": "#*",
                    "input_sensitivity": 44,
                }
            },
        },
        lambda ctx: ok(
            "Recording",
            call_id=ctx["call"].call_id,
            control_id=ctx["cid"],
            url=f"https://fake-relay.invalid/recordings/{ctx['cid']}.wav",
        ),
        RecordAction,
    ),
    Case(
        "record defaults",
        lambda c, s: c.record(),
        "calling.record",
        {"control_id": CID, "record": {"audio": {}}},
        lambda ctx: ok(
            "Recording",
            call_id=ctx["call"].call_id,
            control_id=ctx["cid"],
            url=f"https://fake-relay.invalid/recordings/{ctx['cid']}.mp3",
        ),
        RecordAction,
    ),
    # -- input
    Case(
        "play_and_collect",
        lambda c, s: c.play_and_collect(
            [{"type": "tts", "text": "Enter your PIN."}], COLLECT_SPEC, volume=7.5
        ),
        "calling.play_and_collect",
        {
            "control_id": CID,
            "play": [{"type": "tts", "params": {"text": "Enter your PIN."}}],
            "collect": COLLECT_SPEC,
            "volume": 7.5,
        },
        accepted("Collecting"),
        CollectAction,
    ),
    Case(
        "prompt_tts",
        lambda c, s: c.prompt_tts(
            "Press 1",
            {"digits": {"max": 1}},
            language="en-US",
            gender="male",
            voice="Polly.Matthew",
            volume=2.0,
        ),
        "calling.play_and_collect",
        {
            "control_id": CID,
            "collect": {"digits": {"max": 1}},
            "volume": 2.0,
            "play": [
                {
                    "type": "tts",
                    "params": {
                        "text": "Press 1",
                        "language": "en-US",
                        "gender": "male",
                        "voice": "Polly.Matthew",
                    },
                }
            ],
        },
        accepted("Collecting"),
        CollectAction,
    ),
    Case(
        "prompt_audio",
        lambda c, s: c.prompt_audio(
            "https://cdn.example.com/menu.mp3", {"speech": {"language": "en-US"}}
        ),
        "calling.play_and_collect",
        {
            "control_id": CID,
            "collect": {"speech": {"language": "en-US"}},
            "play": [{"type": "audio", "params": {"url": "https://cdn.example.com/menu.mp3"}}],
        },
        accepted("Collecting"),
        CollectAction,
    ),
    Case(
        "collect",
        lambda c, s: c.collect(
            digits={"max": 4, "terminators": "#"},
            speech={"language": "en-US", "hints": ["sales"]},
            initial_timeout=10.0,
            partial_results=True,
            continuous=False,
            send_start_of_input=True,
            start_input_timers=False,
        ),
        "calling.collect",
        {
            "control_id": CID,
            "digits": {"max": 4, "terminators": "#"},
            "speech": {"language": "en-US", "hints": ["sales"]},
            "initial_timeout": 10.0,
            "partial_results": True,
            "continuous": False,
            "send_start_of_input": True,
            "start_input_timers": False,
        },
        accepted("Collecting"),
        StandaloneCollectAction,
    ),
    Case(
        "collect speech only",
        lambda c, s: c.collect(speech={"end_silence_timeout": 2.0}),
        "calling.collect",
        {"control_id": CID, "speech": {"end_silence_timeout": 2.0}},
        accepted("Collecting"),
        StandaloneCollectAction,
    ),
    # -- detect
    Case(
        "detect",
        lambda c, s: c.detect(
            {
                "type": "machine",
                "params": {"end_silence_timeout": 2.0, "machine_words_threshold": 5},
            },
            timeout=30.0,
        ),
        "calling.detect",
        {
            "control_id": CID,
            "timeout": 30.0,
            "detect": {
                "type": "machine",
                "params": {"end_silence_timeout": 2.0, "machine_words_threshold": 5},
            },
        },
        accepted("Detecting"),
        DetectAction,
    ),
    Case(
        "detect_answering_machine",
        lambda c, s: c.detect_answering_machine(
            initial_timeout=4.5,
            end_silence_timeout=1.0,
            machine_ready_timeout=1.0,
            machine_voice_threshold=1.25,
            machine_words_threshold=6,
            detect_interruptions=False,
            detect_message_end=True,
            timeout=20.0,
        ),
        "calling.detect",
        {
            "control_id": CID,
            "timeout": 20.0,
            "detect": {
                "type": "machine",
                "params": {
                    "initial_timeout": 4.5,
                    "end_silence_timeout": 1.0,
                    "machine_ready_timeout": 1.0,
                    "machine_voice_threshold": 1.25,
                    "machine_words_threshold": 6,
                    "detect_interruptions": False,
                    "detect_message_end": True,
                },
            },
        },
        accepted("Detecting"),
        DetectAction,
    ),
    Case(
        "detect_answering_machine defaults",
        lambda c, s: c.detect_answering_machine(),
        "calling.detect",
        {"control_id": CID, "detect": {"type": "machine", "params": {}}},
        accepted("Detecting"),
        DetectAction,
    ),
    Case(
        "detect_fax",
        lambda c, s: c.detect_fax(tone="CNG", timeout=10.0),
        "calling.detect",
        {"control_id": CID, "timeout": 10.0, "detect": {"type": "fax", "params": {"tone": "CNG"}}},
        accepted("Detecting"),
        DetectAction,
    ),
    Case(
        "detect_digit",
        lambda c, s: c.detect_digit(digits="0123456789#*"),
        "calling.detect",
        {"control_id": CID, "detect": {"type": "digit", "params": {"digits": "0123456789#*"}}},
        accepted("Detecting"),
        DetectAction,
    ),
    # -- bridging: outer list in series, inner list in parallel
    Case(
        "connect serial",
        lambda c, s: c.connect(
            [[PHONE_A], [PHONE_B]],
            ringback=[{"type": "ringtone", "name": "us"}],
            tag="agent-bridge-1",
            max_duration=60,
            max_price_per_minute=1.5,
            status_url="https://example.com/status",
        ),
        "calling.connect",
        {
            "devices": [[PHONE_A], [PHONE_B]],
            "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
            "tag": "agent-bridge-1",
            "max_duration": 60,
            "max_price_per_minute": 1.5,
            "status_url": "https://example.com/status",
        },
        lambda ctx: ok("Connecting", call_id=ctx["call"].call_id),
    ),
    Case("disconnect", lambda c, s: c.disconnect(), "calling.disconnect", {}, ok("Disconnecting")),
    Case(
        "connect parallel",
        lambda c, s: c.connect([[PHONE_A, PHONE_B]]),
        "calling.connect",
        {"devices": [[PHONE_A, PHONE_B]]},
        lambda ctx: ok("Connecting", call_id=ctx["call"].call_id),
    ),
    Case(
        "disconnect again",
        lambda c, s: c.disconnect(),
        "calling.disconnect",
        {},
        ok("Disconnecting"),
    ),
    # -- the rest of the surface
    Case(
        "send_digits",
        lambda c, s: c.send_digits("1234w#"),
        "calling.send_digits",
        {"control_id": CID, "digits": "1234w#"},
        ok("Sending Digits"),
    ),
    Case(
        "tap",
        lambda c, s: c.tap(RTP_TAP, RTP_DEVICE),
        "calling.tap",
        {"control_id": CID, "tap": RTP_TAP, "device": RTP_DEVICE},
        accepted(
            "Tapping",
            source_device={
                "type": "rtp",
                "params": {"addr": "127.0.0.1", "port": 49152, "codec": "PCMU"},
            },
        ),
        TapAction,
    ),
    Case(
        "stream",
        lambda c, s: c.stream(
            "wss://stream.example.com/audio",
            name="my_stream",
            codec="PCMU",
            track="both_tracks",
            status_url="https://example.com/ss",
            status_url_method="POST",
            authorization_bearer_token="s3cr3t",
            custom_parameters={"agent": "42"},
        ),
        "calling.stream",
        {
            "control_id": CID,
            "url": "wss://stream.example.com/audio",
            "name": "my_stream",
            "codec": "PCMU",
            "track": "both_tracks",
            "status_url": "https://example.com/ss",
            "status_url_method": "POST",
            "authorization_bearer_token": "s3cr3t",
            "custom_parameters": {"agent": "42"},
        },
        accepted("Streaming"),
        StreamAction,
    ),
    Case(
        "transcribe",
        lambda c, s: c.transcribe(status_url="https://example.com/tr"),
        "calling.transcribe",
        {"control_id": CID, "status_url": "https://example.com/tr"},
        accepted("Transcribing"),
        TranscribeAction,
    ),
    Case(
        "send_fax",
        lambda c, s: c.send_fax(
            "https://docs.example.com/invoice.pdf", identity="+15551112222", header_info="ACME Corp"
        ),
        "calling.send_fax",
        {
            "control_id": CID,
            "document": "https://docs.example.com/invoice.pdf",
            "identity": "+15551112222",
            "header_info": "ACME Corp",
        },
        accepted("Sending fax"),
        FaxAction,
    ),
    Case(
        "receive_fax",
        lambda c, s: c.receive_fax(),
        "calling.receive_fax",
        {"control_id": CID},
        accepted("Receiving fax"),
        FaxAction,
    ),
    Case(
        "pay",
        lambda c, s: c.pay(
            "https://pay.example.com/connector",
            input_method="dtmf",
            status_url="https://example.com/pay",
            payment_method="credit-card",
            timeout="30",
            max_attempts="3",
            security_code="true",
            postal_code="true",
            min_postal_code_length="5",
            token_type="reusable",
            charge_amount="25.99",
            currency="usd",
            language="en-US",
            voice="woman",
            description="Order 1001",
            valid_card_types="visa mastercard",
            parameters=[{"name": "order", "value": "1001"}],
            prompts=[
                {"for": "payment-card-number", "actions": [{"type": "Say", "phrase": "Card?"}]}
            ],
        ),
        "calling.pay",
        {
            "control_id": CID,
            "payment_connector_url": "https://pay.example.com/connector",
            "input": "dtmf",
            "status_url": "https://example.com/pay",
            "payment_method": "credit-card",
            "timeout": "30",
            "max_attempts": "3",
            "security_code": "true",
            "postal_code": "true",
            "min_postal_code_length": "5",
            "token_type": "reusable",
            "charge_amount": "25.99",
            "currency": "usd",
            "language": "en-US",
            "voice": "woman",
            "description": "Order 1001",
            "valid_card_types": "visa mastercard",
            "parameters": [{"name": "order", "value": "1001"}],
            "prompts": [
                {"for": "payment-card-number", "actions": [{"type": "Say", "phrase": "Card?"}]}
            ],
        },
        accepted("Collecting payment"),
        PayAction,
    ),
    Case(
        "refer",
        lambda c, s: c.refer(SIP_AGENT, status_url="https://example.com/refer"),
        "calling.refer",
        {"device": SIP_AGENT, "status_url": "https://example.com/refer"},
        ok("Starting SIP REFER"),
    ),
    Case(
        "transfer",
        lambda c, s: c.transfer("https://example.com/swml-endpoint"),
        "calling.transfer",
        {"dest": "https://example.com/swml-endpoint"},
        ok("Transferring"),
    ),
    Case(
        "join_conference",
        lambda c, s: c.join_conference(
            "team-standup",
            muted=False,
            beep="onEnter",
            start_on_enter=True,
            end_on_exit=False,
            wait_url="https://example.com/hold.mp3",
            max_participants=10,
            record="record-from-start",
            region="us",
            trim="trim-silence",
            coach="c-1",
            status_callback="https://example.com/conf",
            status_callback_event="start end join leave",
            status_callback_event_type="relay",
            status_callback_method="POST",
            recording_status_callback="https://example.com/rec",
            recording_status_callback_event="completed",
            recording_status_callback_event_type="relay",
            recording_status_callback_method="GET",
            stream_obj={"url": "wss://example.com/conf-audio"},
        ),
        "calling.join_conference",
        {
            "name": "team-standup",
            "muted": False,
            "beep": "onEnter",
            "start_on_enter": True,
            "end_on_exit": False,
            "wait_url": "https://example.com/hold.mp3",
            "max_participants": 10,
            "record": "record-from-start",
            "region": "us",
            "trim": "trim-silence",
            "coach": "c-1",
            "status_callback": "https://example.com/conf",
            "status_callback_event": "start end join leave",
            "status_callback_event_type": "relay",
            "status_callback_method": "POST",
            "recording_status_callback": "https://example.com/rec",
            "recording_status_callback_event": "completed",
            "recording_status_callback_event_type": "relay",
            "recording_status_callback_method": "GET",
            "stream": {"url": "wss://example.com/conf-audio"},
        },
        lambda ctx: ok(
            "Joining conference",
            conference_id=ctx["server"].conferences["team-standup"].conference_id,
        ),
    ),
    Case(
        "leave_conference",
        lambda c, s: c.leave_conference(s["join_conference"]["conference_id"]),
        "calling.leave_conference",
        {"conference_id": "<from join>"},
        ok("Leaving conference"),
    ),
    Case(
        "join_room",
        lambda c, s: c.join_room("my_room", status_url="https://example.com/room"),
        "calling.join_room",
        {"name": "my_room", "status_url": "https://example.com/room"},
        ok("Joining room"),
    ),
    Case("leave_room", lambda c, s: c.leave_room(), "calling.leave_room", {}, ok("Leaving room")),
    Case("hold", lambda c, s: c.hold(), "calling.hold", {}, ok("OK")),
    Case("unhold", lambda c, s: c.unhold(), "calling.unhold", {}, ok("OK")),
    Case("denoise", lambda c, s: c.denoise(), "calling.denoise", {}, ok("Denoiser on")),
    Case(
        "denoise_stop",
        lambda c, s: c.denoise_stop(),
        "calling.denoise.stop",
        {},
        ok("Denoiser off"),
    ),
    Case(
        "echo",
        lambda c, s: c.echo(timeout=30.0, status_url="https://example.com/echo"),
        "calling.echo",
        {"timeout": 30.0, "status_url": "https://example.com/echo"},
        ok("Echo started"),
    ),
    Case(
        "bind_digit",
        lambda c, s: c.bind_digit(
            "*1",
            "calling.play",
            bind_params={"play": [{"type": "tts", "params": {"text": "You pressed star one"}}]},
            realm="menu",
            max_triggers=3,
        ),
        "calling.bind_digit",
        {
            "digits": "*1",
            "bind_method": "calling.play",
            "params": {"play": [{"type": "tts", "params": {"text": "You pressed star one"}}]},
            "realm": "menu",
            "max_triggers": 3,
        },
        ok("Digit binding created"),
    ),
    Case(
        "clear_digit_bindings",
        lambda c, s: c.clear_digit_bindings(realm="menu"),
        "calling.clear_digit_bindings",
        {"realm": "menu"},
        ok("Digit bindings cleared"),
    ),
    Case(
        "live_transcribe",
        lambda c, s: c.live_transcribe({"start": {"language": "en-US"}}),
        "calling.live_transcribe",
        {"action": {"start": {"language": "en-US"}}},
        ok("Live transcription started"),
    ),
    Case(
        "live_translate",
        lambda c, s: c.live_translate(
            {"start": {"source": "en-US", "target": "es"}}, status_url="https://example.com/lt"
        ),
        "calling.live_translate",
        {
            "action": {"start": {"source": "en-US", "target": "es"}},
            "status_url": "https://example.com/lt",
        },
        ok("Live translation started"),
    ),
    Case(
        "ai",
        lambda c, s: c.ai(
            agent="agent-7",
            prompt=AI_PROMPT,
            post_prompt={"text": "Summarize the call."},
            post_prompt_url="https://example.com/post",
            post_prompt_auth_user="u",
            post_prompt_auth_password="p",
            global_data={"customer_id": "42"},
            pronounce=[{"replace": "SW", "with": "SignalWire"}],
            hints=["sales", "support"],
            languages=[{"name": "English", "code": "en-US", "voice": "rime.spore"}],
            SWAIG={"functions": []},
            ai_params={"end_of_speech_timeout": 3000},
        ),
        "calling.ai",
        {
            "control_id": CID,
            "agent": "agent-7",
            "prompt": AI_PROMPT,
            "post_prompt": {"text": "Summarize the call."},
            "post_prompt_url": "https://example.com/post",
            "post_prompt_auth_user": "u",
            "post_prompt_auth_password": "p",
            "global_data": {"customer_id": "42"},
            "pronounce": [{"replace": "SW", "with": "SignalWire"}],
            "hints": ["sales", "support"],
            "languages": [{"name": "English", "code": "en-US", "voice": "rime.spore"}],
            "SWAIG": {"functions": []},
            "params": {"end_of_speech_timeout": 3000},
        },
        accepted("AI started"),
        AIAction,
    ),
    Case(
        "ai_message",
        lambda c, s: c.ai_message(
            message_text="Order confirmed.",
            role="system",
            reset={"full_reset": True},
            global_data={"k": "v"},
        ),
        "calling.ai_message",
        {
            "message_text": "Order confirmed.",
            "role": "system",
            "reset": {"full_reset": True},
            "global_data": {"k": "v"},
        },
        ok("Message sent"),
    ),
    Case(
        "ai_hold",
        lambda c, s: c.ai_hold(timeout="60", prompt="Please hold."),
        "calling.ai_hold",
        {"timeout": "60", "prompt": "Please hold."},
        ok("AI on hold"),
    ),
    Case(
        "ai_unhold",
        lambda c, s: c.ai_unhold(prompt="Thanks for holding."),
        "calling.ai_unhold",
        {"prompt": "Thanks for holding."},
        ok("AI resumed"),
    ),
    Case(
        "amazon_bedrock",
        lambda c, s: c.amazon_bedrock(
            prompt="You are helpful.",
            SWAIG={"functions": []},
            ai_params={"end_of_speech_timeout": 3000},
            global_data={"k": "v"},
            post_prompt={"text": "Goodbye"},
            post_prompt_url="https://example.com/post",
        ),
        "calling.amazon_bedrock",
        {
            "prompt": "You are helpful.",
            "SWAIG": {"functions": []},
            "params": {"end_of_speech_timeout": 3000},
            "global_data": {"k": "v"},
            "post_prompt": {"text": "Goodbye"},
            "post_prompt_url": "https://example.com/post",
        },
        ok("AI started"),
    ),
    Case(
        "user_event",
        lambda c, s: c.user_event(event="order_placed", order_id="12345"),
        "calling.user_event",
        {"event": "order_placed", "order_id": "12345"},
        ok("Event sent"),
    ),
    Case(
        "queue_enter",
        lambda c, s: c.queue_enter("support", status_url="https://example.com/q"),
        "calling.queue.enter",
        {"control_id": CID, "queue_name": "support", "status_url": "https://example.com/q"},
        ok("Entering Queue"),
    ),
    Case(
        "queue_leave",
        lambda c, s: c.queue_leave("support", queue_id="qid1", status_url="https://example.com/q"),
        "calling.queue.leave",
        {
            "control_id": CID,
            "queue_name": "support",
            "queue_id": "qid1",
            "status_url": "https://example.com/q",
        },
        ok("Leaving Queue"),
    ),
    Case("pass_", lambda c, s: c.pass_(), "calling.pass", {}, ok("Passing call")),
    Case(
        "hangup",
        lambda c, s: c.hangup("busy"),
        "calling.end",
        {"reason": "busy"},
        ok("Disconnecting call"),
    ),
]


def text_of(event: RelayEvent) -> str:
    return event.text if isinstance(event, CollectEvent) else ""


def is_uuid4(value: object) -> bool:
    try:
        return isinstance(value, str) and uuid.UUID(value).version == 4
    except ValueError:
        return False


async def test_every_method_sends_its_exact_frame_and_returns_the_result(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60  # actions stay running: no terminal event interferes
    results: JSON = {}
    async with inbound_call(relay_server) as (call, fake):
        ids = {"node_id": fake.node_id, "call_id": fake.call_id}
        for case in CASES:
            before = len(relay_server.received(case.method))
            with anyio.fail_after(2):
                returned = await case.call_it(call, results)
            frames = relay_server.received(case.method)[before:]
            assert len(frames) == 1, (case.name, frames)
            sent = frames[0]["params"]
            expected = {**ids, **case.params}
            if expected.get("control_id") == CID:
                assert is_uuid4(sent.get("control_id")), case.name
                expected["control_id"] = sent["control_id"]
            if case.name == "leave_conference":
                expected["conference_id"] = results["join_conference"]["conference_id"]
            assert sent == expected, case.name
            ctx = {"call": call, "cid": sent.get("control_id"), "server": relay_server}
            want = case.result(ctx) if callable(case.result) else case.result
            if case.action is not None:
                assert type(returned) is case.action, case.name
                assert returned.control_id == sent["control_id"], case.name
                assert returned.start_result == want, case.name
                assert not returned.is_done or case.action in (DetectAction, PayAction), case.name
            else:
                assert returned == want, case.name
            results[case.name] = returned
    assert {c.method for c in CASES} >= {
        "calling.answer",
        "calling.end",
        "calling.pass",
        "calling.play",
        "calling.record",
        "calling.play_and_collect",
        "calling.collect",
        "calling.detect",
        "calling.connect",
        "calling.disconnect",
        "calling.send_digits",
        "calling.tap",
        "calling.stream",
        "calling.transcribe",
        "calling.send_fax",
        "calling.receive_fax",
        "calling.pay",
        "calling.refer",
        "calling.transfer",
        "calling.join_conference",
        "calling.leave_conference",
        "calling.join_room",
        "calling.leave_room",
        "calling.hold",
        "calling.unhold",
        "calling.denoise",
        "calling.denoise.stop",
        "calling.echo",
        "calling.bind_digit",
        "calling.clear_digit_bindings",
        "calling.live_transcribe",
        "calling.live_translate",
        "calling.ai",
        "calling.ai_message",
        "calling.ai_hold",
        "calling.ai_unhold",
        "calling.amazon_bedrock",
        "calling.user_event",
        "calling.queue.enter",
        "calling.queue.leave",
    }
    assert relay_server.violations == []


# -- action controls -----------------------------------------------------------------------

Start = Callable[[Call], Awaitable[Any]]
#: (name, start, [(control call, method, extra params, result message)])
CONTROLS: list[tuple[str, Start, list[tuple[Callable[[Any], Awaitable[Any]], str, JSON, str]]]] = [
    (
        "play",
        lambda c: c.play_tts("x"),
        [
            (lambda a: a.pause(), "calling.play.pause", {}, "Paused"),
            (lambda a: a.resume(), "calling.play.resume", {}, "Resumed"),
            (lambda a: a.volume(-5.5), "calling.play.volume", {"volume": -5.5}, "OK"),
            (lambda a: a.stop(), "calling.play.stop", {}, "Stopped"),
        ],
    ),
    (
        "record",
        lambda c: c.record(),
        [
            (lambda a: a.pause(), "calling.record.pause", {}, "Paused"),
            (lambda a: a.resume(), "calling.record.resume", {}, "Resumed"),
            (
                lambda a: a.pause("silence"),
                "calling.record.pause",
                {"behavior": "silence"},
                "Paused",
            ),
            (lambda a: a.resume(), "calling.record.resume", {}, "Resumed"),
            (lambda a: a.stop(), "calling.record.stop", {}, "Stopped"),
        ],
    ),
    (
        "play_and_collect",
        lambda c: c.prompt_tts("x", {"digits": {"max": 1}}),
        [
            (lambda a: a.volume(7.5), "calling.play_and_collect.volume", {"volume": 7.5}, "OK"),
            (lambda a: a.start_input_timers(), "calling.collect.start_input_timers", {}, "OK"),
            (lambda a: a.stop(), "calling.play_and_collect.stop", {}, "Stopped"),
        ],
    ),
    (
        "collect",
        lambda c: c.collect(digits={"max": 1}, start_input_timers=False),
        [
            (lambda a: a.start_input_timers(), "calling.collect.start_input_timers", {}, "OK"),
            (lambda a: a.stop(), "calling.collect.stop", {}, "Stopped"),
        ],
    ),
    (
        "detect",
        lambda c: c.detect_fax(),
        [(lambda a: a.stop(), "calling.detect.stop", {}, "Stopped")],
    ),
    (
        "tap",
        lambda c: c.tap(RTP_TAP, RTP_DEVICE),
        [(lambda a: a.stop(), "calling.tap.stop", {}, "Stopped")],
    ),
    (
        "stream",
        lambda c: c.stream("wss://example.com/s"),
        [(lambda a: a.stop(), "calling.stream.stop", {}, "Stopped")],
    ),
    (
        "transcribe",
        lambda c: c.transcribe(),
        [(lambda a: a.stop(), "calling.transcribe.stop", {}, "Stopped")],
    ),
    (
        "send_fax",
        lambda c: c.send_fax("https://example.com/f.pdf"),
        [(lambda a: a.stop(), "calling.send_fax.stop", {}, "Stopped")],
    ),
    (
        "receive_fax",
        lambda c: c.receive_fax(),
        [(lambda a: a.stop(), "calling.receive_fax.stop", {}, "Stopped")],
    ),
    (
        "pay",
        lambda c: c.pay("https://pay.example.com"),
        [(lambda a: a.stop(), "calling.pay.stop", {}, "Stopped")],
    ),
    (
        "ai",
        lambda c: c.ai(prompt=AI_PROMPT),
        [(lambda a: a.stop(), "calling.ai.stop", {}, "Stopped")],
    ),
]


async def test_every_action_control_sends_its_exact_frame(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 60
    relay_server.collect_delay = 60  # collects stay open for their controls
    async with inbound_call(relay_server) as (call, fake):
        ids = {"node_id": fake.node_id, "call_id": fake.call_id}
        for name, start, controls in CONTROLS:
            with anyio.fail_after(2):
                action = await start(call)
            for control, method, extra, message in controls:
                before = len(relay_server.received(method))
                with anyio.fail_after(2):
                    result = await control(action)
                [frame] = relay_server.received(method)[before:]
                assert frame["params"] == {**ids, "control_id": action.control_id, **extra}, name
                assert result == ok(message), (name, method)
    # The official CollectAction's pause()/resume() map to methods no server has: here
    # they refuse without sending (tests/test_builders_wire.py), and a standalone
    # collect has no prompt whose volume could change.
    assert CollectAction.pause_supported is False
    assert not hasattr(StandaloneCollectAction, "volume")
    assert relay_server.violations == []


# -- behaviour: each action ends on its terminal event -------------------------------------


async def test_play_ends_on_finished_and_error(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        play = await call.play_tts("hi")
        assert (await play.wait(timeout=2)).params["state"] == "finished"
        fake.script_action_error("calling.play")
        relay_server.play_duration = 60
        failed = await call.play_tts("broken")
        event = await failed.wait(timeout=2)
        assert event.params["state"] == "error" and event.control_id == failed.control_id


async def test_record_reports_url_duration_and_size(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        record = await call.record(audio={"format": "wav", "direction": "both"})
        await anyio.sleep(0.05)
        await record.stop()
        event = await record.wait(timeout=2)
        assert isinstance(event, RecordEvent)
        url = f"https://fake-relay.invalid/recordings/{record.control_id}.wav"
        assert (event.state, event.url, record.url) == ("finished", url, url)
        # It ran for the 0.05 s slept (the upper bound: generous for a busy machine).
        assert 0.04 <= event.duration < 10 and event.size == int(event.duration * 8000)
        assert event.params["record"]["audio"] == {"format": "wav", "direction": "both"}
        fake.script_action_error("calling.record")
        silent = await call.record()
        assert (await silent.wait(timeout=2)).params["state"] == "no_input"


async def test_collect_digits_and_speech(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_digits("1234", terminator="#")
        fake.script_speech("talk to sales", confidence=0.93)
        digits = await (await call.collect(digits={"max": 4})).wait(timeout=2)
        speech = await (await call.prompt_tts("Say it", {"speech": {}})).wait(timeout=2)
        nothing = await (await call.collect(digits={"max": 1})).wait(timeout=2)
    assert isinstance(digits, CollectEvent) and isinstance(speech, CollectEvent)
    assert (digits.result_type, digits.digits, digits.terminator) == ("digit", "1234", "#")
    assert (speech.result_type, speech.text, speech.confidence) == ("speech", "talk to sales", 0.93)
    assert nothing.params["result"] == {"type": "no_input"}
    assert nothing.params["state"] == "no_input"


@pytest.mark.parametrize("prompted", [False, True], ids=["collect", "play_and_collect"])
async def test_collect_completes_only_on_the_final_result(
    relay_server: FakeRelayServer, prompted: bool
) -> None:
    relay_server.collect_delay = 0.2  # the input arrives while wait() is already waiting
    seen: list[tuple[Any, ...]] = []
    async with inbound_call(relay_server) as (call, fake):
        fake.script_speech("I want sales please")
        call.on(EVENT_CALL_COLLECT, lambda e: seen.append((e.params.get("final"), text_of(e))))
        spec = {"speech": {}, "partial_results": True, "send_start_of_input": True}
        if prompted:
            action: Any = await call.play_and_collect([{"type": "tts", "text": "Speak"}], spec)
        else:
            action = await call.collect(speech={}, partial_results=True, send_start_of_input=True)
        event = await action.wait(timeout=2)
        assert action.is_done
    assert event.params["final"] is True and event.text == "I want sales please"
    # Every interim event reached the listener before the final one, in order.
    assert seen == [
        (False, ""),
        (False, "I"),
        (False, "I want"),
        (False, "I want sales"),
        (True, "I want sales please"),
    ]


async def test_collect_wait_does_not_return_on_partial_results(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.collect_delay = 60  # only the events below reach this collect
    async with inbound_call(relay_server) as (call, fake):
        collect = await call.collect(digits={"max": 3}, partial_results=True)
        partial = {
            "call_id": fake.call_id,
            "node_id": fake.node_id,
            "control_id": collect.control_id,
            "final": False,
            "result": {"type": "digit", "params": {"digits": "12"}},
        }
        await fake.send_event(EVENT_CALL_COLLECT, partial)
        await fake.send_event(EVENT_CALL_COLLECT, {**partial, "result": {"type": "start_of_input"}})
        with pytest.raises(TimeoutError):
            await collect.wait(timeout=0.1)
        assert not collect.is_done
        final = {
            **partial,
            "final": True,
            "state": "finished",
            "result": {"type": "digit", "params": {"digits": "123", "terminator": ""}},
        }
        await fake.send_event(EVENT_CALL_COLLECT, final)
        event = await collect.wait(timeout=2)
    assert isinstance(event, CollectEvent) and event.digits == "123"


@pytest.mark.parametrize(
    ("start", "kind", "scripted", "expected"),
    [
        (lambda c: c.detect_answering_machine(), "machine", None, "HUMAN"),
        (lambda c: c.detect_answering_machine(), "machine", ("MACHINE", "READY"), "MACHINE"),
        (lambda c: c.detect_fax(), "fax", None, "CED"),
        (lambda c: c.detect_digit(digits="123"), "digit", ("2",), "2"),
    ],
    ids=["human", "machine-then-ready", "fax", "digit"],
)
async def test_detect_completes_on_the_first_result(
    relay_server: FakeRelayServer,
    start: Start,
    kind: str,
    scripted: tuple[str, ...] | None,
    expected: str,
) -> None:
    later: list[str] = []
    async with inbound_call(relay_server) as (call, fake):
        if scripted:
            fake.script_detect(*scripted)
        call.on(EVENT_CALL_DETECT, lambda e: later.append(e.params["detect"]["params"]["event"]))
        detect = await start(call)
        event = await detect.wait(timeout=2)
        # The rest only reach listeners.
        await eventually(lambda: later == list(scripted or (expected,)))
    assert isinstance(event, DetectEvent)
    assert (event.detect_type, event.detect_event) == (kind, expected)
    assert later == list(scripted or (expected,))


async def test_fax_pages_then_completion(relay_server: FakeRelayServer) -> None:
    pages: list[int] = []
    async with inbound_call(relay_server) as (call, fake):
        call.on(EVENT_CALL_FAX, lambda e: pages.append(e.params["fax"]["params"].get("number", 0)))
        fake.script_fax(pages=3, page_delay=0.01)
        sent = await call.send_fax("https://docs.example.com/invoice.pdf", identity="+15551112222")
        event = await sent.wait(timeout=2)
        assert isinstance(event, FaxEvent) and event.fax_type == "finished"
        assert event.fax["params"] == {
            "direction": "send",
            "identity": "+15551112222",
            "remote_identity": "+15551110000",
            "document": "https://docs.example.com/invoice.pdf",
            "success": True,
            "result": "0",
            "result_text": "",
            "pages": 3,
        }
        fake.script_fax(pages=1, success=False)
        received = await (await call.receive_fax()).wait(timeout=2)
        assert received.params["fax"]["params"]["success"] is False
        fake.script_action_error("calling.send_fax")
        broken = await (await call.send_fax("https://x.example/y.pdf")).wait(timeout=2)
        assert broken.params["fax"]["type"] == "error"
        # A server that ends faxes with a top-level state (what the official waits for).
        fake.script_fax(pages=1, page_delay=60)
        other = await call.receive_fax()
        await fake.send_event(
            EVENT_CALL_FAX,
            {
                "call_id": fake.call_id,
                "node_id": fake.node_id,
                "control_id": other.control_id,
                "state": "finished",
            },
        )
        assert (await other.wait(timeout=2)).params["state"] == "finished"
    assert pages[:4] == [1, 2, 3, 0]


@pytest.mark.parametrize(
    ("kind", "start", "running", "event_class"),
    [
        ("calling.tap", lambda c: c.tap(RTP_TAP, RTP_DEVICE), "tapping", TapEvent),
        (
            "calling.stream",
            lambda c: c.stream("wss://e.example/s", name="s1"),
            "streaming",
            StreamEvent,
        ),
        ("calling.transcribe", lambda c: c.transcribe(), None, TranscribeEvent),
    ],
    ids=["tap", "stream", "transcribe"],
)
async def test_tap_stream_transcribe_end_on_finished_and_on_error(
    relay_server: FakeRelayServer,
    kind: str,
    start: Start,
    running: str | None,
    event_class: type[RelayEvent],
) -> None:
    states: list[str] = []
    event_type = kind.replace("calling.", "calling.call.")
    async with inbound_call(relay_server) as (call, fake):
        call.on(event_type, lambda e: states.append(e.params["state"]))
        action = await start(call)
        with pytest.raises(TimeoutError):
            await action.wait(timeout=0.05)
        await action.stop()
        finished = await action.wait(timeout=2)
        fake.script_action_error(kind)
        failing = await start(call)
        failed = await failing.wait(timeout=2)
        expected = ["finished", "error"]
        expected = expected if running is None else [running, "finished", running, "error"]
        await eventually(lambda: states == expected)
    assert isinstance(finished, event_class) and isinstance(failed, event_class)
    assert finished.params["state"] == "finished" and failed.params["state"] == "error"
    assert states == expected
    if kind == "calling.stream":
        assert finished.params["url"] == "wss://e.example/s" and finished.params["name"] == "s1"
    if kind == "calling.transcribe":
        assert isinstance(finished, TranscribeEvent) and finished.recording_id == action.control_id
        assert finished.url.endswith(f"/{action.control_id}.wav")
    if kind == "calling.tap":
        assert isinstance(finished, TapEvent) and finished.device == RTP_DEVICE


async def test_a_second_transcription_is_refused(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, _):
        await call.transcribe()
        with pytest.raises(RelayError) as info:
            await call.transcribe()
    assert info.value.code == 409


async def test_pay_ends_on_finished_or_error_and_stops(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        fake.script_pay({"state": "finished", "result": "success", "payment_token": "tok_1"})
        done = await (await call.pay("https://pay.example.com")).wait(timeout=2)
        assert isinstance(done, PayEvent) and done.params["payment_token"] == "tok_1"
        fake.script_pay({"state": "error", "error_type": "card-declined"})
        declined = await (await call.pay("https://pay.example.com")).wait(timeout=2)
        assert declined.params["state"] == "error"
        fake.script_pay(None)  # the caller is still typing
        pending = await call.pay("https://pay.example.com")
        with pytest.raises(TimeoutError):
            await pending.wait(timeout=0.05)
        await pending.stop()
        assert (await pending.wait(timeout=2)).params["state"] == "finished"


async def test_ai_ends_on_stop_on_error_and_with_the_call(relay_server: FakeRelayServer) -> None:
    async with inbound_call(relay_server) as (call, fake):
        agent = await call.ai(prompt=AI_PROMPT)
        with pytest.raises(TimeoutError):
            await agent.wait(timeout=0.05)
        await call.ai_message(message_text="hello")
        await agent.stop()
        stopped = await agent.wait(timeout=2)
        assert isinstance(stopped, AIEvent) and stopped.state == "finished"
        fake.script_action_error("calling.ai")
        assert (await (await call.ai(prompt=AI_PROMPT)).wait(timeout=2)).params["state"] == "error"
        last = await call.ai(prompt=AI_PROMPT)
        await fake.remote_hangup()
        ended = await last.wait(timeout=2)
    assert ended.event_type == "calling.call.ai" and ended.params["state"] == "finished"
    assert not last.call_ended  # the server's own event, sent before "ended"


async def test_connect_progress_and_disconnect(relay_server: FakeRelayServer) -> None:
    events: list[Any] = []  # ConnectEvent
    async with inbound_call(relay_server) as (call, fake):
        call.on(EVENT_CALL_CONNECT, events.append)
        await call.connect([[PHONE_A, PHONE_B]], tag="bridge-1")
        await eventually(lambda: len(events) == 2)
        connected = events[1]
        assert connected.connect_state == "connected"
        peer = relay_server.calls[connected.peer["call_id"]]
        assert connected.peer_info is not None and connected.peer_info.tag == "bridge-1"
        assert peer.device == PHONE_A and peer.state == "answered"
        await call.disconnect()
        await eventually(lambda: len(events) == 3)
        fake.script_connect("failed")
        await call.connect([[PHONE_B]])
        await eventually(lambda: len(events) == 5)
        assert events[4].connect_state == "failed" and events[4].params.get("peer") is None
        await call.connect([[PHONE_B]])
        await eventually(lambda: len(events) == 7)
        await fake.remote_hangup()
        await call.wait_for_ended(timeout=2)
    states = [e.connect_state for e in events]
    assert states == [
        "connecting",
        "connected",
        "disconnected",
        "connecting",
        "failed",
        "connecting",
        "connected",
        "disconnected",
    ]
    assert peer.state == "answered"  # disconnect unbridges without hanging up
    last_peer = relay_server.calls[events[-1].peer["call_id"]]
    assert last_peer.state == "ended"  # the call's end takes its bridge down


async def test_send_digits_refer_denoise_hold_echo_events(relay_server: FakeRelayServer) -> None:
    got: dict[str, list[RelayEvent]] = {}

    def keep(event: RelayEvent) -> None:
        got.setdefault(event.event_type, []).append(event)

    async with inbound_call(relay_server) as (call, fake):
        fake.hold_events = True
        for event_type in (
            EVENT_CALL_SEND_DIGITS,
            EVENT_CALL_REFER,
            EVENT_CALL_DENOISE,
            EVENT_CALL_HOLD,
            EVENT_CALL_ECHO,
        ):
            call.on(event_type, keep)
        await call.send_digits("12#", control_id="digits-1")
        await call.refer({"type": "sip", "params": {"to": "sip:bob@example.com"}})
        await call.denoise()
        await call.denoise_stop()
        await call.hold()
        await call.unhold()
        await call.echo(timeout=5)
        await eventually(lambda: EVENT_CALL_ECHO in got)
        await anyio.sleep(0.02)
    [digits] = got[EVENT_CALL_SEND_DIGITS]
    assert digits.params == {
        "call_id": fake.call_id,
        "node_id": fake.node_id,
        "control_id": "digits-1",
        "state": "finished",
    }
    [refer] = got[EVENT_CALL_REFER]
    assert isinstance(refer, ReferEvent)
    assert (
        refer.state,
        refer.sip_refer_to,
        refer.sip_refer_response_code,
        refer.sip_notify_response_code,
    ) == ("success", "sip:bob@example.com", "202", "200")
    assert [e.params["denoised"] for e in got[EVENT_CALL_DENOISE]] == [True, False]
    assert [e.params["state"] for e in got[EVENT_CALL_HOLD]] == ["hold", "unhold"]
    assert [e.params["state"] for e in got[EVENT_CALL_ECHO]] == ["echoing"]
    assert (fake.denoised, fake.held) == (False, False)


async def test_queue_enter_and_leave_events(relay_server: FakeRelayServer) -> None:
    events: list[Any] = []  # QueueEvent
    async with inbound_call(relay_server) as (call, fake):
        call.on(EVENT_CALL_QUEUE, events.append)
        await call.queue_enter("support", control_id="q-1")
        await eventually(lambda: len(events) == 1)
        entered = events[0]
        await call.queue_leave("support", control_id="q-2", queue_id=entered.params["id"])
        await eventually(lambda: len(events) == 2)
        left = events[1]
        not_queued = await call.queue_leave("support")  # 404: a no-op, like a gone call
    assert isinstance(entered, QueueEvent) and isinstance(left, QueueEvent)
    assert (entered.status, entered.queue_name, entered.position, entered.size) == (
        "enqueue",
        "support",
        1,
        1,
    )
    assert entered.control_id == "q-1" and entered.queue_id
    assert (left.status, left.queue_id, left.size, left.control_id) == (
        "leave",
        entered.queue_id,
        0,
        "q-2",
    )
    assert not_queued == {}
    assert fake.queue is None


async def test_conference_events_reach_calls_and_client_listeners(
    relay_server: FakeRelayServer,
) -> None:
    client_events: list[Any] = []  # ConferenceEvent
    call_events: dict[str, list[str]] = {}
    joined = anyio.Event()
    client = make_client(relay_server)
    client.on(EVENT_CONFERENCE, client_events.append)

    @client.on_call
    async def handler(call: Call) -> None:
        mine = call_events.setdefault(call.call_id, [])
        call.on(EVENT_CONFERENCE, lambda e: mine.append(e.params["status"]))
        await call.answer()
        result = await call.join_conference("standup", beep="true")
        if len(call_events) == 2:
            joined.set()
        await joined.wait()
        await eventually(lambda: len(mine) == 1)  # my participant-join is in
        await call.leave_conference(result["conference_id"])
        await eventually(lambda: len(mine) == 2)

    def settled() -> bool:
        return len(client_events) == 2 and all(len(v) == 2 for v in call_events.values())

    async with client:
        first = await relay_server.offer_call()
        second = await relay_server.offer_call()
        await eventually(lambda: len(call_events) == 2 and settled())
    assert [(e.status, e.call_id) for e in client_events] == [
        ("conference-start", ""),
        ("conference-end", ""),
    ]
    assert client_events[0].name == "standup" and client_events[0].conference_id
    # Participant events carry call_id: each call sees its own, and only its own.
    assert call_events[first.call_id] == ["participant-join", "participant-leave"]
    assert call_events[second.call_id] == ["participant-join", "participant-leave"]
    assert relay_server.conferences == {}


async def test_calling_error_reaches_the_call_or_the_client(
    relay_server: FakeRelayServer,
) -> None:
    client_errors: list[Any] = []  # CallingErrorEvent
    call_errors: list[Any] = []

    def listen(client: RelayClient) -> None:
        client.on(EVENT_CALLING_ERROR, client_errors.append)

    async with inbound_call(relay_server, configure=listen) as (call, fake):
        call.on(EVENT_CALLING_ERROR, call_errors.append)
        await fake.send_calling_error("5001", "synthetic error")
        await fake.session.emit(EVENT_CALLING_ERROR, {"code": "5002", "message": "no call"})
        await eventually(lambda: call_errors and client_errors)
        await anyio.sleep(0.02)
    assert [(e.code, e.message, e.call_id) for e in call_errors] == [
        ("5001", "synthetic error", fake.call_id)
    ]
    assert [(e.code, e.message, e.call_id) for e in client_errors] == [("5002", "no call", "")]


async def test_unscripted_outcomes_leave_no_fake_state_behind(
    relay_server: FakeRelayServer,
) -> None:
    """A hung-up call leaves its conference, queue and bridge on the fake server too."""
    async with inbound_call(relay_server) as (call, fake):
        await call.join_conference("room-1")
        await call.queue_enter("support")
        await call.connect([[PHONE_A]])
        await eventually(lambda: fake.connect_state == "connected")
        await call.hangup()
        await call.wait_for_ended(timeout=2)
    assert relay_server.conferences == {}
    assert fake.queue is None and fake.peer is None
    assert all(c.state == "ended" for c in relay_server.calls.values())
