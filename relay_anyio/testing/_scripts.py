"""Scripted outcomes: value types saying how the next dial, fax or message goes.

A test scripts the fake's behaviour ahead of the client's request
(``server.script_dial``, ``call.script_fax``, ``script_message``); these are the
frozen records such a script is kept as until the request consumes it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import attrs

from .._constants import (
    END_REASON_BUSY,
    END_REASON_CANCEL,
    END_REASON_DECLINE,
    END_REASON_ERROR,
    END_REASON_NO_ANSWER,
)

__all__ = [
    "BRIDGE_OUTCOMES",
    "DIAL_OUTCOMES",
    "BridgeAttempt",
    "BridgeScript",
    "DetectScript",
    "DialScript",
    "FaxScript",
    "MessageScript",
    "Outcome",
]

#: Outcomes ``FakeRelayServer.script_dial`` accepts, with the ``end_reason`` a leg
#: with that outcome ends with (``answer`` legs that lose the race end with ``cancel``).
DIAL_OUTCOMES: Final[dict[str, str]] = {
    "answer": END_REASON_CANCEL,
    "busy": END_REASON_BUSY,
    "no_answer": END_REASON_NO_ANSWER,
    "decline": END_REASON_DECLINE,
    "error": END_REASON_ERROR,
}


#: Outcomes ``FakeCall.script_bridge`` accepts, with the reason a ``failed`` event
#: carries when the server's ``bridge_failure_reason`` is on (``connected``: none).
BRIDGE_OUTCOMES: Final[dict[str, str]] = {
    "connected": "",
    "failed": END_REASON_ERROR,
    "busy": END_REASON_BUSY,
    "no_answer": END_REASON_NO_ANSWER,
    "decline": END_REASON_DECLINE,
}


@attrs.frozen
class BridgeScript:
    """How the next ``calling.connect`` on a call goes (see ``script_bridge``)."""

    outcome: str = "connected"
    #: Seconds between ``connecting`` and the outcome (the devices ring that long).
    delay: float = 0.0


@attrs.define(eq=False)
class BridgeAttempt:
    """A ``calling.connect`` under way: its device rings until its script says."""

    tag: str
    device: dict[str, Any]
    script: BridgeScript


@attrs.frozen
class DialScript:
    """How the legs of one ``calling.dial`` behave (see ``script_dial``)."""

    outcomes: tuple[str, ...] = ()
    answer_delay: float = 0.0
    #: The first group's ``created``/``ringing`` states go out before the response
    #: (they overtake it, as a server that knows its legs before it answers may do).
    early_states: bool = False

    def outcome(self, leg_index: int) -> str:
        """Legs beyond the scripted list answer, like an unscripted dial."""
        return self.outcomes[leg_index] if leg_index < len(self.outcomes) else "answer"


@attrs.frozen
class DetectScript:
    """What the next ``calling.detect`` on a call reports (see ``script_detect``).

    ``events`` go out in order, the first at once, each later one ``gap`` seconds
    after the one before, while the detector runs (a stop or the call's end cuts the
    rest). ``greeting`` (``script_answering_machine``) stands for a machine whose
    greeting lasts that long; its events follow the server's ``machine_not_ready``,
    read when the detector starts.
    """

    events: tuple[str, ...] = ()
    gap: float = 0.0
    greeting: float | None = None


@attrs.frozen
class FaxScript:
    """How the next ``send_fax``/``receive_fax`` on a call goes (see ``script_fax``)."""

    pages: int = 1
    success: bool = True
    #: Seconds between the start and each page (and the last page and the result).
    page_delay: float = 0.0


#: The fate of a sent message (see ``script_message``).
Outcome = Literal["delivered", "undelivered", "failed", "stall"]


@attrs.frozen
class MessageScript:
    """What happens to one sent message."""

    outcome: Outcome = "delivered"
    #: ``reason`` of an undelivered or failed message.
    reason: str = ""
    #: Seconds between consecutive state events.
    delay: float = 0.0
    #: How many state events are sent *before* the response (they overtake it).
    early_events: int = 0
