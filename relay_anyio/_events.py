"""Typed, lazy views over RELAY ``signalwire.event`` frames: the registry and the parser.

Why events are lazy and why their properties never raise: ``_event_base``. The classes
live in ``_call_events``, ``_action_events`` and ``_message_events``, their nested
values in ``_event_values``; this module maps each ``event_type`` to its class and
re-exports them all.
"""

from __future__ import annotations

from typing import Any, Final

from ._action_events import (
    AIEvent,
    CollectEvent,
    DetectEvent,
    EchoEvent,
    FaxEvent,
    HoldEvent,
    PayEvent,
    PlayEvent,
    RecordEvent,
    ReferEvent,
    SendDigitsEvent,
    StreamEvent,
    TapEvent,
    TranscribeEvent,
)
from ._call_events import (
    CallingErrorEvent,
    CallReceiveEvent,
    CallStateEvent,
    ConferenceEvent,
    ConnectEvent,
    DenoiseEvent,
    DialEvent,
    QueueEvent,
)
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
from ._envelope import event_timestamp
from ._event_base import RelayEvent
from ._event_values import (
    EVENT_CONVERTER,
    CollectResult,
    DetectResult,
    Device,
    DialCallInfo,
    PeerInfo,
    _dict,
    _str,
)
from ._message_events import MessageReceiveEvent, MessageStateEvent

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
