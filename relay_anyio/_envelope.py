"""The ``signalwire.event`` envelope rules, shared by the session reader and ``parse_event``.

An event arrives as ``{"event_type": ..., "timestamp": ..., "params": {...}}``. The
reader takes the envelope apart on the hot path and ``parse_event`` does it for users
and tests; both must read an odd envelope the same way, so the rule lives here once.

Task events (``queuing.relay.tasks``, reference §17.1) are shaped differently: their
data (``context``, ``message``) sit next to ``event_type``, with no inner ``params``.
Whether the server ever nests them under ``params.params`` like calling events is
unconfirmed, so both shapes are read: the inner dict when there is one, else the
outer params themselves (``event_data``).
"""

from __future__ import annotations

from typing import Any, Final

from ._constants import EVENT_TASK

__all__ = ["FLAT_EVENT_TYPES", "as_float", "event_data", "event_timestamp"]

#: Event types whose data may sit next to ``event_type`` instead of under ``params``.
FLAT_EVENT_TYPES: Final = frozenset({EVENT_TASK})


def as_float(value: object) -> float | None:
    """A JSON number as a float; None for anything else (``bool`` included)."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # a JSON integer too large for a double
            return None
    return None


def event_timestamp(outer: object, inner: dict[str, Any]) -> float:
    """The envelope's timestamp if it is a number, else the inner params' one, else 0.0."""
    value = as_float(outer)
    if value is None:
        value = as_float(inner.get("timestamp"))
    return 0.0 if value is None else value


def event_data(event_type: str, outer: dict[str, Any]) -> object:
    """The object an event's data are read from (not type-checked: the caller does).

    The inner ``params`` (``{}`` when absent); for a flat event type (tasks) without
    an inner dict, the outer params themselves, so a task's ``context`` and
    ``message`` are found in either shape.
    """
    inner = outer.get("params")
    if type(inner) is dict:
        return inner
    if event_type in FLAT_EVENT_TYPES:
        return outer
    return {} if inner is None and "params" not in outer else inner
