"""Typed, lazy views over RELAY ``signalwire.event`` frames.

Why lazy
    Every frame the server pushes becomes one of these objects before it is routed, so
    building them is the hottest path of the SDK (the target is 100k+ events/s per
    process). An event therefore stores exactly what arrived and nothing else: the event
    type, the inner ``params`` dict untouched (``raw_params``) and the envelope
    timestamp. Building one costs a single attrs ``__init__`` and no copying or
    validation. Every typed attribute (``call_id``, ``state``, ``digits``...) is a
    read-only property that looks at ``raw_params`` only when asked, and nested value
    objects (``Device``, ``PeerInfo``...) are structured with cattrs on first
    access and cached. Most events are routed on one or two keys and never have most of
    their attributes read, so paying per attribute read is far cheaper than paying per
    event.

Why properties never raise
    The wire format is open: the server may add keys, omit keys, or send a value of an
    unexpected type. One malformed frame must not kill the reader task, and a listener
    reading ``event.duration`` should not need a ``try``. Every property therefore checks
    the type of what it reads and falls back to the documented default (``""``, ``0``,
    ``0.0``, ``{}``, ``[]``, ``None``), the same defaults the official SDK uses for
    missing keys.

Why ``params`` is a superset for collect and record events
    The official client guide documents ``result.params.get("result", {}).get("digits")``
    for collect results and ``result.params.get("record", {}).get("url")`` for
    recordings, but on the wire the digits sit one level deeper
    (``result.params.digits``) and the recording URL usually sits at the top level, so
    with the official SDK those documented lookups return ``""``. Here
    ``CollectEvent.params`` and ``RecordEvent.params`` add the missing keys to a
    copy (wire keys always win, ``raw_params`` is never modified), which makes the
    guide's code work while every wire-shaped lookup keeps working too. Other events
    return ``raw_params`` itself from ``params``.

Timestamps
    The envelope carries ``timestamp`` next to ``event_type``, one level above the event
    data. The official SDK reads the inner level and so always reports ``0.0``; here the
    outer value wins and the inner one is only a fallback.
"""

from __future__ import annotations

import reprlib
import typing
from collections.abc import Callable
from functools import cached_property
from typing import Any, Final, Self, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._constants import (
    EVENT_CALL_AI,
    EVENT_CALL_COLLECT,
    EVENT_CALL_CONNECT,
    EVENT_CALL_DENOISE,
    EVENT_CALL_DETECT,
    EVENT_CALL_DIAL,
    EVENT_CALL_ECHO,
    EVENT_CALL_FAX,
    EVENT_CALL_HOLD,
    EVENT_CALL_PAY,
    EVENT_CALL_PLAY,
    EVENT_CALL_QUEUE,
    EVENT_CALL_RECEIVE,
    EVENT_CALL_RECORD,
    EVENT_CALL_REFER,
    EVENT_CALL_SEND_DIGITS,
    EVENT_CALL_STATE,
    EVENT_CALL_STREAM,
    EVENT_CALL_TAP,
    EVENT_CALL_TRANSCRIBE,
    EVENT_CALLING_ERROR,
    EVENT_CONFERENCE,
    EVENT_MESSAGING_RECEIVE,
    EVENT_MESSAGING_STATE,
)
from ._envelope import as_float as _as_float
from ._envelope import event_timestamp

__all__ = [
    "EVENT_CLASSES",
    "EVENT_CONVERTER",
    "AIEvent",
    "CallReceiveEvent",
    "CallStateEvent",
    "CallingErrorEvent",
    "CollectEvent",
    "CollectResult",
    "ConferenceEvent",
    "ConnectEvent",
    "DenoiseEvent",
    "DetectEvent",
    "DetectResult",
    "Device",
    "DialCallInfo",
    "DialEvent",
    "EchoEvent",
    "FaxEvent",
    "HoldEvent",
    "MessageReceiveEvent",
    "MessageStateEvent",
    "PayEvent",
    "PeerInfo",
    "PlayEvent",
    "QueueEvent",
    "RecordEvent",
    "ReferEvent",
    "RelayEvent",
    "SendDigitsEvent",
    "StreamEvent",
    "TapEvent",
    "TranscribeEvent",
    "make_event",
    "parse_event",
]

