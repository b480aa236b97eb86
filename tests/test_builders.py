"""The builders and the call-info values, as pure functions: exact dicts, clear errors.

What the builders send is checked on the wire in ``tests/test_builders_wire.py``; here
each builder is compared with the reference's literal shapes (§10.1, §10.2), every
refused input names what is wrong, and ``Device`` reads phone and SIP devices alike
(reference §17.3), leniently, from whatever a frame holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from relay_anyio import (
    EVENT_CALL_DETECT,
    EVENT_CALL_RECEIVE,
    EVENT_CALL_STATE,
    CallReceiveEvent,
    CallStateEvent,
    DetectEvent,
    Device,
    Media,
    SipHeader,
    parse_event,
)
from relay_anyio._event_values import EVENT_CONVERTER, _structure_value

#: The builders without their signatures: the bad-input tables pass what a type
#: checker would refuse, as an unchecked program can.
_Media: Any = Media
_Device: Any = Device

# -- media (reference §10.1) ---------------------------------------------------------------


def test_media_builders_give_the_reference_shapes() -> None:
    assert Media.tts("Welcome!", language="en-US", gender="female", voice="Polly.Joanna") == {
        "type": "tts",
        "params": {
            "text": "Welcome!",
            "language": "en-US",
            "gender": "female",
            "voice": "Polly.Joanna",
        },
    }
    assert Media.tts("Hi") == {"type": "tts", "params": {"text": "Hi"}}
    assert Media.audio("https://cdn.example.com/greeting.mp3") == {
        "type": "audio",
        "params": {"url": "https://cdn.example.com/greeting.mp3"},
    }
    assert Media.silence(1.5) == {"type": "silence", "params": {"duration": 1.5}}
    assert Media.ringtone("us", duration=10) == {
        "type": "ringtone",
        "params": {"name": "us", "duration": 10},
    }
    assert Media.ringtone("uk") == {"type": "ringtone", "params": {"name": "uk"}}


def test_each_media_item_is_a_new_dict() -> None:
    first, second = Media.tts("Hi"), Media.tts("Hi")
    first["params"]["text"] = "changed"
    assert second == {"type": "tts", "params": {"text": "Hi"}}


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (lambda: _Media.tts(""), ValueError, "text must not be empty"),
        (lambda: _Media.tts(42), TypeError, "text must be a string"),
        (lambda: _Media.tts("Hi", voice=""), ValueError, "voice must not be empty"),
        (lambda: _Media.audio(None), TypeError, "url must be a string"),
        (lambda: _Media.silence(0), ValueError, "seconds must be > 0"),
        (lambda: _Media.silence(-1), ValueError, "seconds must be > 0"),
        (lambda: _Media.silence(float("nan")), ValueError, "seconds must be > 0"),
        (lambda: _Media.silence(True), TypeError, "seconds must be a number"),
        (lambda: _Media.silence("1"), TypeError, "seconds must be a number"),
        (lambda: _Media.ringtone(" "), ValueError, "name must not be empty"),
        (lambda: _Media.ringtone("us", duration=0), ValueError, "duration must be > 0"),
    ],
)
def test_media_builders_refuse_bad_input(build: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        build()


def test_media_is_a_namespace() -> None:
    with pytest.raises(TypeError, match="namespace"):
        _Media()


# -- devices (reference §10.2) ---------------------------------------------------------------


def test_phone_device_gives_the_reference_shape() -> None:
    assert Device.phone("+15551234567", "+15559876543", timeout=30, max_duration=3600) == {
        "type": "phone",
        "params": {
            "to_number": "+15551234567",
            "from_number": "+15559876543",
            "timeout": 30,
            "max_duration": 3600,
        },
    }
    # connect may leave the caller id out (the guide's relay_inbound.py does).
    assert Device.phone("+15552002000") == {
        "type": "phone",
        "params": {"to_number": "+15552002000"},
    }


def test_sip_device_gives_the_reference_shape() -> None:
    device = Device.sip(
        "sip:bob@example.com",
        "sip:alice@example.sip.signalwire.com",
        from_name="Alice",
        headers={"X-Account": "42", "X-Campaign": "spring"},
        codecs=("PCMU", "OPUS"),
        timeout=30,
        webrtc_media=False,
    )
    assert device == {
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
            "timeout": 30,
            "webrtc_media": False,
        },
    }
    assert Device.sip("sip:agent@pbx.example.com") == {
        "type": "sip",
        "params": {"to": "sip:agent@pbx.example.com"},
    }


def test_sip_headers_in_every_accepted_form_give_the_same_wire() -> None:
    wire = [{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"}]
    forms: list[Any] = [
        wire,
        [SipHeader("X-A", "1"), SipHeader("X-A", "2")],  # a repeated header keeps both
        iter([{"name": "X-A", "value": "1"}, SipHeader("X-A", "2")]),
    ]
    for form in forms:
        assert Device.sip("sip:b@x", headers=form)["params"]["headers"] == wire
    assert Device.sip("sip:b@x", headers={})["params"]["headers"] == []


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        (lambda: _Device.phone(""), ValueError, "to must not be empty"),
        (lambda: _Device.phone(15551234567), TypeError, "to must be a string"),
        (lambda: _Device.phone("+1555", ""), ValueError, "from_ must not be empty"),
        (lambda: _Device.phone("+1555", timeout=-5), ValueError, "timeout must be > 0"),
        (lambda: _Device.phone("+1555", max_duration=1.5), TypeError, "whole number"),
        (lambda: _Device.phone("+1555", max_duration=0), ValueError, "max_duration must be > 0"),
        (lambda: _Device.sip(None), TypeError, "to must be a string"),
        (lambda: _Device.sip("sip:b@x", codecs="PCMU"), TypeError, "codecs must be a list"),
        (lambda: _Device.sip("sip:b@x", codecs=["PCMU", ""]), ValueError, "each of codecs"),
        (lambda: _Device.sip("sip:b@x", headers="X-A: 1"), TypeError, "headers must be"),
        (lambda: _Device.sip("sip:b@x", headers={"X-A": 1}), TypeError, "value must be a str"),
        (lambda: _Device.sip("sip:b@x", headers={"": "1"}), ValueError, "header name must not"),
        (lambda: _Device.sip("sip:b@x", headers=[{"name": "X"}]), ValueError, "exactly 'name'"),
        (lambda: _Device.sip("sip:b@x", headers=[("X-A", "1")]), TypeError, "not a SIP header"),
        (lambda: _Device.sip("sip:b@x", webrtc_media=1), TypeError, "webrtc_media must be"),
    ],
)
def test_device_builders_refuse_bad_input(build: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        build()


# -- reading a device (reference §12.1, §17.3) ------------------------------------------------


def structure(wire: object) -> Device:
    device = EVENT_CONVERTER.structure(wire, Device)
    assert isinstance(device, Device)
    return device


def test_a_phone_device_reads_as_from_and_to() -> None:
    device = structure(
        {"type": "phone", "params": {"from_number": "+15551110000", "to_number": "+15552220000"}}
    )
    assert (device.type, device.from_, device.to, device.headers) == (
        "phone",
        "+15551110000",
        "+15552220000",
        (),
    )
    assert device.header("X-Anything") is None


def test_a_sip_device_reads_as_from_to_and_headers() -> None:
    device = structure(
        {
            "type": "sip",
            "params": {
                "from": "sip:alice@example.com",
                "to": "sip:support@example.sip.signalwire.com",
                "headers": [
                    {"name": "X-Account", "value": "42"},
                    {"name": "X-Priority", "value": "high"},
                ],
            },
        }
    )
    assert device.from_ == "sip:alice@example.com"
    assert device.to == "sip:support@example.sip.signalwire.com"
    assert device.headers == (SipHeader("X-Account", "42"), SipHeader("X-Priority", "high"))
    assert device.header("x-account") == "42"  # SIP header names are case-insensitive


def test_sip_headers_as_an_object_are_read_too() -> None:
    # Which shape RELAY uses for an inbound call's headers is unconfirmed (§17.3).
    device = structure(
        {"type": "sip", "params": {"to": "sip:b@x", "headers": {"X-Account": "42", "X-N": 7}}}
    )
    assert device.headers == (SipHeader("X-Account", "42"), SipHeader("X-N", "7"))


def test_reading_a_device_never_raises_on_junk() -> None:
    junk = structure(
        {
            "type": "sip",
            "params": {
                "from": 5,
                "to": ["sip:x"],
                "headers": [
                    "X-A: 1",
                    {"name": "", "value": "1"},
                    {"name": "X-B"},
                    {"name": "X-C", "value": True},
                    {"name": "X-D", "value": "ok"},
                ],
            },
        }
    )
    assert (junk.from_, junk.to, junk.headers) == ("", "", (SipHeader("X-D", "ok"),))
    assert structure({"type": "sip", "params": {"headers": "X-A: 1"}}).headers == ()
    assert _structure_value("phone", Device) is None  # call.device_info then is Device()


def test_the_other_spelling_is_a_fallback() -> None:
    # A device whose keys do not match its type still says who it is from and to.
    odd_phone = structure({"type": "phone", "params": {"from": "+1555", "to": "+1666"}})
    assert (odd_phone.from_, odd_phone.to) == ("+1555", "+1666")
    webrtc = structure({"type": "webrtc", "params": {"from": "+1555", "to": "resource"}})
    assert (webrtc.from_, webrtc.to) == ("+1555", "resource")


def test_a_device_built_by_hand_derives_the_same_fields() -> None:
    device = Device("sip", {"from": "sip:a@x", "headers": [{"name": "X-A", "value": "1"}]})
    assert (device.from_, device.to, device.headers) == ("sip:a@x", "", (SipHeader("X-A", "1"),))
    assert device == structure({"type": "sip", "params": dict(device.params)})


def test_events_give_the_sip_device_typed() -> None:
    sip = {"type": "sip", "params": {"from": "sip:a@x", "to": "sip:b@y"}}
    receive = parse_event(
        {"event_type": EVENT_CALL_RECEIVE, "params": {"call_id": "c", "device": sip}}
    )
    state = parse_event({"event_type": EVENT_CALL_STATE, "params": {"call_id": "c", "device": sip}})
    assert isinstance(receive, CallReceiveEvent) and isinstance(state, CallStateEvent)
    assert receive.device_info.from_ == state.device_info.from_ == "sip:a@x"
    assert receive.device_info.to == "sip:b@y"


# -- detect results (reference §12.8, §17.2) ---------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "human", "machine", "beep"),
    [
        ("HUMAN", True, False, False),
        ("MACHINE", False, True, False),
        ("READY", False, True, True),
        ("NOT_READY", False, True, False),
        ("UNKNOWN", False, False, False),
        ("finished", False, False, False),
        (None, False, False, False),
    ],
)
def test_detect_event_tells_human_machine_and_beep(
    verdict: str | None, human: bool, machine: bool, beep: bool
) -> None:
    event = parse_event(
        {
            "event_type": EVENT_CALL_DETECT,
            "params": {
                "control_id": "k",
                "detect": {"type": "machine", "params": {"event": verdict}},
            },
        }
    )
    assert isinstance(event, DetectEvent)
    assert (event.human, event.machine, event.beep) == (human, machine, beep)
