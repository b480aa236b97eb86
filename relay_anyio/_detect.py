"""Detect actions, and the answering-machine wait for the beep (reference §12.8, §17.2).

A machine detector keeps reporting: ``MACHINE`` or ``HUMAN`` (or ``UNKNOWN``), then for
a machine ``READY`` when its greeting ends (the beep) and ``NOT_READY`` when it talks
again, until the detector finishes. Waiting for the beep is a client-side rule over
those events (SignalWire's 2.x ``wait_for_beep``, the TypeScript SDK's
``waitForBeep``): nothing extra goes on the wire.
"""

from __future__ import annotations

from typing import ClassVar

from ._actions import ActionHost, CompletedCallback, _Stoppable
from ._constants import (
    DETECT_EVENT_MACHINE,
    DETECT_EVENT_NOT_READY,
    DETECT_EVENT_READY,
    DETECT_EVENT_UNKNOWN,
    EVENT_CALL_DETECT,
)
from ._events import RelayEvent

__all__ = ["DetectAction"]

#: Detector results that mean a machine answered, and those that mean its greeting
#: still runs (a wait for the beep goes on past them).
_MACHINE_EVENTS: frozenset[object] = frozenset(
    {DETECT_EVENT_MACHINE, DETECT_EVENT_READY, DETECT_EVENT_NOT_READY}
)
_STILL_GREETING: frozenset[object] = frozenset({DETECT_EVENT_MACHINE, DETECT_EVENT_NOT_READY})


class DetectAction(_Stoppable):
    """A running ``calling.detect``: its events carry detection updates; ``result`` the verdict.

    By default the first detection result ends it. With ``wait_for_beep`` (reference
    §17.2) a ``MACHINE`` (or ``NOT_READY``: the greeting talks again) does not: the
    next ``READY`` does, so ``result.beep`` is true when the greeting is over.
    ``HUMAN``, ``UNKNOWN`` before any machine, the detector's own ``finished`` /
    ``error`` and the call's end still end it. ``machine`` tells whether a machine
    was reported at all (also when the detector ended before its beep).
    """

    event_type: ClassVar[str] = EVENT_CALL_DETECT
    method_prefix: ClassVar[str] = "calling.detect"

    def __init__(
        self,
        call: ActionHost,
        control_id: str,
        on_completed: CompletedCallback | None = None,
        *,
        wait_for_beep: bool = False,
    ) -> None:
        super().__init__(call, control_id, on_completed)
        #: Whether a ``MACHINE`` waits for the ``READY`` after it.
        self.wait_for_beep: bool = wait_for_beep
        self._machine = False

    @property
    def machine(self) -> bool:
        """True once a machine was reported (``MACHINE``, ``READY`` or ``NOT_READY``)."""
        return self._machine

    def _is_terminal(self, event: RelayEvent) -> bool:
        detect = event.raw_params.get("detect")
        if not (isinstance(detect, dict) and detect):
            return super()._is_terminal(event)
        params = detect.get("params")
        verdict = params.get("event") if isinstance(params, dict) else None
        if verdict in _MACHINE_EVENTS:
            self._machine = True
        if not self.wait_for_beep:
            return True
        if verdict in _STILL_GREETING or (verdict == DETECT_EVENT_UNKNOWN and self._machine):
            return event.raw_params.get("state") in self.terminal_states
        return True
