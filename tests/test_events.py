"""Unit tests for the typed event views (pure, no I/O).

Frames are the inner ``params`` examples of the protocol reference (§12, §13), wrapped
in the ``signalwire.event`` envelope the server sends (§6.1).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_anyio import _constants as constants
from relay_anyio._events import (
    EVENT_CLASSES,
    EVENT_CONVERTER,
    AIEvent,
    CallingErrorEvent,
    CallReceiveEvent,
    CallStateEvent,
    CollectEvent,
    CollectResult,
    ConferenceEvent,
    ConnectEvent,
    DenoiseEvent,
    DetectEvent,
    DetectResult,
    Device,
    DialCallInfo,
    DialEvent,
    EchoEvent,
    FaxEvent,
    HoldEvent,
    MessageReceiveEvent,
    MessageStateEvent,
    PayEvent,
    PeerInfo,
    PlayEvent,
    QueueEvent,
    RecordEvent,
    ReferEvent,
    RelayEvent,
    SendDigitsEvent,
    StreamEvent,
    TapEvent,
    TaskEvent,
    TranscribeEvent,
    make_event,
    parse_event,
)

CALL_ID = "c7a1f3e2-9b4d-4e6a-8c2f-5d1e3b7a9f04"
NODE_ID = "b2e8d4c6-1a3f-4b5d-9e7c-0f2a4c6e8b1d"
TS = 1760000000.1234


def envelope(event_type: str, inner: Any, **outer: Any) -> dict[str, Any]:
    """The outer ``params`` of a ``signalwire.event`` frame, timestamp where §6.1 puts it."""
    payload: dict[str, Any] = {"event_type": event_type, "timestamp": TS, "params": inner}
    payload.update(outer)
    return payload


PHONE_DEVICE: dict[str, Any] = {
    "type": "phone",
    "params": {"from_number": "+15551110000", "to_number": "+15552220000"},
}

# -- One realistic frame per event kind ------------------------------------------------

RECEIVE = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "project_id": "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f",
    "context": "default",
    "tag": "",
    "segment_id": "s-8842",
    "call_state": "created",
    "direction": "inbound",
    "device": PHONE_DEVICE,
}
STATE = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "tag": "",
    "call_state": "ended",
    "end_reason": "hangup",
    "direction": "inbound",
    "device": PHONE_DEVICE,
}
DIAL = {
    "node_id": NODE_ID,
    "tag": "5b1f0c2e-7d3a-4e9b-a6c8-1f2e3d4c5b6a",
    "dial_state": "answered",
    "call": {
        "call_id": "d9c8b7a6-5f4e-4d3c-9b2a-1f0e9d8c7b6a",
        "node_id": NODE_ID,
        "tag": "5b1f0c2e-7d3a-4e9b-a6c8-1f2e3d4c5b6a",
        "device": {
            "type": "phone",
            "params": {"from_number": "+15559876543", "to_number": "+15551234567"},
        },
        "dial_winner": True,
    },
}
CONNECT = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "tag": "agent-bridge-1",
    "connect_state": "connected",
    "peer": {
        "call_id": "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9",
        "node_id": NODE_ID,
        "tag": "agent-bridge-1",
        "device": {
            "type": "phone",
            "params": {"from_number": "+15559876543", "to_number": "+19184238080"},
        },
    },
}
PLAY = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "control_id": "0f6d2b8e-4c1a-4e3b-9d5f-7a2c6e1b3d90",
    "state": "finished",
}
COLLECT = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "control_id": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    "result": {"type": "digit", "params": {"digits": "1234", "terminator": "#"}},
    "final": True,
    "state": "finished",
}
RECORD = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "control_id": "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b",
    "state": "finished",
    "url": "https://files.signalwire.com/recordings/rec-7e8f.wav",
    "duration": 15.5,
    "size": 128000,
    "record": {"audio": {"format": "wav", "stereo": True, "direction": "both"}},
}
DETECT = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "control_id": "9b8a7c6d",
    "detect": {"type": "machine", "params": {"event": "HUMAN"}},
}
FAX = {
    "call_id": CALL_ID,
    "node_id": NODE_ID,
    "control_id": "3c4d5e6f",
    "fax": {"type": "page", "params": {"direction": "send", "number": 1}},
}
TAP = {
    "call_id": CALL_ID,
    "control_id": "2b3c4d5e",
    "state": "tapping",
    "tap": {"type": "audio", "params": {"direction": "speak"}},
    "device": {"type": "rtp", "params": {"addr": "1.2.3.4", "port": 1234}},
}
STREAM = {
    "call_id": CALL_ID,
    "control_id": "8d9e0f1a",
    "state": "streaming",
    "url": "wss://example.com/audio",
    "name": "my_stream",
}
TRANSCRIBE = {
    "call_id": CALL_ID,
    "control_id": "4e5f6a7b",
    "state": "finished",
    "url": "recordings/abc.wav",
    "recording_id": "r1",
    "duration": 30.0,
    "size": 123456,
}
SEND_DIGITS = {"call_id": CALL_ID, "control_id": "6c5d4e3f", "state": "finished"}
REFER = {
    "call_id": CALL_ID,
    "state": "success",
    "sip_refer_to": "sip:user@example.com",
    "sip_refer_response_code": "202",
    "sip_notify_response_code": "200",
}
DENOISE = {"call_id": CALL_ID, "denoised": True}
HOLD = {"call_id": CALL_ID, "state": "hold"}
ECHO = {"call_id": CALL_ID, "state": "echoing"}
PAY = {"call_id": CALL_ID, "control_id": "6f7a8b9c", "state": "finished"}
QUEUE = {
    "call_id": CALL_ID,
    "control_id": "q-ctl",
    "status": "enqueue",
    "id": "q1",
    "name": "support",
    "position": 3,
    "size": 10,
}
CONFERENCE = {
    "conference_id": "a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d",
    "name": "team-standup",
    "status": "conference-start",
}
CALLING_ERROR = {"call_id": CALL_ID, "code": "5001", "message": "synthetic error"}
AI = {"call_id": CALL_ID, "control_id": "c1d2e3f4", "state": "finished"}
MESSAGE_STATE = {
    "message_id": "2f1e0d9c-8b7a-4654-9321-0fedcba98765",
    "context": "default",
    "direction": "outbound",
    "from_number": "+15551111111",
    "to_number": "+15552222222",
    "body": "Hello from SignalWire!",
    "media": [],
    "segments": 1,
    "message_state": "undelivered",
    "reason": "carrier_blocked",
    "tags": ["vip"],
}
MESSAGE_RECEIVE = {
    "message_id": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "context": "default",
    "direction": "inbound",
    "from_number": "+15553333333",
    "to_number": "+15551111111",
    "body": "Check this out",
    "media": ["https://example.com/photo.jpg"],
    "segments": 2,
    "message_state": "received",
    "tags": [],
}
TASK = {
    "context": "office",
    "message": {"job": "print", "copies": 2},
    "space_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
    "project_id": "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f",
}

FRAMES: dict[str, dict[str, Any]] = {
    constants.EVENT_CALL_RECEIVE: RECEIVE,
    constants.EVENT_CALL_STATE: STATE,
    constants.EVENT_CALL_DIAL: DIAL,
    constants.EVENT_CALL_CONNECT: CONNECT,
    constants.EVENT_CALL_PLAY: PLAY,
    constants.EVENT_CALL_COLLECT: COLLECT,
    constants.EVENT_CALL_RECORD: RECORD,
    constants.EVENT_CALL_DETECT: DETECT,
    constants.EVENT_CALL_FAX: FAX,
    constants.EVENT_CALL_TAP: TAP,
    constants.EVENT_CALL_STREAM: STREAM,
    constants.EVENT_CALL_TRANSCRIBE: TRANSCRIBE,
    constants.EVENT_CALL_SEND_DIGITS: SEND_DIGITS,
    constants.EVENT_CALL_REFER: REFER,
    constants.EVENT_CALL_DENOISE: DENOISE,
    constants.EVENT_CALL_HOLD: HOLD,
    constants.EVENT_CALL_ECHO: ECHO,
    constants.EVENT_CALL_PAY: PAY,
    constants.EVENT_CALL_QUEUE: QUEUE,
    constants.EVENT_CONFERENCE: CONFERENCE,
    constants.EVENT_CALLING_ERROR: CALLING_ERROR,
    constants.EVENT_CALL_AI: AI,
    constants.EVENT_MESSAGING_STATE: MESSAGE_STATE,
    constants.EVENT_MESSAGING_RECEIVE: MESSAGE_RECEIVE,
    constants.EVENT_TASK: TASK,
}

EXPECTED_CLASSES: dict[str, type[RelayEvent]] = {
    constants.EVENT_CALL_RECEIVE: CallReceiveEvent,
    constants.EVENT_CALL_STATE: CallStateEvent,
    constants.EVENT_CALL_DIAL: DialEvent,
    constants.EVENT_CALL_CONNECT: ConnectEvent,
    constants.EVENT_CALL_PLAY: PlayEvent,
    constants.EVENT_CALL_COLLECT: CollectEvent,
    constants.EVENT_CALL_RECORD: RecordEvent,
    constants.EVENT_CALL_DETECT: DetectEvent,
    constants.EVENT_CALL_FAX: FaxEvent,
    constants.EVENT_CALL_TAP: TapEvent,
    constants.EVENT_CALL_STREAM: StreamEvent,
    constants.EVENT_CALL_TRANSCRIBE: TranscribeEvent,
    constants.EVENT_CALL_SEND_DIGITS: SendDigitsEvent,
    constants.EVENT_CALL_REFER: ReferEvent,
    constants.EVENT_CALL_DENOISE: DenoiseEvent,
    constants.EVENT_CALL_HOLD: HoldEvent,
    constants.EVENT_CALL_ECHO: EchoEvent,
    constants.EVENT_CALL_PAY: PayEvent,
    constants.EVENT_CALL_QUEUE: QueueEvent,
    constants.EVENT_CONFERENCE: ConferenceEvent,
    constants.EVENT_CALLING_ERROR: CallingErrorEvent,
    constants.EVENT_CALL_AI: AIEvent,
    constants.EVENT_MESSAGING_STATE: MessageStateEvent,
    constants.EVENT_MESSAGING_RECEIVE: MessageReceiveEvent,
    constants.EVENT_TASK: TaskEvent,
}

ALL_EVENT_CLASSES: tuple[type[RelayEvent], ...] = (RelayEvent, *EXPECTED_CLASSES.values())


def public_names(cls: type[Any]) -> list[str]:
    """Public attributes of an event class except methods (i.e. the readable data)."""
    return [
        name
        for name in dir(cls)
        if not name.startswith("_") and not callable(getattr(cls, name, None))
    ]


# -- Constants ---------------------------------------------------------------------------


def test_constants_values_used_by_dispatch() -> None:
    assert constants.EVENT_CALL_HOLD == "calling.call.hold"
    assert constants.EVENT_CALL_AI == "calling.call.ai"
    assert constants.CALL_STATES == ("created", "ringing", "answered", "ending", "ended")
    assert constants.MESSAGE_TERMINAL_STATES == ("delivered", "undelivered", "failed")
    assert constants.PROTOCOL_VERSION == {"major": 2, "minor": 0, "revision": 0}
    assert constants.DEFAULT_RELAY_HOST == "relay.signalwire.com"
    assert constants.END_REASON_NO_ANSWER == "noAnswer"
    assert not hasattr(constants, "AGENT_STRING")


def test_constants_all_is_complete() -> None:
    defined = {name for name in vars(constants) if name.isupper()}
    assert set(constants.__all__) == defined


# -- Dispatch ----------------------------------------------------------------------------


def test_every_event_constant_has_a_class() -> None:
    event_constants = {
        value
        for name, value in vars(constants).items()
        if name.startswith("EVENT_") and name != "EVENT_AUTHORIZATION_STATE"
    }
    assert set(EVENT_CLASSES) == event_constants
    assert EVENT_CLASSES == EXPECTED_CLASSES
    assert len(set(EVENT_CLASSES.values())) == len(EVENT_CLASSES)


@pytest.mark.parametrize("event_type", sorted(FRAMES))
def test_parse_event_picks_class_and_keeps_raw(event_type: str) -> None:
    inner = FRAMES[event_type]
    snapshot = copy.deepcopy(inner)
    event = parse_event(envelope(event_type, inner))
    assert type(event) is EXPECTED_CLASSES[event_type]
    assert event.event_type == event_type
    assert event.raw_params is inner
    assert event.timestamp == TS
    for name in public_names(type(event)):
        getattr(event, name)
    assert inner == snapshot


def test_make_event_matches_parse_event() -> None:
    event = make_event(constants.EVENT_CALL_PLAY, PLAY, TS)
    assert event == parse_event(envelope(constants.EVENT_CALL_PLAY, PLAY))
    assert isinstance(event, PlayEvent)
    assert make_event(constants.EVENT_CALL_PLAY, PLAY).timestamp == 0.0


def test_unknown_event_type_gives_base_event() -> None:
    event = parse_event(envelope("calling.call.something_new", {"call_id": CALL_ID, "x": 1}))
    assert type(event) is RelayEvent
    assert event.event_type == "calling.call.something_new"
    assert event.call_id == CALL_ID
    assert event.params == {"call_id": CALL_ID, "x": 1}
    assert type(make_event("nope", {})) is RelayEvent
    auth = parse_event(envelope(constants.EVENT_AUTHORIZATION_STATE, {"authorization_state": "A"}))
    assert type(auth) is RelayEvent


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"event_type": None, "params": None},
        {"event_type": 7, "params": [1, 2]},
        {"event_type": constants.EVENT_CALL_PLAY, "params": "junk", "timestamp": "soon"},
        {"params": {"call_id": CALL_ID}},
    ],
)
def test_parse_event_tolerates_malformed_envelopes(payload: dict[str, Any]) -> None:
    event = parse_event(payload)
    assert isinstance(event.raw_params, dict)
    assert isinstance(event.event_type, str)
    assert event.timestamp == 0.0
    if payload.get("event_type") == constants.EVENT_CALL_PLAY:
        assert isinstance(event, PlayEvent)
        assert event.state == ""
    else:
        assert type(event) is RelayEvent


def test_parse_event_tolerates_non_dict_payload() -> None:
    event = parse_event(typing.cast(dict[str, Any], ["not", "a", "dict"]))
    assert type(event) is RelayEvent
    assert event.event_type == ""


# -- Timestamp (§6.1 / §15 item 18) ------------------------------------------------------


def test_timestamp_is_read_from_the_envelope() -> None:
    inner = {**PLAY, "timestamp": 1.0}
    assert parse_event(envelope(constants.EVENT_CALL_PLAY, inner)).timestamp == TS


def test_timestamp_falls_back_to_inner_params() -> None:
    inner = {**PLAY, "timestamp": 1700000000.5}
    payload = {"event_type": constants.EVENT_CALL_PLAY, "params": inner}
    assert parse_event(payload).timestamp == 1700000000.5
    payload["timestamp"] = "not a number"
    assert parse_event(payload).timestamp == 1700000000.5


def test_timestamp_accepts_integers_and_rejects_junk() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_PLAY, PLAY, timestamp=1760000000))
    assert event.timestamp == 1760000000.0
    assert isinstance(event.timestamp, float)
    junk = envelope(constants.EVENT_CALL_PLAY, {"timestamp": True}, timestamp=None)
    assert parse_event(junk).timestamp == 0.0


# -- Per-class attributes on reference frames --------------------------------------------


def test_call_receive_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_RECEIVE, RECEIVE))
    assert isinstance(event, CallReceiveEvent)
    assert event.call_id == CALL_ID
    assert event.node_id == NODE_ID
    assert event.project_id == "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"
    assert event.context == "default"
    assert event.segment_id == "s-8842"
    assert event.tag == ""
    assert event.call_state == "created"
    assert event.direction == "inbound"
    assert event.device == PHONE_DEVICE
    assert event.device_info == Device(type="phone", params=PHONE_DEVICE["params"])


def test_call_receive_context_falls_back_to_protocol() -> None:
    inner = {k: v for k, v in RECEIVE.items() if k != "context"}
    inner["protocol"] = "signalwire_abc"
    event = make_event(constants.EVENT_CALL_RECEIVE, inner)
    assert isinstance(event, CallReceiveEvent)
    assert event.context == "signalwire_abc"
    assert (
        make_event(constants.EVENT_CALL_RECEIVE, {**inner, "context": "sales"}).params["context"]
        == "sales"
    )


def test_call_state_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_STATE, STATE))
    assert isinstance(event, CallStateEvent)
    assert event.call_state == constants.CALL_STATE_ENDED
    assert event.end_reason == constants.END_REASON_HANGUP
    assert event.direction == "inbound"
    assert event.device == PHONE_DEVICE
    assert event.tag == ""
    assert event.device_info.type == "phone"
    assert event.device_info.params["to_number"] == "+15552220000"
    assert event.device_info is event.device_info  # structured once, then cached
    assert event.params is STATE


def test_dial_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_DIAL, DIAL))
    assert isinstance(event, DialEvent)
    assert event.call_id == ""  # no top-level call_id on dial events
    assert event.node_id == NODE_ID
    assert event.tag == "5b1f0c2e-7d3a-4e9b-a6c8-1f2e3d4c5b6a"
    assert event.dial_state == "answered"
    assert event.call is DIAL["call"]
    assert event.winner_call_id == "d9c8b7a6-5f4e-4d3c-9b2a-1f0e9d8c7b6a"
    info = event.call_info
    assert info == DialCallInfo(
        call_id="d9c8b7a6-5f4e-4d3c-9b2a-1f0e9d8c7b6a",
        node_id=NODE_ID,
        tag="5b1f0c2e-7d3a-4e9b-a6c8-1f2e3d4c5b6a",
        device=Device(
            type="phone", params={"from_number": "+15559876543", "to_number": "+15551234567"}
        ),
        dial_winner=True,
    )


def test_failed_dial_event() -> None:
    event = make_event(
        constants.EVENT_CALL_DIAL,
        {"node_id": NODE_ID, "tag": "T1", "dial_state": "failed", "call": {}},
    )
    assert isinstance(event, DialEvent)
    assert event.call == {}
    assert event.call_info is None
    assert event.winner_call_id == ""


def test_connect_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_CONNECT, CONNECT))
    assert isinstance(event, ConnectEvent)
    assert event.connect_state == constants.CONNECT_STATE_CONNECTED
    assert event.tag == "agent-bridge-1"
    assert event.peer is CONNECT["peer"]
    assert event.peer_info == PeerInfo(
        call_id="e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9",
        node_id=NODE_ID,
        tag="agent-bridge-1",
        device=Device(
            type="phone", params={"from_number": "+15559876543", "to_number": "+19184238080"}
        ),
    )
    # The test frame of the official suite carries only call_id/node_id.
    bare = make_event(constants.EVENT_CALL_CONNECT, {"peer": {"call_id": "P", "node_id": "N"}})
    assert isinstance(bare, ConnectEvent)
    assert bare.peer_info == PeerInfo(call_id="P", node_id="N")


def test_play_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_PLAY, PLAY))
    assert isinstance(event, PlayEvent)
    assert event.control_id == "0f6d2b8e-4c1a-4e3b-9d5f-7a2c6e1b3d90"
    assert event.state == constants.PLAY_STATE_FINISHED
    assert event.params is PLAY
    assert event.params.get("state") == "finished"  # guide: event.params.get('state')


def test_collect_event_typed_accessors() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_COLLECT, COLLECT))
    assert isinstance(event, CollectEvent)
    assert event.control_id == "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
    assert event.state == "finished"
    assert event.final is True
    assert event.is_final is True
    assert event.result_type == "digit"
    assert event.digits == "1234"
    assert event.terminator == "#"
    assert event.text == ""
    assert event.confidence == 0.0
    assert event.collect_result == CollectResult(
        type="digit", params={"digits": "1234", "terminator": "#"}
    )


def test_collect_speech_result() -> None:
    inner = {
        "control_id": "K",
        "result": {"type": "speech", "params": {"text": "sales", "confidence": 0.93}},
    }
    event = make_event(constants.EVENT_CALL_COLLECT, inner)
    assert isinstance(event, CollectEvent)
    assert event.result_type == "speech"
    assert event.text == "sales"
    assert event.confidence == 0.93
    assert event.digits == ""


def test_collect_final_semantics() -> None:
    def collect(**inner: Any) -> CollectEvent:
        event = make_event(constants.EVENT_CALL_COLLECT, inner)
        assert isinstance(event, CollectEvent)
        return event

    assert collect().final is None
    assert collect().is_final is True
    assert collect(final=False).final is False
    assert collect(final=False).is_final is False
    assert collect(final="yes").final is None
    assert collect(final="yes").is_final is True


def test_collect_bare_no_input() -> None:
    event = make_event(constants.EVENT_CALL_COLLECT, {"control_id": "K", "state": "no_input"})
    assert isinstance(event, CollectEvent)
    assert event.state == "no_input"
    assert event.result == {}
    assert event.collect_result is None
    assert event.result_type == ""
    assert event.params is event.raw_params


def test_record_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_RECORD, RECORD))
    assert isinstance(event, RecordEvent)
    assert event.control_id == "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"
    assert event.state == constants.RECORD_STATE_FINISHED
    assert event.url == "https://files.signalwire.com/recordings/rec-7e8f.wav"
    assert event.duration == 15.5
    assert event.size == 128000
    assert event.record["audio"] == {"format": "wav", "stereo": True, "direction": "both"}


def test_record_values_inside_record_win() -> None:
    inner = {
        "url": "top.wav",
        "duration": 1.0,
        "size": 1,
        "record": {"url": "inner.wav", "duration": 2, "size": 2.0},
    }
    event = make_event(constants.EVENT_CALL_RECORD, inner)
    assert isinstance(event, RecordEvent)
    assert (event.url, event.duration, event.size) == ("inner.wav", 2.0, 2)
    assert event.params["record"] == {"url": "inner.wav", "duration": 2, "size": 2.0}
    assert event.params is inner  # nothing to add


def test_record_mistyped_inner_value_falls_back_to_top_level() -> None:
    inner = {"url": "top.wav", "duration": 3.5, "record": {"url": 5, "duration": "abc"}}
    event = make_event(constants.EVENT_CALL_RECORD, inner)
    assert isinstance(event, RecordEvent)
    assert event.url == "top.wav"
    assert event.duration == 3.5
    assert event.size == 0


def test_record_without_record_object_gets_one_in_params() -> None:
    inner = {"state": "finished", "url": "a.mp3", "duration": 4.0}
    event = make_event(constants.EVENT_CALL_RECORD, inner)
    assert event.params["record"] == {"url": "a.mp3", "duration": 4.0}
    assert "record" not in inner


def test_record_with_junk_record_is_left_alone() -> None:
    inner = {"url": "a.mp3", "record": ["junk"]}
    event = make_event(constants.EVENT_CALL_RECORD, inner)
    assert isinstance(event, RecordEvent)
    assert event.params is inner
    assert event.record == {}
    assert event.url == "a.mp3"


def test_detect_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_DETECT, DETECT))
    assert isinstance(event, DetectEvent)
    assert event.control_id == "9b8a7c6d"
    assert event.detect == {"type": "machine", "params": {"event": "HUMAN"}}
    assert event.detect_type == constants.DETECT_TYPE_MACHINE
    assert event.detect_event == "HUMAN"
    assert event.state == ""
    assert event.detect_result == DetectResult(type="machine", params={"event": "HUMAN"})
    # guide: machine_result = result.params.get("detect", {})
    assert event.params.get("detect", {}) == {"type": "machine", "params": {"event": "HUMAN"}}


def test_fax_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_FAX, FAX))
    assert isinstance(event, FaxEvent)
    assert event.control_id == "3c4d5e6f"
    assert event.fax == FAX["fax"]
    assert event.fax_type == "page"
    done = make_event(constants.EVENT_CALL_FAX, {"state": "finished", "fax": {"type": "finished"}})
    assert isinstance(done, FaxEvent)
    assert (done.state, done.fax_type) == ("finished", "finished")


def test_tap_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_TAP, TAP))
    assert isinstance(event, TapEvent)
    assert event.state == "tapping"
    assert event.tap == {"type": "audio", "params": {"direction": "speak"}}
    assert event.device == {"type": "rtp", "params": {"addr": "1.2.3.4", "port": 1234}}
    assert event.device_info == Device(type="rtp", params={"addr": "1.2.3.4", "port": 1234})


def test_stream_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_STREAM, STREAM))
    assert isinstance(event, StreamEvent)
    assert (event.control_id, event.state) == ("8d9e0f1a", "streaming")
    assert (event.url, event.name) == ("wss://example.com/audio", "my_stream")


def test_transcribe_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_TRANSCRIBE, TRANSCRIBE))
    assert isinstance(event, TranscribeEvent)
    assert event.state == "finished"
    assert event.url == "recordings/abc.wav"
    assert event.recording_id == "r1"
    assert event.duration == 30.0
    assert event.size == 123456


def test_send_digits_pay_hold_echo_ai_events() -> None:
    cases: list[tuple[str, type[RelayEvent], str]] = [
        (constants.EVENT_CALL_SEND_DIGITS, SendDigitsEvent, "finished"),
        (constants.EVENT_CALL_PAY, PayEvent, "finished"),
        (constants.EVENT_CALL_HOLD, HoldEvent, "hold"),
        (constants.EVENT_CALL_ECHO, EchoEvent, "echoing"),
        (constants.EVENT_CALL_AI, AIEvent, "finished"),
    ]
    for event_type, cls, state in cases:
        event = parse_event(envelope(event_type, FRAMES[event_type]))
        assert type(event) is cls
        assert typing.cast(Any, event).state == state
        assert event.call_id == CALL_ID
    assert parse_event(envelope(constants.EVENT_CALL_PAY, PAY)).control_id == "6f7a8b9c"


def test_refer_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_REFER, REFER))
    assert isinstance(event, ReferEvent)
    assert event.state == "success"
    assert event.sip_refer_to == "sip:user@example.com"
    assert event.sip_refer_response_code == "202"
    assert event.sip_notify_response_code == "200"
    numeric = make_event(constants.EVENT_CALL_REFER, {"sip_refer_response_code": 202})
    assert isinstance(numeric, ReferEvent)
    assert numeric.sip_refer_response_code == "202"


def test_denoise_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_DENOISE, DENOISE))
    assert isinstance(event, DenoiseEvent)
    assert event.denoised is True
    absent = make_event(constants.EVENT_CALL_DENOISE, {"call_id": CALL_ID})
    assert isinstance(absent, DenoiseEvent)
    assert absent.denoised is False


def test_queue_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALL_QUEUE, QUEUE))
    assert isinstance(event, QueueEvent)
    assert event.control_id == "q-ctl"
    assert event.status == "enqueue"
    assert event.queue_id == "q1"
    assert event.queue_name == "support"
    assert event.position == 3
    assert event.size == 10


def test_conference_event() -> None:
    event = parse_event(envelope(constants.EVENT_CONFERENCE, CONFERENCE))
    assert isinstance(event, ConferenceEvent)
    assert event.call_id == ""
    assert event.conference_id == "a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d"
    assert event.name == "team-standup"
    assert event.status == "conference-start"


def test_calling_error_event() -> None:
    event = parse_event(envelope(constants.EVENT_CALLING_ERROR, CALLING_ERROR))
    assert isinstance(event, CallingErrorEvent)
    assert event.code == "5001"
    assert event.message == "synthetic error"


def test_message_state_event() -> None:
    event = parse_event(envelope(constants.EVENT_MESSAGING_STATE, MESSAGE_STATE))
    assert isinstance(event, MessageStateEvent)
    assert event.message_id == "2f1e0d9c-8b7a-4654-9321-0fedcba98765"
    assert event.context == "default"
    assert event.direction == "outbound"
    assert event.from_number == "+15551111111"
    assert event.to_number == "+15552222222"
    assert event.body == "Hello from SignalWire!"
    assert event.media == []
    assert event.segments == 1
    assert event.message_state == constants.MESSAGE_STATE_UNDELIVERED
    assert event.message_state in constants.MESSAGE_TERMINAL_STATES
    assert event.reason == "carrier_blocked"
    assert event.tags == ["vip"]
    assert event.call_id == ""


def test_message_receive_event() -> None:
    event = parse_event(envelope(constants.EVENT_MESSAGING_RECEIVE, MESSAGE_RECEIVE))
    assert isinstance(event, MessageReceiveEvent)
    assert event.message_id == "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
    assert event.direction == "inbound"
    assert event.media == ["https://example.com/photo.jpg"]
    assert event.segments == 2
    assert event.message_state == constants.MESSAGE_STATE_RECEIVED
    assert event.tags == []
    assert not hasattr(event, "reason")


def test_message_media_drops_non_strings() -> None:
    event = make_event(constants.EVENT_MESSAGING_RECEIVE, {"media": ["a", 1, None, "b"]})
    assert isinstance(event, MessageReceiveEvent)
    assert event.media == ["a", "b"]


# -- Official attribute names ------------------------------------------------------------

# Every attribute of the official dataclasses (signalwire/relay/event.py), per class.
OFFICIAL_BASE = ("event_type", "params", "call_id", "timestamp")
OFFICIAL_NAMES: dict[type[RelayEvent], tuple[str, ...]] = {
    CallStateEvent: ("call_state", "end_reason", "direction", "device"),
    CallReceiveEvent: (
        "call_state", "direction", "device", "node_id", "project_id", "context",
        "segment_id", "tag",
    ),
    PlayEvent: ("control_id", "state"),
    RecordEvent: ("control_id", "state", "url", "duration", "size", "record"),
    CollectEvent: ("control_id", "state", "result", "final"),
    ConnectEvent: ("connect_state", "peer"),
    DetectEvent: ("control_id", "detect"),
    FaxEvent: ("control_id", "fax"),
    TapEvent: ("control_id", "state", "tap", "device"),
    StreamEvent: ("control_id", "state", "url", "name"),
    SendDigitsEvent: ("control_id", "state"),
    DialEvent: ("tag", "dial_state", "call"),
    ReferEvent: ("state", "sip_refer_to", "sip_refer_response_code", "sip_notify_response_code"),
    DenoiseEvent: ("denoised",),
    PayEvent: ("control_id", "state"),
    QueueEvent: ("control_id", "status", "queue_id", "queue_name", "position", "size"),
    EchoEvent: ("state",),
    TranscribeEvent: ("control_id", "state", "url", "recording_id", "duration", "size"),
    HoldEvent: ("state",),
    ConferenceEvent: ("conference_id", "name", "status"),
    CallingErrorEvent: ("code", "message"),
    MessageReceiveEvent: (
        "message_id", "context", "direction", "from_number", "to_number", "body", "media",
        "segments", "message_state", "tags",
    ),
    MessageStateEvent: (
        "message_id", "context", "direction", "from_number", "to_number", "body", "media",
        "segments", "message_state", "reason", "tags",
    ),
}  # fmt: skip


@pytest.mark.parametrize("cls", list(OFFICIAL_NAMES), ids=lambda cls: cls.__name__)
def test_official_attribute_names_exist_with_official_defaults(cls: type[RelayEvent]) -> None:
    event = cls("x", {})
    for name in (*OFFICIAL_BASE, *OFFICIAL_NAMES[cls]):
        value = getattr(event, name)
        assert value in ("", 0, 0.0, {}, [], None, False, "x"), (name, value)
    assert hasattr(cls, "from_payload")


def test_from_payload_builds_the_requested_class() -> None:
    event = PlayEvent.from_payload(envelope(constants.EVENT_CALL_PLAY, PLAY))
    assert type(event) is PlayEvent
    assert event.timestamp == TS
    assert type(RelayEvent.from_payload(envelope(constants.EVENT_CALL_PLAY, PLAY))) is RelayEvent


# -- The guide's documented lookups on wire-shaped frames --------------------------------


def test_guide_digit_lookup_on_wire_collect_event() -> None:
    inner = {
        "call_id": "C1",
        "control_id": "K1",
        "result": {"type": "digit", "params": {"digits": "1", "terminator": ""}},
    }
    snapshot = copy.deepcopy(inner)
    result = parse_event(envelope(constants.EVENT_CALL_COLLECT, inner))

    digit = result.params.get("result", {}).get("digits", "")

    assert digit == "1"
    # The wire shape keeps working on the same dict.
    assert result.params["result"]["params"]["digits"] == "1"
    assert result.params["result"]["type"] == "digit"
    assert result.raw_params is inner
    assert inner == snapshot
    assert "digits" not in inner["result"]


def test_guide_digit_lookup_never_overwrites_wire_keys() -> None:
    inner = {"result": {"type": "digit", "params": {"type": "bogus", "digits": "7"}}}
    event = make_event(constants.EVENT_CALL_COLLECT, inner)
    assert event.params["result"]["type"] == "digit"
    assert event.params["result"]["digits"] == "7"
    assert inner["result"]["params"] == {"type": "bogus", "digits": "7"}


def test_guide_record_url_lookup_on_wire_record_event() -> None:
    snapshot = copy.deepcopy(RECORD)
    result = parse_event(envelope(constants.EVENT_CALL_RECORD, RECORD))

    url = result.params.get("record", {}).get("url", "")

    assert url == "https://files.signalwire.com/recordings/rec-7e8f.wav"
    assert result.params["record"]["duration"] == 15.5
    assert result.params["record"]["size"] == 128000
    assert result.params["record"]["audio"] == RECORD["record"]["audio"]  # type: ignore[index]
    assert result.params["url"] == url  # top-level wire key still there
    assert RECORD == snapshot
    assert result.params is not RECORD
    assert result.params is result.params  # computed once


# -- cattrs ------------------------------------------------------------------------------


def test_value_objects_structure_leniently() -> None:
    structure = EVENT_CONVERTER.structure
    assert structure({"type": "sip", "params": {"to": "sip:a"}, "extra": 1}, Device) == Device(
        "sip", {"to": "sip:a"}
    )
    assert structure({}, Device) == Device()
    assert structure({"type": 5, "params": []}, Device) == Device()
    assert structure({"call_id": "P", "device": "phone"}, PeerInfo) == PeerInfo(call_id="P")
    assert structure({"dial_winner": "yes", "device": []}, DialCallInfo) == DialCallInfo()
    assert structure({"type": "digit", "params": None}, CollectResult) == CollectResult("digit")
    assert structure({"type": "fax", "params": {"event": "CED"}}, DetectResult).params == {
        "event": "CED"
    }


def test_value_objects_on_junk_frames() -> None:
    state = make_event(constants.EVENT_CALL_STATE, {"device": "phone"})
    assert isinstance(state, CallStateEvent)
    assert state.device == {}
    assert state.device_info == Device()
    dial = make_event(constants.EVENT_CALL_DIAL, {"call": ["x"], "dial_state": "answered"})
    assert isinstance(dial, DialEvent)
    assert dial.call_info is None
    assert dial.winner_call_id == ""
    connect = make_event(constants.EVENT_CALL_CONNECT, {"peer": "nobody"})
    assert isinstance(connect, ConnectEvent)
    assert connect.peer_info is None
    collect = make_event(constants.EVENT_CALL_COLLECT, {"result": "1234"})
    assert isinstance(collect, CollectEvent)
    assert collect.collect_result is None
    detect = make_event(constants.EVENT_CALL_DETECT, {"detect": {"type": ["machine"]}})
    assert isinstance(detect, DetectEvent)
    assert detect.detect_result == DetectResult()


def test_value_objects_are_frozen_and_hashable() -> None:
    device = Device("phone", {"to_number": "+1"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        device.type = "sip"  # type: ignore[misc]
    assert hash(device) == hash(Device("phone", {"to_number": "+2"}))
    assert {PeerInfo("a", device=device)}


def test_converter_dispatches_events() -> None:
    payload = envelope(constants.EVENT_CALL_COLLECT, COLLECT)
    event = EVENT_CONVERTER.structure(payload, RelayEvent)
    assert type(event) is CollectEvent
    assert event == parse_event(payload)
    unknown = EVENT_CONVERTER.structure(envelope("x.y", {}), RelayEvent)
    assert type(unknown) is RelayEvent
    forced = EVENT_CONVERTER.structure(payload, PlayEvent)
    assert type(forced) is PlayEvent
    assert EVENT_CONVERTER.unstructure(event) == {
        "event_type": constants.EVENT_CALL_COLLECT,
        "timestamp": TS,
        "params": COLLECT,
    }


# -- Immutability, equality, repr --------------------------------------------------------


@pytest.mark.parametrize("name", ["event_type", "raw_params", "timestamp", "params", "state", "x"])
def test_events_reject_attribute_assignment(name: str) -> None:
    event = parse_event(envelope(constants.EVENT_CALL_COLLECT, COLLECT))
    with pytest.raises(AttributeError):
        setattr(event, name, "changed")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.timestamp = 1.0  # type: ignore[misc]
    assert event.timestamp == TS


def test_events_are_slotted() -> None:
    for cls in ALL_EVENT_CLASSES:
        assert "__dict__" not in dir(cls("x", {})), cls
    assert [field.name for field in attrs.fields(CollectEvent)] == [
        "event_type",
        "raw_params",
        "timestamp",
    ]
    for cls in ALL_EVENT_CLASSES:
        assert attrs.fields(cls) == attrs.fields(RelayEvent)


def test_events_equality_and_hash() -> None:
    first = parse_event(envelope(constants.EVENT_CALL_PLAY, PLAY))
    second = parse_event(envelope(constants.EVENT_CALL_PLAY, dict(PLAY)))
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_event(envelope(constants.EVENT_CALL_PLAY, {**PLAY, "state": "error"}))


def test_repr_is_bounded() -> None:
    huge = {f"key{i}": "v" * 10_000 for i in range(1_000)}
    event = make_event(constants.EVENT_CALL_RECORD, {**huge, "nested": {"a": [list(range(100))]}})
    text = repr(event)
    assert text.startswith("RecordEvent(event_type='calling.call.record'")
    assert len(text) < 400


# -- Robustness: arbitrary JSON never makes a property raise -----------------------------

KNOWN_KEYS = sorted(
    {key for frame in FRAMES.values() for key in frame}
    | {"params", "type", "digits", "terminator", "text", "confidence", "event", "timestamp"}
    | {"protocol", "dial_winner", "call_id", "url", "duration", "size"}
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=8)
)
json_keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=4)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=6)
    ),
    max_leaves=20,
)
inner_params = st.dictionaries(json_keys, json_values, max_size=10)


def check_type(value: object, annotation: object) -> bool:
    """Whether ``value`` conforms to a property's return annotation."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(check_type(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(check_type(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return type(value) is float
    if annotation is int:
        return type(value) is int
    assert isinstance(annotation, type)
    return isinstance(value, annotation)


