"""Calls as the fake server sees them: ``FakeCall``, its scripts and its end.

A ``FakeCall`` is the state of one leg (offer, dial leg, bridge peer) and the test's
handle to drive it (``remote_hangup``, ``script_digits``...). Its server is seen
through ``CallHost``, the few things a call and the method handlers need of it, so
this layer stands below the server instead of importing it. What a call's end winds
down (its actions, its bridge) lives here too, since ``end`` does it; conferences are
in ``_conferences``.
"""

from __future__ import annotations

import functools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import attrs

from .._constants import (
    CALL_STATE_CREATED,
    CALL_STATE_ENDED,
    CALL_STATE_ENDING,
    END_REASON_HANGUP,
    EVENT_CALL_STATE,
    EVENT_CALLING_ERROR,
)
from ._actions import FakeAction, terminal_payload
from ._conferences import FakeConference, conference_event, sessions_of
from ._scripts import (
    BRIDGE_OUTCOMES,
    BridgeAttempt,
    BridgeScript,
    DetectScript,
    DialScript,
    FaxScript,
    MessageScript,
)
from ._session import FakeSession
from ._switches import (
    ACTION_END_CHOICES,
    ActionEnd,
    BridgeUnconnectedEnd,
    DetectEnd,
    RecordUrlLocation,
    SipHeaderShape,
    choice,
)

__all__ = [
    "CallHost",
    "FakeCall",
    "FollowUp",
    "emit_if_active",
    "finish_action",
    "leave_conference",
]

JSONObject = dict[str, Any]

#: A step to run once the response is out: a no-argument coroutine function.
FollowUp = Callable[[], Awaitable[object]]


class CallHost(Protocol):
    """What calls and method handlers use of their server (a ``FakeRelayServer``).

    A protocol rather than the class, so that this layer does not import the server
    (which imports it): handlers get it as ``ctx.server``.
    """

    #: ``nodeid`` of the connect result and default ``node_id`` of calls.
    node_id: str
    project: str
    #: Every call the server knows, by ``call_id``.
    calls: dict[str, FakeCall]
    #: Scripts for the next ``calling.dial`` requests, consumed in order.
    dial_scripts: deque[DialScript]
    #: Scripts for the next ``messaging.send`` requests, consumed in order.
    message_scripts: deque[MessageScript]
    #: Conferences running, by name (empty ones are removed).
    conferences: dict[str, FakeConference]
    play_duration: float
    collect_delay: float
    record_duration: float | None
    action_end_on_call_end: ActionEnd
    late_action_delay: float
    record_url_location: RecordUrlLocation
    record_result_url: bool
    sip_header_shape: SipHeaderShape
    machine_not_ready: bool
    detect_end: DetectEnd
    bridge_peer_events: bool
    bridge_unconnected_end: BridgeUnconnectedEnd
    bridge_failure_reason: bool

    def notify(self) -> None:
        """Wake the server's waiters after a change they may watch."""

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109, RUF100
        what: str = "a condition",
    ) -> None:
        """Wait until ``predicate()`` is true."""

    async def run_after(self, delay: float, follow_up: FollowUp) -> None:
        """Run ``follow_up`` now or, in the server's task group, ``delay`` seconds later."""

    async def end_bridge(self, call: FakeCall) -> None:
        """``call``'s bridge (either leg), or the one it is connecting, ends (``_bridges``)."""


