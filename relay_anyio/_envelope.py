"""The ``signalwire.event`` envelope rules, shared by the session reader and ``parse_event``.

An event arrives as ``{"event_type": ..., "timestamp": ..., "params": {...}}``. The
reader takes the envelope apart on the hot path and ``parse_event`` does it for users
and tests; both must read an odd envelope the same way, so the rule lives here once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_float", "event_timestamp"]


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