# Cached properties become slots on attrs classes, so their annotations are listed here.
CACHED_TYPES: dict[str, object] = {
    "params": dict[str, Any],
    "device_info": Device,
    "call_info": DialCallInfo | None,
    "peer_info": PeerInfo | None,
    "collect_result": CollectResult | None,
    "detect_result": DetectResult | None,
}


_declared: dict[tuple[type[Any], str], object] = {}


def declared_type(cls: type[Any], name: str) -> object:
    """The declared type of ``cls.name`` (cached: typing.get_type_hints is slow)."""
    key = (cls, name)
    if key not in _declared:
        _declared[key] = _declared_type(cls, name)
    return _declared[key]


def _declared_type(cls: type[Any], name: str) -> object:
    for klass in cls.__mro__:
        attr = vars(klass).get(name)
        if isinstance(attr, property) and attr.fget is not None:
            return typing.get_type_hints(attr.fget)["return"]
        if name in getattr(klass, "__slots__", ()) and name in CACHED_TYPES:
            return CACHED_TYPES[name]
    return typing.get_type_hints(RelayEvent)[name]  # an attrs field


@pytest.mark.timeout(180)  # CPU-bound (13 s idle): pytest's 60 s only catches a hang
@settings(max_examples=400, deadline=None)
@given(
    inner=inner_params,
    event_type=st.sampled_from(sorted(EVENT_CLASSES)) | st.text(max_size=6),
    timestamp=json_values,
)
def test_no_property_raises_on_arbitrary_params(
    inner: dict[str, Any], event_type: str, timestamp: object
) -> None:
    before = repr(inner)
    event = parse_event({"event_type": event_type, "params": inner, "timestamp": timestamp})
    assert type(event.timestamp) is float
    for cls in {type(event), *ALL_EVENT_CLASSES}:
        candidate = event if cls is type(event) else cls(event_type, inner, event.timestamp)
        for name in public_names(cls):
            value = getattr(candidate, name)
            assert check_type(value, declared_type(cls, name)), (cls.__name__, name, value)
        repr(candidate)
    assert repr(inner) == before  # nothing was written into the wire dict
