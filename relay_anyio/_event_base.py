"""The event base class: typed, lazy views over RELAY ``signalwire.event`` frames.

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
from typing import Any, Final, Self

import attrs

from ._envelope import event_timestamp
from ._event_values import (
    _dict,
    _str,
)

__all__ = [
    "RelayEvent",
]

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
