"""Messaging events: an inbound SMS/MMS, and the state of one sent."""

from __future__ import annotations

import attrs

from ._event_base import RelayEvent
from ._event_values import (
    _as_int,
    _str,
    _str_list,
)

__all__ = [
    "MessageReceiveEvent",
    "MessageStateEvent",
]


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
