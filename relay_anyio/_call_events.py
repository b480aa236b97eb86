"""Events about a call as a whole: state, receive, dial, connect, queue, conference, errors."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import attrs

from ._event_base import RelayEvent
from ._event_values import (
    Device,
    DialCallInfo,
    PeerInfo,
    _as_int,
    _code,
    _dict,
    _str,
    _structure_value,
)

__all__ = [
    "CallReceiveEvent",
    "CallStateEvent",
    "CallingErrorEvent",
    "ConferenceEvent",
    "ConnectEvent",
    "DenoiseEvent",
    "DialEvent",
    "QueueEvent",
]


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
class DenoiseEvent(RelayEvent):
    """``calling.call.denoise``."""

    @property
    def denoised(self) -> bool:
        value = self.raw_params.get("denoised")
        return value if isinstance(value, bool) else False


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