_T = TypeVar("_T")

# -- Defensive readers -------------------------------------------------------------------
# Each takes a value pulled out of the wire dict and returns it only if it has the type
# the caller promises; otherwise the caller's default. ``bool`` is excluded from the
# numeric readers because JSON ``true`` must not read as a duration of 1 second.


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _code(value: object) -> str:
    """Result codes are strings on the wire; accept a bare JSON integer as well."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # 128000.0 is still a byte count
        return int(value)
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    if all(isinstance(item, str) for item in value):
        return value
    return [item for item in value if isinstance(item, str)]


# -- Nested value objects ----------------------------------------------------------------
# Dict-valued fields exclude themselves from hashing so that these frozen objects stay
# hashable (by their scalar fields) while still comparing equal by full value.


@attrs.frozen
class Device:
    """A device object: ``{"type": "phone", "params": {...}}``.

    ``params`` stays a plain dict because its keys depend on ``type`` (phone, sip,
    webrtc, rtp...) and the server may add more.
    """

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class CollectResult:
    """``result`` of a collect event: ``type`` is digit/speech/no_input/no_match/error."""

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class DetectResult:
    """``detect`` of a detect event; the outcome is ``params["event"]``."""

    type: str = ""
    params: dict[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class PeerInfo:
    """``peer`` of a connect event: the other leg of a bridge."""

    call_id: str = ""
    node_id: str = ""
    tag: str = ""
    device: Device | None = None


@attrs.frozen
class DialCallInfo:
    """``call`` of a dial event: the winning leg when ``dial_winner`` is true."""

    call_id: str = ""
    node_id: str = ""
    tag: str = ""
    device: Device | None = None
    dial_winner: bool = False


#: Converter for everything in this module: the nested value objects above (lenient:
#: unknown keys are ignored, missing or mistyped keys give the field default) and the
#: event classes (``EVENT_CONVERTER.structure(payload, RelayEvent)`` dispatches on
#: ``event_type`` exactly like ``parse_event``).
EVENT_CONVERTER: Final = cattrs.Converter()

_STRUCTURE_ERRORS: Final = (
    cattrs.BaseValidationError,
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
)


def _structure_value(value: object, cls: type[_T]) -> _T | None:
    """Structure a wire dict into ``cls``; anything that is not a usable dict gives None.

    The leniency lives in the per-field hooks; the ``except`` is a backstop so that no
    frame, however odd, turns a property read into an exception.
    """
    if not isinstance(value, dict):
        return None
    try:
        return EVENT_CONVERTER.structure(value, cls)
    except _STRUCTURE_ERRORS:
        return None


def _lenient_str(value: object, _: object) -> str:
    return _str(value)


def _lenient_bool(value: object, _: object) -> bool:
    # No truthiness: the string "false" must not become True.
    return value if isinstance(value, bool) else False


def _lenient_dict(value: object, _: object) -> dict[str, Any]:
    return _dict(value)


def _lenient_device(value: object, _: object) -> Device | None:
    return _structure_value(value, Device)


# Keyed by resolved annotation. Per-field overrides (rather than converter-wide hooks for
# ``str``/``bool``) keep the leniency scoped to these wire objects, so EVENT_CONVERTER
# stays a normal strict converter for anything else registered on it.
_LENIENT_FIELD_HOOKS: Final[dict[object, Callable[[object, object], object]]] = {
    str: _lenient_str,
    bool: _lenient_bool,
    dict[str, Any]: _lenient_dict,
    Device | None: _lenient_device,
}


def _register_value_class(cls: type[Any]) -> None:
    hints = typing.get_type_hints(cls)
    # Typed loosely: cattrs types **overrides against its own keyword options too.
    overrides: dict[str, Any] = {
        field.name: override(struct_hook=_LENIENT_FIELD_HOOKS[hints[field.name]])
        for field in attrs.fields(cls)
    }
    hook = make_dict_structure_fn(cls, EVENT_CONVERTER, **overrides)
    EVENT_CONVERTER.register_structure_hook(cls, hook)


for _value_cls in (Device, CollectResult, DetectResult, PeerInfo, DialCallInfo):
    _register_value_class(_value_cls)


# -- Events ------------------------------------------------------------------------------

_PARAMS_REPR: Final = reprlib.Repr()
_PARAMS_REPR.maxlevel = 2
_PARAMS_REPR.maxdict = 4
_PARAMS_REPR.maxlist = 3
_PARAMS_REPR.maxstring = 48
_PARAMS_REPR.maxother = 48


def _short_params_repr(params: dict[str, Any]) -> str:
    """Bounded repr so that logging an event never dumps a large payload."""
    return _PARAMS_REPR.repr(params)


@attrs.frozen
class RelayEvent:
    """One ``signalwire.event``; also the event for types this SDK has no class for.

    Equality compares all three fields; the hash uses only ``event_type`` and
    ``timestamp`` because ``raw_params`` is a dict.
    """

    event_type: str
    #: The inner ``params`` dict exactly as received. Never modified by this module;
    #: treat it as read-only.
    raw_params: dict[str, Any] = attrs.field(repr=_short_params_repr, hash=False)
    #: Seconds since the epoch, from the envelope (see the module docstring).
    timestamp: float = 0.0

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        """Build this class from the outer params object, without dispatching on type.

        Mirrors the official classmethod of the same name; prefer ``parse_event``,
        which picks the class from ``event_type``.
        """
        if not isinstance(payload, dict):
            payload = {}
        event_type = _str(payload.get("event_type"))
        raw = _dict(payload.get("params"))
        return cls(event_type, raw, event_timestamp(payload.get("timestamp"), raw))

    @property
    def params(self) -> dict[str, Any]:
        """The dict user code reads; for most events this is ``raw_params`` itself."""
        return self.raw_params

    @property
    def call_id(self) -> str:
        return _str(self.raw_params.get("call_id"))

    @property
    def node_id(self) -> str:
        return _str(self.raw_params.get("node_id"))

    @property
    def control_id(self) -> str:
        """Correlates the event with the action (play, record...) that produced it."""
        return _str(self.raw_params.get("control_id"))


@attrs.frozen
class _StatefulEvent(RelayEvent):
    """Shared base of the events whose progress is a top-level ``state`` string."""

    @property
    def state(self) -> str:
        return _str(self.raw_params.get("state"))


@attrs.frozen
class CallStateEvent(RelayEvent):
    """``calling.call.state``: a step of the call lifecycle."""

    @property
    def call_state(self) -> str:
        return _str(self.raw_params.get("call_state"))

    @property
    def end_reason(self) -> str:
        """Why the call ended; only present on ``ended``."""
        return _str(self.raw_params.get("end_reason"))

    @property
    def direction(self) -> str:
        return _str(self.raw_params.get("direction"))

    @property
    def device(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("device"))

    @property
    def tag(self) -> str:
        """The dial tag on outbound legs; how legs are matched to a pending dial."""
        return _str(self.raw_params.get("tag"))

    @cached_property
    def device_info(self) -> Device:
        return _structure_value(self.raw_params.get("device"), Device) or Device()


@attrs.frozen
class CallReceiveEvent(RelayEvent):
    """``calling.call.receive``: an inbound call offered on a subscribed context."""

    @property
    def call_state(self) -> str:
        return _str(self.raw_params.get("call_state"))

    @property
    def direction(self) -> str:
        return _str(self.raw_params.get("direction"))

    @property
    def device(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("device"))

    @property
    def project_id(self) -> str:
        return _str(self.raw_params.get("project_id"))

    @property
    def context(self) -> str:
        """The context the call arrived on; some servers send it as ``protocol``."""
        raw = self.raw_params
        return _str(raw.get("context")) or _str(raw.get("protocol"))

    @property
    def segment_id(self) -> str:
        return _str(self.raw_params.get("segment_id"))

    @property
    def tag(self) -> str:
        return _str(self.raw_params.get("tag"))

    @cached_property
    def device_info(self) -> Device:
        return _structure_value(self.raw_params.get("device"), Device) or Device()


@attrs.frozen
class DialEvent(RelayEvent):
    """``calling.call.dial``: outcome of ``calling.dial``.

    It has no top-level ``call_id`` (so ``call_id`` is ``""``); the winning leg is
    in ``call``, see ``winner_call_id``.
    """

    @property
    def tag(self) -> str:
        return _str(self.raw_params.get("tag"))

    @property
    def dial_state(self) -> str:
        """``dialing``, ``answered`` or ``failed``."""
        return _str(self.raw_params.get("dial_state"))

    @property
    def call(self) -> dict[str, Any]:
        """The winning leg on ``answered``; ``{}`` on ``failed``."""
        return _dict(self.raw_params.get("call"))

    @property
    def winner_call_id(self) -> str:
        """``call.call_id`` when the dial was answered (or the leg is marked winner)."""
        call = self.call
        if self.dial_state == "answered" or call.get("dial_winner") is True:
            return _str(call.get("call_id"))
        return ""

    @cached_property
    def call_info(self) -> DialCallInfo | None:
        """None when ``call`` is absent, empty (a failed dial) or not an object."""
        call = self.raw_params.get("call")
        return _structure_value(call, DialCallInfo) if call else None


@attrs.frozen
class ConnectEvent(RelayEvent):
    """``calling.call.connect``: progress of a bridge started with ``calling.connect``."""

    @property
    def connect_state(self) -> str:
        return _str(self.raw_params.get("connect_state"))

    @property
    def peer(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("peer"))

    @property
    def tag(self) -> str:
        return _str(self.raw_params.get("tag"))

    @cached_property
    def peer_info(self) -> PeerInfo | None:
        """None when ``peer`` is absent, empty or not an object."""
        peer = self.raw_params.get("peer")
        return _structure_value(peer, PeerInfo) if peer else None


@attrs.frozen
class PlayEvent(_StatefulEvent):
    """``calling.call.play``; ``state`` is playing/paused/finished/error."""


@attrs.frozen
class CollectEvent(_StatefulEvent):
    """``calling.call.collect``: input gathered by ``collect`` / ``play_and_collect``.

    On the wire the input sits at ``result.params`` (``digits``, ``terminator``, or
    ``text``/``confidence`` for speech). ``params`` and ``result`` additionally
    expose those keys directly under ``result``, as the client guide documents.
    """

    @cached_property
    def params(self) -> dict[str, Any]:
        """``raw_params`` with ``result.params.*`` also copied up into ``result``.

        Keys already present in ``result`` (``type``, ``params``...) are never
        overwritten. When there is nothing to add this is ``raw_params`` itself.
        """
        raw = self.raw_params
        result = raw.get("result")
        if not isinstance(result, dict):
            return raw
        inner = result.get("params")
        if not isinstance(inner, dict):
            return raw
        extra = {key: value for key, value in inner.items() if key not in result}
        if not extra:
            return raw
        return {**raw, "result": {**result, **extra}}

    @property
    def result(self) -> dict[str, Any]:
        """``params["result"]``: the wire ``result`` plus its flattened input keys."""
        return _dict(self.params.get("result"))

    @property
    def final(self) -> bool | None:
        """False for interim (partial/continuous) results; None when not sent."""
        value = self.raw_params.get("final")
        return value if isinstance(value, bool) else None

    @property
    def is_final(self) -> bool:
        """True unless the server explicitly marked this result as interim."""
        return self.final is not False

    def _result_value(self, key: str) -> object:
        """``result.params[key]`` (wire shape), else ``result[key]`` (flat shape)."""
        result = self.raw_params.get("result")
        if not isinstance(result, dict):
            return None
        inner = result.get("params")
        if isinstance(inner, dict) and key in inner:
            return inner[key]
        return result.get(key)

    @property
    def result_type(self) -> str:
        """``digit``, ``speech``, ``no_input``, ``no_match`` or ``error``."""
        return _str(_dict(self.raw_params.get("result")).get("type"))

    @property
    def digits(self) -> str:
        return _str(self._result_value("digits"))

    @property
    def terminator(self) -> str:
        """The terminator key that ended digit input, ``""`` if none did."""
        return _str(self._result_value("terminator"))

    @property
    def text(self) -> str:
        """Recognised speech."""
        return _str(self._result_value("text"))

    @property
    def confidence(self) -> float:
        """Speech recognition confidence; 0.0 when not reported."""
        value = _as_float(self._result_value("confidence"))
        return 0.0 if value is None else value

    @cached_property
    def collect_result(self) -> CollectResult | None:
        """The wire ``result`` (unflattened); None when absent or not an object."""
        return _structure_value(self.raw_params.get("result"), CollectResult)


_RECORD_TOP_LEVEL_KEYS: Final = ("url", "duration", "size")


@attrs.frozen
class RecordEvent(_StatefulEvent):
    """``calling.call.record``; ``state`` is recording/paused/finished/no_input.

    ``url``, ``duration`` and ``size`` may arrive inside ``record`` or at the top level;
    the properties read ``record`` first, and ``params`` exposes both places.
    """

    @cached_property
    def params(self) -> dict[str, Any]:
        """``raw_params`` with top-level ``url``/``duration``/``size`` also in ``record``.

        Values already inside ``record`` win. ``record`` is created when it is missing
        and one of those keys exists; a ``record`` that is not an object is left alone
        (a superset never replaces wire data). When there is nothing to add this is
        ``raw_params`` itself.
        """
        raw = self.raw_params
        record = raw.get("record", {})
        if not isinstance(record, dict):
            return raw
        extra = {
            key: raw[key] for key in _RECORD_TOP_LEVEL_KEYS if key in raw and key not in record
        }
        if not extra:
            return raw
        return {**raw, "record": {**record, **extra}}

    @property
    def record(self) -> dict[str, Any]:
        """``params["record"]``: the wire ``record`` plus the top-level result keys."""
        return _dict(self.params.get("record"))

    def _lookup(self, key: str, reader: Callable[[object], _T | None]) -> _T | None:
        raw = self.raw_params
        record = raw.get("record")
        if isinstance(record, dict):
            value = reader(record.get(key))
            if value is not None:
                return value
        return reader(raw.get(key))

    @property
    def url(self) -> str:
        return self._lookup("url", lambda value: _str(value) or None) or ""

    @property
    def duration(self) -> float:
        """Seconds."""
        value = self._lookup("duration", _as_float)
        return 0.0 if value is None else value

    @property
    def size(self) -> int:
        """Bytes."""
        value = self._lookup("size", _as_int)
        return 0 if value is None else value


@attrs.frozen
class DetectEvent(_StatefulEvent):
    """``calling.call.detect``: the outcome is ``detect.params.event``, not ``state``."""

    @property
    def detect(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("detect"))

    @property
    def detect_type(self) -> str:
        """``machine``, ``fax`` or ``digit``."""
        return _str(self.detect.get("type"))

    @property
    def detect_event(self) -> str:
        """``HUMAN``/``MACHINE``/... for machine, ``CED``/``CNG`` for fax, the digit."""
        return _str(_dict(self.detect.get("params")).get("event"))

    @cached_property
    def detect_result(self) -> DetectResult | None:
        return _structure_value(self.raw_params.get("detect"), DetectResult)


@attrs.frozen
class FaxEvent(_StatefulEvent):
    """``calling.call.fax``: ``fax.type`` ``page`` reports progress per page.

    Completion may come as a top-level ``state`` or as ``fax.type`` ``finished``; both
    are readable here.
    """

    @property
    def fax(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("fax"))

    @property
    def fax_type(self) -> str:
        return _str(self.fax.get("type"))


@attrs.frozen
class TapEvent(_StatefulEvent):
    """``calling.call.tap``; ``state`` is tapping/finished."""

    @property
    def tap(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("tap"))

    @property
    def device(self) -> dict[str, Any]:
        return _dict(self.raw_params.get("device"))

    @cached_property
    def device_info(self) -> Device:
        return _structure_value(self.raw_params.get("device"), Device) or Device()


@attrs.frozen
class StreamEvent(_StatefulEvent):
    """``calling.call.stream``; ``state`` is streaming/finished."""

    @property
    def url(self) -> str:
        return _str(self.raw_params.get("url"))

    @property
    def name(self) -> str:
        return _str(self.raw_params.get("name"))


@attrs.frozen
class SendDigitsEvent(_StatefulEvent):
    """``calling.call.send_digits``."""


@attrs.frozen
class ReferEvent(_StatefulEvent):
    """``calling.call.refer``: SIP REFER progress; the response codes are strings."""

    @property
    def sip_refer_to(self) -> str:
        return _str(self.raw_params.get("sip_refer_to"))

    @property
    def sip_refer_response_code(self) -> str:
        return _code(self.raw_params.get("sip_refer_response_code"))

    @property
    def sip_notify_response_code(self) -> str:
        return _code(self.raw_params.get("sip_notify_response_code"))


@attrs.frozen
class DenoiseEvent(RelayEvent):
    """``calling.call.denoise``."""

    @property
    def denoised(self) -> bool:
        value = self.raw_params.get("denoised")
        return value if isinstance(value, bool) else False


@attrs.frozen
class HoldEvent(_StatefulEvent):
    """``calling.call.hold``."""


@attrs.frozen
class EchoEvent(_StatefulEvent):
    """``calling.call.echo``."""


@attrs.frozen
class PayEvent(_StatefulEvent):
    """``calling.call.pay``; terminal states are finished/error."""


@attrs.frozen
class QueueEvent(RelayEvent):
    """``calling.call.queue``: progress is ``status`` (not ``state``)."""

    @property
    def status(self) -> str:
        return _str(self.raw_params.get("status"))

    @property
    def queue_id(self) -> str:
        """Sent as ``id``."""
        return _str(self.raw_params.get("id"))

    @property
    def queue_name(self) -> str:
        """Sent as ``name``."""
        return _str(self.raw_params.get("name"))

    @property
    def position(self) -> int:
        value = _as_int(self.raw_params.get("position"))
        return 0 if value is None else value

    @property
    def size(self) -> int:
        """Number of calls in the queue."""
        value = _as_int(self.raw_params.get("size"))
        return 0 if value is None else value


@attrs.frozen
class TranscribeEvent(_StatefulEvent):
    """``calling.call.transcribe``."""

    @property
    def url(self) -> str:
        return _str(self.raw_params.get("url"))

    @property
    def recording_id(self) -> str:
        return _str(self.raw_params.get("recording_id"))

    @property
    def duration(self) -> float:
        """Seconds."""
        value = _as_float(self.raw_params.get("duration"))
        return 0.0 if value is None else value

    @property
    def size(self) -> int:
        """Bytes."""
        value = _as_int(self.raw_params.get("size"))
        return 0 if value is None else value


@attrs.frozen
class ConferenceEvent(RelayEvent):
    """``calling.conference``: conference-level ones carry no ``call_id``."""

    @property
    def conference_id(self) -> str:
        return _str(self.raw_params.get("conference_id"))

    @property
    def name(self) -> str:
        return _str(self.raw_params.get("name"))

    @property
    def status(self) -> str:
        return _str(self.raw_params.get("status"))


@attrs.frozen
class CallingErrorEvent(RelayEvent):
    """``calling.error``."""

    @property
    def code(self) -> str:
        """A string on the wire (``"5001"``); a bare integer is accepted too."""
        return _code(self.raw_params.get("code"))

    @property
    def message(self) -> str:
        return _str(self.raw_params.get("message"))


@attrs.frozen
class AIEvent(_StatefulEvent):
    """``calling.call.ai``: end of an AI session (shape unconfirmed; ``state`` assumed)."""


@attrs.frozen
class _MessageEvent(RelayEvent):
    """Fields shared by inbound and outbound message events."""

    @property
    def message_id(self) -> str:
        return _str(self.raw_params.get("message_id"))

    @property
    def context(self) -> str:
        return _str(self.raw_params.get("context"))

    @property
    def direction(self) -> str:
        return _str(self.raw_params.get("direction"))

    @property
    def from_number(self) -> str:
        return _str(self.raw_params.get("from_number"))

    @property
    def to_number(self) -> str:
        return _str(self.raw_params.get("to_number"))

    @property
    def body(self) -> str:
        return _str(self.raw_params.get("body"))

    @property
    def media(self) -> list[str]:
        """Media URLs; non-string entries are dropped."""
        return _str_list(self.raw_params.get("media"))

    @property
    def segments(self) -> int:
        value = _as_int(self.raw_params.get("segments"))
        return 0 if value is None else value

    @property
    def message_state(self) -> str:
        return _str(self.raw_params.get("message_state"))

    @property
    def tags(self) -> list[str]:
        return _str_list(self.raw_params.get("tags"))


@attrs.frozen
class MessageReceiveEvent(_MessageEvent):
    """``messaging.receive``: an inbound SMS/MMS on a subscribed context."""


@attrs.frozen
class MessageStateEvent(_MessageEvent):
    """``messaging.state``: progress of an outbound message."""

    @property
    def reason(self) -> str:
        """Why delivery failed; present on ``undelivered``/``failed``."""
        return _str(self.raw_params.get("reason"))


# -- Dispatch ----------------------------------------------------------------------------

#: ``event_type`` -> class. Types not listed (including ``signalwire.authorization.state``)
#: become a plain ``RelayEvent``.
EVENT_CLASSES: Final[dict[str, type[RelayEvent]]] = {
    EVENT_CALL_STATE: CallStateEvent,
    EVENT_CALL_RECEIVE: CallReceiveEvent,
    EVENT_CALL_DIAL: DialEvent,
    EVENT_CALL_CONNECT: ConnectEvent,
    EVENT_CALL_PLAY: PlayEvent,
    EVENT_CALL_COLLECT: CollectEvent,
    EVENT_CALL_RECORD: RecordEvent,
    EVENT_CALL_DETECT: DetectEvent,
    EVENT_CALL_FAX: FaxEvent,
    EVENT_CALL_TAP: TapEvent,
    EVENT_CALL_STREAM: StreamEvent,
    EVENT_CALL_SEND_DIGITS: SendDigitsEvent,
    EVENT_CALL_REFER: ReferEvent,
    EVENT_CALL_DENOISE: DenoiseEvent,
    EVENT_CALL_HOLD: HoldEvent,
    EVENT_CALL_ECHO: EchoEvent,
    EVENT_CALL_PAY: PayEvent,
    EVENT_CALL_QUEUE: QueueEvent,
    EVENT_CALL_TRANSCRIBE: TranscribeEvent,
    EVENT_CONFERENCE: ConferenceEvent,
    EVENT_CALLING_ERROR: CallingErrorEvent,
    EVENT_CALL_AI: AIEvent,
    EVENT_MESSAGING_RECEIVE: MessageReceiveEvent,
    EVENT_MESSAGING_STATE: MessageStateEvent,
}


def make_event(event_type: str, raw_params: dict[str, Any], timestamp: float = 0.0) -> RelayEvent:
    """Build the event for already-unpacked parts; the reader's fast path.

    The caller guarantees the types (``raw_params`` must be a dict); nothing is checked.
    """
    return EVENT_CLASSES.get(event_type, RelayEvent)(event_type, raw_params, timestamp)


def parse_event(payload: dict[str, Any]) -> RelayEvent:
    """Build the typed event for the outer params of a ``signalwire.event`` frame.

    ``payload`` is ``{"event_type": ..., "params": {...}, "timestamp": ...}``. Malformed
    parts degrade instead of raising: a non-string type gives ``""`` (and a plain
    ``RelayEvent``), non-dict params give ``{}``, a missing timestamp gives the
    inner one or ``0.0``.
    """
    if not isinstance(payload, dict):
        payload = {}
    event_type = payload.get("event_type", "")
    if type(event_type) is not str:
        event_type = _str(event_type)
    raw = payload.get("params")
    if type(raw) is not dict:
        raw = _dict(raw)
    timestamp = payload.get("timestamp")
    if type(timestamp) is not float:
        timestamp = event_timestamp(timestamp, raw)
    return EVENT_CLASSES.get(event_type, RelayEvent)(event_type, raw, timestamp)


def _is_event_class(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, RelayEvent)


def _structure_event(payload: Any, cls: type[RelayEvent]) -> RelayEvent:
    # The base class means "whatever the payload says"; a concrete class is honoured
    # as asked, like ``cls.from_payload``.
    if cls is RelayEvent:
        return parse_event(payload)
    return cls.from_payload(payload)


def _unstructure_event(event: RelayEvent) -> dict[str, Any]:
    return {
        "event_type": event.event_type,
        "timestamp": event.timestamp,
        "params": event.raw_params,
    }


EVENT_CONVERTER.register_structure_hook_func(_is_event_class, _structure_event)
EVENT_CONVERTER.register_unstructure_hook_func(_is_event_class, _unstructure_event)