@attrs.define(eq=False)
class FakeCall:
    """A call leg as the fake server sees it: an inbound offer or a dial leg.

    Its events go to the session that owns it (the one it was offered to or that
    dialled it), queued while that session has no connection. ``states`` is the
    history of ``call_state`` values sent, so assertions can check the whole sequence.

    Unscripted, every operation succeeds in the shapes of the reference (§12): a
    collect hears nothing (``no_input``), a detector hears a human, a fax sends one
    page, a payment and a bridge succeed, a tap/stream/transcription/AI session runs
    until stopped or the call ends. ``script_*`` changes the next outcome:
    ``script_digits``/``script_speech``/``script_collect``, ``script_detect``,
    ``script_answering_machine``, ``script_fax``, ``script_pay``, ``script_bridge``,
    ``script_action_error``; ``hold_input``/``give_input`` choose when a collect's
    input comes. ``send_calling_error`` and ``send_event`` push events as the server would.
    """

    server: CallHost = attrs.field(repr=False)
    session: FakeSession = attrs.field(repr=False)
    call_id: str
    node_id: str
    direction: str
    device: JSONObject
    context: str | None = None
    tag: str = ""
    state: str = CALL_STATE_CREATED
    end_reason: str | None = None
    #: Set by ``calling.pass``: the client handed the call back to RELAY.
    passed: bool = False
    #: Every ``call_state`` announced to the session, in order.
    states: list[str] = attrs.field(factory=list, init=False)
    #: Every request frame that named this ``call_id``, in arrival order.
    requests: list[JSONObject] = attrs.field(factory=list, init=False, repr=False)
    actions: dict[str, FakeAction] = attrs.field(factory=dict, init=False, repr=False)
    #: The other leg while bridged by ``calling.connect`` (``connect_state`` says how);
    #: on the peer leg, the call that connected it.
    peer: FakeCall | None = attrs.field(default=None, init=False, repr=False)
    connect_state: str = attrs.field(default="", init=False)
    #: The bridge under way while ``connect_state`` is ``connecting``.
    connecting: BridgeAttempt | None = attrs.field(default=None, init=False, repr=False)
    #: True for a bridge's peer leg, whose state events reach the session only with
    #: ``server.bridge_peer_events`` (reference §17.4).
    bridge_leg: bool = attrs.field(default=False, init=False)
    #: The queue the call waits in (``calling.queue.enter``), if any.
    queue: str | None = attrs.field(default=None, init=False)
    held: bool = attrs.field(default=False, init=False)
    denoised: bool = attrs.field(default=False, init=False)
    #: Send ``calling.call.hold`` on hold/unhold. Off by default: ``calling.hold`` is
    #: missing from the server schema and the old guide calls it "NOT IMPLEMENTED",
    #: so whether RELAY reports it is unconfirmed (the official client's tests do
    #: use ``{"state": "hold"}``).
    hold_events: bool = attrs.field(default=False, init=False)
    _collect_results: deque[JSONObject] = attrs.field(factory=deque, init=False, repr=False)
    _detect_scripts: deque[DetectScript] = attrs.field(factory=deque, init=False, repr=False)
    _failing: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _fax_scripts: deque[FaxScript] = attrs.field(factory=deque, init=False, repr=False)
    _pay_outcomes: deque[JSONObject | None] = attrs.field(factory=deque, init=False, repr=False)
    _connect_outcomes: deque[BridgeScript] = attrs.field(factory=deque, init=False, repr=False)
    #: Collects waiting for ``give_input()`` (see ``hold_input``); ``None``: input flows.
    waiting_input: list[FollowUp] | None = attrs.field(default=None, init=False, repr=False)

    @classmethod
    def register(
        cls,
        server: CallHost,
        session: FakeSession,
        *,
        direction: str,
        device: JSONObject,
        call_id: str | None = None,
        node_id: str | None = None,
        context: str | None = None,
        tag: str = "",
    ) -> FakeCall:
        """Create a call and add it to ``server.calls`` so requests can find it."""
        call = cls(
            server,
            session,
            call_id or str(uuid.uuid4()),
            node_id or server.node_id,
            direction,
            device,
            context=context,
            tag=tag,
        )
        server.calls[call.call_id] = call
        return call

    # -- scripting ---------------------------------------------------------------------

    def script_digits(self, digits: str, terminator: str = "#") -> None:
        """Make the next collect / play_and_collect on this call return these digits."""
        self.script_collect(
            {"type": "digit", "params": {"digits": digits, "terminator": terminator}}
        )

    def script_speech(self, text: str, confidence: float = 0.9) -> None:
        """Make the next collect / play_and_collect return this speech result."""
        self.script_collect({"type": "speech", "params": {"text": text, "confidence": confidence}})

    def script_collect(self, result: JSONObject) -> None:
        """Queue any ``result`` object (``no_match``, ``error``...) for the next collect."""
        self._collect_results.append(result)

    def script_detect(self, event: str = "MACHINE", *more: str, gap: float = 0.0) -> None:
        """Make the next ``calling.detect`` report ``event`` (then ``more``, in order).

        The first at once, each later one ``gap`` seconds after the one before (0: all
        at once), while the detector runs. Unscripted detectors report ``HUMAN``
        (machine), ``CED`` (fax) or ``1`` (digit). What follows the last one is the
        server's ``detect_end``.
        """
        self._detect_scripts.append(DetectScript((event, *more), gap))

    def script_answering_machine(self, greeting: float = 0.0) -> None:
        """Make the next machine detector hear an answering machine (reference §17.2).

        ``MACHINE`` at once, then ``READY`` (the beep) when its greeting of
        ``greeting`` seconds ends; with the server's ``machine_not_ready``, a
        ``NOT_READY`` halfway through the greeting as well. Then ``detect_end``.
        """
        self._detect_scripts.append(DetectScript(greeting=greeting))

    def script_action_error(self, method: str, count: int = 1) -> None:
        """Make the next ``count`` actions started by ``method`` fail with state ``error``.

        For ``calling.tap``, ``calling.stream``, ``calling.transcribe``,
        ``calling.pay``, ``calling.ai``, ``calling.play`` and ``calling.record``
        (record reports ``no_input``); faxes fail with ``fax.type`` ``error``.
        """
        self._failing[method] = self._failing.get(method, 0) + count

    def script_fax(self, pages: int = 1, *, success: bool = True, page_delay: float = 0.0) -> None:
        """How the next fax (sent or received) goes: pages, then its result."""
        self._fax_scripts.append(FaxScript(pages, success, page_delay))

    def script_pay(self, outcome: JSONObject | None) -> None:
        """The event that ends the next ``calling.pay``: e.g. ``{"state": "error"}``.

        ``None`` keeps the payment running until ``stop`` or the end of the call.
        Unscripted payments finish at once with ``{"state": "finished"}``.
        """
        self._pay_outcomes.append(outcome)

    def script_bridge(self, outcome: str = "connected", *, delay: float = 0.0) -> None:
        """How the next ``calling.connect`` (``bridge()``, ``connect()``) on this call goes.

        ``connected`` (also unscripted): the first device answers and becomes the
        peer leg, ``call.peer`` (``await call.peer.remote_hangup()``: the other party
        hangs up). ``failed``, ``busy``, ``no_answer``, ``decline``: a ``failed``
        event (with a ``reason`` under ``server.bridge_failure_reason``). ``delay``
        seconds pass between ``connecting`` and the outcome; meanwhile the bridge
        can be called off (see ``server.bridge_unconnected_end``).
        """
        if outcome not in BRIDGE_OUTCOMES:
            known = ", ".join(BRIDGE_OUTCOMES)
            raise ValueError(f"unknown bridge outcome {outcome!r}; known: {known}")
        self._connect_outcomes.append(BridgeScript(outcome, delay))

    def script_connect(self, outcome: str) -> None:
        """``script_bridge(outcome)``, by its first name (``connected`` or ``failed``)."""
        self.script_bridge(outcome)

    def next_bridge_script(self) -> BridgeScript:
        """How the ``calling.connect`` arriving now goes (consumes the script)."""
        return self._connect_outcomes.popleft() if self._connect_outcomes else BridgeScript()

    def next_collect_result(self) -> JSONObject:
        """The scripted result of the next collect, ``no_input`` when none is left."""
        return self._collect_results.popleft() if self._collect_results else {"type": "no_input"}

    def next_detect_script(self, kind: str = "machine") -> DetectScript:
        """What the detector starting now reports (consumes the script); an answering
        machine's events are decided here, by ``server.machine_not_ready``."""
        if not self._detect_scripts:
            return DetectScript((_DEFAULT_DETECT_EVENTS.get(kind, "HUMAN"),))
        script = self._detect_scripts.popleft()
        if script.greeting is None:
            return script
        if self.server.machine_not_ready:
            return DetectScript(("MACHINE", "NOT_READY", "READY"), script.greeting / 2)
        return DetectScript(("MACHINE", "READY"), script.greeting)

    def next_detect_events(self, kind: str = "machine") -> tuple[str, ...]:
        """The detector results the next ``calling.detect`` of ``kind`` reports, in order
        (consumes the script): those of ``next_detect_script``."""
        return self.next_detect_script(kind).events

    def take_failure(self, method: str) -> bool:
        """Whether the action ``method`` starts now was scripted to fail (consumes it)."""
        left = self._failing.get(method, 0)
        if left:
            self._failing[method] = left - 1
        return left > 0

    # -- driving the call from the test ------------------------------------------------

    def hold_input(self) -> None:
        """The caller keeps silent: each collect's input waits for ``give_input()``."""
        if self.waiting_input is None:
            self.waiting_input = []

    async def give_input(self) -> None:
        """The caller answers: waiting collects get their scripted input, and later ones too."""
        waiting, self.waiting_input = self.waiting_input or [], None
        for deliver in waiting:
            await deliver()

    async def remote_hangup(self, reason: str = END_REASON_HANGUP) -> None:
        """The far end hangs up: ``ending``, running actions finish, ``ended``."""
        await self.end(reason)

    async def send_event(self, event_type: str, params: JSONObject) -> None:
        """Send any event to this call's session, ``params`` exactly as given."""
        await self.session.emit(event_type, params)

    async def send_calling_error(
        self, code: str = "5001", message: str = "synthetic error"
    ) -> None:
        """Report an asynchronous failure on this call (``calling.error``; code a string)."""
        params = {"call_id": self.call_id, "node_id": self.node_id, "code": code}
        await self.session.emit(EVENT_CALLING_ERROR, params | {"message": message})

    async def wait_for_state(self, state: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109, RUF100
        """Wait until the call has been in ``state`` (now or earlier)."""
        await self.server.wait_until(
            lambda: state in self.states,
            timeout=timeout,
            what=f"call {self.call_id} to reach state {state!r}",
        )

    # -- state machine (used by handlers) ----------------------------------------------

    async def set_state(
        self,
        state: str,
        *,
        end_reason: str | None = None,
        event_type: str = EVENT_CALL_STATE,
        extra: JSONObject | None = None,
    ) -> None:
        """Move to ``state`` and announce it (``calling.call.state`` unless overridden).

        ``extra`` adds fields to the event, e.g. the ``context`` of a
        ``calling.call.receive``, which announces the ``created`` state of an offer.
        """
        self.state = state
        self.states.append(state)
        if end_reason is not None:
            self.end_reason = end_reason
        self.server.notify()
        if self.bridge_leg and not self.server.bridge_peer_events:
            return  # the peer belongs to the bridge: whether RELAY reports it is unconfirmed
        await self.session.emit(event_type, {**self.state_params(), **(extra or {})})

    def state_params(self) -> JSONObject:
        """The inner params of a ``calling.call.state`` event for the current state."""
        params: JSONObject = {
            "call_id": self.call_id,
            "node_id": self.node_id,
            "tag": self.tag,
            "call_state": self.state,
            "direction": self.direction,
            "device": self.device,
        }
        if self.state == CALL_STATE_ENDED and self.end_reason is not None:
            params["end_reason"] = self.end_reason
        return params

    async def end(self, reason: str = END_REASON_HANGUP) -> None:
        """``ending``, then everything the call was part of winds down, then ``ended``.

        The end of a bridge (``disconnected``) and leaving conferences and queues come
        before ``ended``. So do the terminal events of running actions by default,
        because clients (the official one among them) drop events for a call once it
        has ended and a recording's URL would be lost; whether RELAY orders them so is
        unconfirmed (reference §6.3), hence ``server.action_end_on_call_end``:
        ``"after_ended"`` sends them after ``ended`` (``server.late_action_delay``
        seconds after it), ``"never"`` not at all.
        """
        if self.state in (CALL_STATE_ENDING, CALL_STATE_ENDED):
            return
        server = self.server
        when = choice("action_end_on_call_end", server.action_end_on_call_end, ACTION_END_CHOICES)
        await self.set_state(CALL_STATE_ENDING)
        running = [action for action in self.actions.values() if action.active]
        for action in running:
            if when == "before_ended":
                await finish_action(self, action)
            elif when == "never":
                action.state = "finished"  # over, silently: a late stop sends nothing
        if self.peer is not None or self.connecting is not None:
            await server.end_bridge(self)
        for conference in list(self.server.conferences.values()):
            if self in conference.participants:
                await leave_conference(self, conference)
        self.queue = None
        await self.set_state(CALL_STATE_ENDED, end_reason=reason)
        if when == "after_ended" and running:
            late = functools.partial(_finish_actions, self, running)
            await server.run_after(server.late_action_delay, late)

    def quiet_end(self, reason: str = END_REASON_HANGUP) -> None:
        """End without telling any session (a leg no client controls)."""
        if self.state != CALL_STATE_ENDED:
            self.state = CALL_STATE_ENDED
            self.states.append(CALL_STATE_ENDED)
            self.end_reason = reason
            self.server.notify()

    async def emit_action(
        self, action: FakeAction, payload: JSONObject, *, event_type: str | None = None
    ) -> None:
        """Send an event about ``action``; its ``state`` follows the payload's.

        ``event_type`` overrides the action's own (the prompt of a play_and_collect
        reports through ``calling.call.play`` without changing the collect's state).
        """
        if event_type is None and "state" in payload:
            action.state = payload["state"]
        params = {"call_id": self.call_id, "node_id": self.node_id}
        params |= {"control_id": action.control_id, **payload}
        await self.session.emit(event_type or action.event_type, params)

    async def emit(self, event_type: str, payload: JSONObject) -> None:
        """Send a call event (``call_id`` and ``node_id`` first, then ``payload``)."""
        params = {"call_id": self.call_id, "node_id": self.node_id, **payload}
        await self.session.emit(event_type, params)


_DEFAULT_DETECT_EVENTS: Final = {"machine": "HUMAN", "fax": "CED", "digit": "1"}


async def _finish_actions(call: FakeCall, actions: list[FakeAction]) -> None:
    """The terminal events of ``actions`` still running, in order (after ``ended``)."""
    for action in actions:
        await finish_action(call, action)


async def finish_action(call: FakeCall, action: FakeAction) -> None:
    """Send the terminal event of a still-running action (stop, timer, call end)."""
    if action.active:
        location = call.server.record_url_location
        payload = terminal_payload(action, record_url_location=location, device=call.device)
        if "state" not in payload:  # a fax reports its end inside ``fax``
            action.state = "finished"
        await call.emit_action(action, payload)


async def emit_if_active(call: FakeCall, action: FakeAction, payload: JSONObject) -> None:
    """A delayed outcome: sent unless the action ended meanwhile (stop, call end)."""
    if action.active:
        await call.emit_action(action, payload)


async def leave_conference(call: FakeCall, conference: FakeConference) -> None:
    """``participant-leave``; the last one out also gets ``conference-end``."""
    if call not in conference.participants:
        return
    sessions = sessions_of(conference.participants)
    conference.participants.remove(call)
    left = {"status": "participant-leave", "call_id": call.call_id, "node_id": call.node_id}
    await conference_event(conference, left, sessions)
    if not conference.participants:
        call.server.conferences.pop(conference.name, None)
        await conference_event(conference, {"status": "conference-end"}, [call.session])
