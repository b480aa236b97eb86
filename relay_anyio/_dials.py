"""A dial in progress: its legs, its outcome, and the listeners each leg gets.

The router fills it from the dial's events (``Router._maybe_dial_leg``, ``_on_dial_event``);
``Outbound.dial`` waits on it.
"""

from __future__ import annotations

import anyio

from ._call import Call
from ._errors import RelayError
from ._listeners import EventListener

__all__ = ["PendingDial"]


class PendingDial:
    """One ``calling.dial`` waiting for its outcome, by ``tag``; ``listeners`` go on each leg."""

    __slots__ = ("done", "error", "legs", "listeners", "tag", "winner")

    def __init__(self, tag: str, listeners: tuple[tuple[str, EventListener], ...] = ()) -> None:
        self.tag = tag
        self.listeners = listeners
        self.legs: dict[str, Call] = {}
        self.done = anyio.Event()
        self.winner: Call | None = None
        self.error: RelayError | None = None

    def adopt(self, leg: Call) -> None:
        """A leg of this dial, before its first event is delivered: it gets the listeners."""
        self.legs[leg.call_id] = leg
        for event_type, listener in self.listeners:
            leg.on(event_type, listener)
