"""What the fake server does when a client sends a method: the handler registry.

Every method the fake understands beyond the session layer (connect, acks, pings sent
by the server) is an entry of ``DEFAULT_HANDLERS``: an async function
``(ctx, params) -> result``. A registry of plain functions, rather than one big
``match``, is what lets each test swap a single behaviour
(``server.set_handler("calling.answer", my_handler)``) and lets later work add methods
without touching the server core.

The events a handler produces must reach the client *after* its response, as they do
from RELAY (a client that registers a waiter only once the response arrives must not
miss them). Handlers therefore never send events themselves: they queue follow-ups
with ``HandlerContext.then``, which the server runs once the response is written.
A follow-up with no delay runs inline, so the event order of a handler is fixed and
tests are deterministic on both backends; a delayed one runs in the server's task
group and keeps going while the client is disconnected (its events are queued on the
session and delivered on resume).
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import attrs

from .._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_CREATED,
    CALL_STATE_ENDED,
    CALL_STATE_ENDING,
    CALL_STATE_RINGING,
    END_REASON_BUSY,
    END_REASON_CANCEL,
    END_REASON_DECLINE,
    END_REASON_ERROR,
    END_REASON_HANGUP,
    END_REASON_NO_ANSWER,
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
    EVENT_CALL_RECORD,
    EVENT_CALL_REFER,
    EVENT_CALL_SEND_DIGITS,
    EVENT_CALL_STATE,
    EVENT_CALL_STREAM,
    EVENT_CALL_TAP,
    EVENT_CALL_TRANSCRIBE,
    EVENT_CALLING_ERROR,
    EVENT_CONFERENCE,
    METHOD_SIGNALWIRE_PING,
    METHOD_SIGNALWIRE_RECEIVE,
    METHOD_SIGNALWIRE_UNRECEIVE,
    PLAY_STATE_FINISHED,
    PLAY_STATE_PAUSED,
    PLAY_STATE_PLAYING,
    RECORD_STATE_RECORDING,
)
from ._messaging import messaging_send
from ._switches import ACTION_END_CHOICES, RECORD_URL_LOCATIONS, RecordUrlLocation, choice
from ._validation import InvalidRequestError

if TYPE_CHECKING:
    from ._server import FakeRelayServer, FakeSession

__all__ = [
    "DEFAULT_HANDLERS",
    "DIAL_OUTCOMES",
    "DialScript",
    "FakeAction",
    "FakeCall",
    "FakeConference",
    "FaxScript",
    "FollowUp",
    "Handler",
    "HandlerContext",
    "JsonRpcError",
    "ResultCodeError",
    "calling_default",
    "conferences",
    "dial_handler",
    "ok",
]

logger = logging.getLogger("relay_anyio.testing")

JSONObject = dict[str, Any]
_T = TypeVar("_T")

#: A step to run once the response is out: a no-argument coroutine function.
FollowUp = Callable[[], Awaitable[object]]

#: A method handler: gets the request context and ``params``, returns the ``result``.
Handler = Callable[["HandlerContext", JSONObject], Awaitable[JSONObject]]

#: Outcomes ``FakeRelayServer.script_dial`` accepts, with the ``end_reason`` a leg
#: with that outcome ends with (``answer`` legs that lose the race end with ``cancel``).
DIAL_OUTCOMES: Final[dict[str, str]] = {
    "answer": END_REASON_CANCEL,
    "busy": END_REASON_BUSY,
    "no_answer": END_REASON_NO_ANSWER,
    "decline": END_REASON_DECLINE,
    "error": END_REASON_ERROR,
}

_TERMINAL_ACTION_STATES: Final = frozenset({"finished", "error", "no_input", "no_match"})
_FAKE_MEDIA_HOST: Final = "https://fake-relay.invalid"
_RECORDING_BYTES_PER_SECOND: Final = 8000


def ok(message: str = "OK", **extra: Any) -> JSONObject:
    """A ``{"code": "200", ...}`` result: what RELAY answers to an accepted command."""
    return {"code": "200", "message": message, **extra}


class ResultCodeError(Exception):
    """Raise in a handler to answer with ``{"code": code, "message": message}`` at once.

    Follow-ups queued before the raise are discarded: a refused command has no effects.
    ``ctx.call`` raises it for unknown (404) and ended (410) calls.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.result: JSONObject = {"code": code, "message": message}


class JsonRpcError(Exception):
    """Raise in a handler to answer with a JSON-RPC ``error`` frame instead of a result."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data


def _invalid_params(message: str) -> InvalidRequestError:
    """A malformed request: refused as ``server.invalid_request_reply`` says, and recorded."""
    return InvalidRequestError(message)


@attrs.frozen
class DialScript:
    """How the legs of one ``calling.dial`` behave (see ``script_dial``)."""

    outcomes: tuple[str, ...] = ()
    answer_delay: float = 0.0

    def outcome(self, leg_index: int) -> str:
        """Legs beyond the scripted list answer, like an unscripted dial."""
        return self.outcomes[leg_index] if leg_index < len(self.outcomes) else "answer"


@attrs.frozen
class FaxScript:
    """How the next ``send_fax``/``receive_fax`` on a call goes (see ``script_fax``)."""

    pages: int = 1
    success: bool = True
    #: Seconds between the start and each page (and the last page and the result).
    page_delay: float = 0.0


@attrs.define(eq=False)
class FakeConference:
    """A conference some calls of the fake server have joined."""

    name: str
    conference_id: str
    participants: list[FakeCall] = attrs.field(factory=list)


_conferences: weakref.WeakKeyDictionary[FakeRelayServer, dict[str, FakeConference]] = (
    weakref.WeakKeyDictionary()
)


def conferences(server: FakeRelayServer) -> dict[str, FakeConference]:
    """The conferences running on ``server``, by name (empty ones are removed)."""
    return _conferences.setdefault(server, {})


@attrs.define(eq=False)
class FakeAction:
    """One operation (play, record, collect, detect...) running on a ``FakeCall``.

    ``kind`` is the method that started it; ``event_type`` the event that carries its
    state. Kept after it finishes so late ``stop``/``pause`` requests still find it.
    """

    control_id: str
    kind: str
    event_type: str
    params: JSONObject
    started_at: float
    state: str = ""
    #: The play timer ran out while paused: finish as soon as it is resumed.
    finish_on_resume: bool = False
    #: Units of work done so far (fax pages).
    progress: int = 0

    @property
    def active(self) -> bool:
        return self.state not in _TERMINAL_ACTION_STATES


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
    ``script_fax``, ``script_pay``, ``script_connect``, ``script_action_error``;
    ``send_calling_error`` and ``send_event`` push events as the server would.
    """

    server: FakeRelayServer = attrs.field(repr=False)
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
    #: The other leg while bridged by ``calling.connect`` (``connect_state`` says how).
    peer: FakeCall | None = attrs.field(default=None, init=False, repr=False)
    connect_state: str = attrs.field(default="", init=False)
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
    _detect_events: deque[tuple[str, ...]] = attrs.field(factory=deque, init=False, repr=False)
    _failing: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _fax_scripts: deque[FaxScript] = attrs.field(factory=deque, init=False, repr=False)
    _pay_outcomes: deque[JSONObject | None] = attrs.field(factory=deque, init=False, repr=False)
    _connect_outcomes: deque[str] = attrs.field(factory=deque, init=False, repr=False)

    @classmethod
    def register(
        cls,
        server: FakeRelayServer,
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

    def script_detect(self, event: str = "MACHINE", *more: str) -> None:
        """Make the next ``calling.detect`` report ``event`` (then ``more``, in order).

        Unscripted detectors report ``HUMAN`` (machine), ``CED`` (fax) or ``1`` (digit).
        """
        self._detect_events.append((event, *more))

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

    def script_connect(self, outcome: str) -> None:
        """``connected`` (the default) or ``failed`` for the next ``calling.connect``."""
        if outcome not in ("connected", "failed"):
            raise ValueError(f"connect outcome must be 'connected' or 'failed', not {outcome!r}")
        self._connect_outcomes.append(outcome)

    def next_collect_result(self) -> JSONObject:
        """The scripted result of the next collect, ``no_input`` when none is left."""
        return self._collect_results.popleft() if self._collect_results else {"type": "no_input"}

    def next_detect_events(self, kind: str = "machine") -> tuple[str, ...]:
        if self._detect_events:
            return self._detect_events.popleft()
        return (_DEFAULT_DETECT_EVENTS.get(kind, "HUMAN"),)

    def next_detect_event(self, kind: str = "machine") -> str:
        return self.next_detect_events(kind)[0]

    def take_failure(self, method: str) -> bool:
        """Whether the action ``method`` starts now was scripted to fail (consumes it)."""
        left = self._failing.get(method, 0)
        if left:
            self._failing[method] = left - 1
        return left > 0

    # -- driving the call from the test ------------------------------------------------

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
        if self.peer is not None:
            await _unbridge(self)
        for conference in list(conferences(self.server).values()):
            if self in conference.participants:
                await _leave_conference(self, conference)
        self.queue = None
        await self.set_state(CALL_STATE_ENDED, end_reason=reason)
        if when == "after_ended" and running:
            late = functools.partial(_finish_actions, self, running)
            await server.run_after(server.late_action_delay, late)

    def quiet_end(self, reason: str = END_REASON_HANGUP) -> None:
        """End without telling any session (a leg no client controls, e.g. a bridge peer)."""
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
        payload = _terminal_payload(call, action)
        if "state" not in payload:  # a fax reports its end inside ``fax``
            action.state = "finished"
        await call.emit_action(action, payload)


def _terminal_payload(call: FakeCall, action: FakeAction) -> JSONObject:
    kind = action.event_type
    if kind == EVENT_CALL_RECORD:
        location = choice(
            "record_url_location", call.server.record_url_location, RECORD_URL_LOCATIONS
        )
        return _record_finished(action, location)
    if kind == EVENT_CALL_COLLECT:
        return _collect_payload({"type": "no_input"})
    if kind == EVENT_CALL_TAP:
        return {"state": "finished", **_tap_fields(action)}
    if kind == EVENT_CALL_STREAM:
        return {"state": "finished", **_stream_fields(action)}
    if kind == EVENT_CALL_TRANSCRIBE:
        return _transcribe_finished(action)
    if kind == EVENT_CALL_FAX:
        pages = action.progress
        return {"fax": _fax_result(call, action, pages, success=False, text="stopped")}
    return {"state": PLAY_STATE_FINISHED}


def _record_finished(action: FakeAction, location: RecordUrlLocation) -> JSONObject:
    """A finished recording: ``url``, ``duration`` and ``size`` where ``location`` says.

    The reference (§12.7) has them at the top level of the params or inside
    ``record``, and tells clients to read ``record.*`` first, then the top level:
    ``"both"`` puts them in both places, ``"top"`` and ``"record"`` only in one.
    """
    duration = round(max(0.0, anyio.current_time() - action.started_at), 3)
    url = _recording_url(action)
    size = int(duration * _RECORDING_BYTES_PER_SECOND)
    record = action.params.get("record")
    audio = record.get("audio", {}) if isinstance(record, dict) else {}
    facts = {"url": url, "duration": duration, "size": size}
    top = facts if location in ("both", "top") else {}
    inner = facts if location in ("both", "record") else {}
    return {"state": "finished", **top, "record": {"audio": audio, **inner}}


def _recording_url(action: FakeAction) -> str:
    record = action.params.get("record")
    audio = record.get("audio", {}) if isinstance(record, dict) else {}
    extension = audio.get("format", "mp3") if isinstance(audio, dict) else "mp3"
    return f"{_FAKE_MEDIA_HOST}/recordings/{action.control_id}.{extension}"


def _collect_payload(result: JSONObject) -> JSONObject:
    """A final ``calling.call.collect``: ``finished`` for input, else the result type."""
    kind = result.get("type")
    state = "finished" if kind in ("digit", "speech") else kind
    return {"result": result, "final": True, "state": state}


@attrs.define(eq=False)
class HandlerContext:
    """What a handler may use: the server, the requesting session, the request.

    ``then`` queues the handler's events; see the module docstring for why events
    never go out from inside the handler.
    """

    server: FakeRelayServer
    session: FakeSession
    #: 1-based number of the WebSocket connection the request came on.
    connection: int
    request: JSONObject
    _follow_ups: list[tuple[float, FollowUp]] = attrs.field(factory=list, init=False)

    @property
    def method(self) -> str:
        return str(self.request["method"])

    @property
    def params(self) -> JSONObject:
        params = self.request.get("params", {})
        return params if isinstance(params, dict) else {}

    @property
    def call(self) -> FakeCall:
        """The call named by ``params.call_id``/``node_id``.

        Raises ``ResultCodeError`` 404 for an unknown call (or a ``node_id`` that
        does not match) and 410 for an ended one, which the server turns into the
        result RELAY gives in those cases.
        """
        params = self.params
        call = _lookup(self.server.calls, params.get("call_id"))
        node_id = params.get("node_id")
        if call is None or (node_id is not None and node_id != call.node_id):
            raise ResultCodeError("404", "Call not found")
        if call.state == CALL_STATE_ENDED:
            raise ResultCodeError("410", "Call is gone")
        return call

    def then(self, follow_up: FollowUp, delay: float = 0.0) -> None:
        """Run ``follow_up`` after the response is written (and ``delay`` seconds more)."""
        self._follow_ups.append((delay, follow_up))

    def emit(self, event_type: str, params: JSONObject) -> None:
        """Send an event to the requesting session after the response."""
        self.then(functools.partial(self.session.emit, event_type, params))

    async def run_follow_ups(self) -> None:
        """Called by the server once the response is out."""
        follow_ups, self._follow_ups = self._follow_ups, []
        for delay, follow_up in follow_ups:
            await self.server.run_after(delay, follow_up)

    def start_action(self, event_type: str) -> tuple[FakeCall, FakeAction]:
        """Register the operation named by ``params.control_id`` on the call."""
        call = self.call
        control_id = self.params.get("control_id")
        if not isinstance(control_id, str) or not control_id:
            raise _invalid_params("control_id is required")
        action = FakeAction(control_id, self.method, event_type, self.params, anyio.current_time())
        call.actions[control_id] = action
        return call, action

    def find_action(self) -> tuple[FakeCall, FakeAction]:
        """The call and the action a control command (``.stop``, ``.pause``...) names."""
        call = self.call
        action = _lookup(call.actions, self.params.get("control_id"))
        if action is None:
            raise ResultCodeError("404", "Control not found")
        return call, action


def _lookup(registry: dict[str, _T], key: object) -> _T | None:
    """``registry[key]`` for a key taken from a frame, which may be of any JSON type."""
    return registry.get(key) if isinstance(key, str) else None


def _accepted(message: str, call: FakeCall, action: FakeAction, **extra: Any) -> JSONObject:
    return ok(message, call_id=call.call_id, control_id=action.control_id, **extra)


# -- session-level methods ---------------------------------------------------------------


def _contexts_param(params: JSONObject) -> list[str]:
    contexts = params.get("contexts", [])
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise _invalid_params("contexts must be a list of strings")
    return contexts


async def _receive(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.session.subscribe(_contexts_param(params))
    return ok("Receiving events")


async def _unreceive(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.session.unsubscribe(_contexts_param(params))
    return ok("Unreceiving events")


async def _ping(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    return {}


# -- call lifecycle ------------------------------------------------------------------------


async def _answer(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.state in (CALL_STATE_CREATED, CALL_STATE_RINGING):
        ctx.then(functools.partial(call.set_state, CALL_STATE_ANSWERED))
    return ok("Answered")


async def _end(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    ctx.then(functools.partial(call.end, str(params.get("reason", END_REASON_HANGUP))))
    return ok("Disconnecting call")


async def _pass(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.call.passed = True
    return ok("Passing call")


async def calling_default(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Accept any command (404/410 still apply to its call): for ``set_handler``.

    The server refuses methods it has no handler for (see ``invalid_request_reply``);
    ``server.set_handler("calling.new_verb", calling_default)`` makes it accept one.
    """
    if "call_id" in params:
        _ = ctx.call
    return ok()


# -- play ------------------------------------------------------------------------------------


async def _play(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_PLAY)
    ctx.then(functools.partial(call.emit_action, action, {"state": PLAY_STATE_PLAYING}))
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    ctx.then(functools.partial(_finish_play, call, action), ctx.server.play_duration)
    return _accepted("Playing", call, action)


async def _finish_play(call: FakeCall, action: FakeAction) -> None:
    if action.state == PLAY_STATE_PAUSED:
        action.finish_on_resume = True
    else:
        await finish_action(call, action)


def _pause_handler(running_state: str) -> Handler:
    """``.pause`` of an action whose running state is ``running_state``."""

    async def pause(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call, action = ctx.find_action()
        if action.state == running_state:
            ctx.then(functools.partial(call.emit_action, action, {"state": PLAY_STATE_PAUSED}))
        return ok("Paused")

    return pause


def _resume_handler(running_state: str) -> Handler:
    """``.resume``: back to ``running_state``, finishing a play whose time ran out."""

    async def resume(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call, action = ctx.find_action()
        if action.state == PLAY_STATE_PAUSED:
            ctx.then(functools.partial(call.emit_action, action, {"state": running_state}))
            if action.finish_on_resume:
                ctx.then(functools.partial(finish_action, call, action))
        return ok("Resumed")

    return resume


async def _stop(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """``.stop`` of any action: its terminal event at once if it is still running."""
    call, action = ctx.find_action()
    ctx.then(functools.partial(finish_action, call, action))
    return ok("Stopped")


async def _control_ack(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Controls with no visible effect (``.volume``): the action must exist."""
    ctx.find_action()
    return ok()


# -- record ----------------------------------------------------------------------------------


async def _record(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_RECORD)
    ctx.then(functools.partial(call.emit_action, action, {"state": RECORD_STATE_RECORDING}))
    if call.take_failure(ctx.method):  # nothing was heard
        ctx.then(functools.partial(call.emit_action, action, {"state": "no_input"}))
    if (duration := ctx.server.record_duration) is not None:
        ctx.then(functools.partial(finish_action, call, action), duration)
    extra = {"url": _recording_url(action)} if ctx.server.record_result_url else {}
    return _accepted("Recording", call, action, **extra)


# -- input ---------------------------------------------------------------------------------


async def _collect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_COLLECT)
    ctx.then(functools.partial(_deliver_collect, call, action), ctx.server.collect_delay)
    return _accepted("Collecting", call, action)


async def _play_and_collect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_COLLECT)
    playing = {"state": PLAY_STATE_PLAYING}
    ctx.then(functools.partial(call.emit_action, action, playing, event_type=EVENT_CALL_PLAY))
    ctx.then(functools.partial(_end_prompt, call, action), ctx.server.play_duration)
    return _accepted("Collecting", call, action)


async def _end_prompt(call: FakeCall, action: FakeAction) -> None:
    """The prompt of a play_and_collect ends; the collect result follows."""
    if not action.active:
        return
    finished = {"state": PLAY_STATE_FINISHED}
    await call.emit_action(action, finished, event_type=EVENT_CALL_PLAY)
    await call.server.run_after(
        call.server.collect_delay, functools.partial(_deliver_collect, call, action)
    )


async def _deliver_collect(call: FakeCall, action: FakeAction) -> None:
    """The input: start of input and partial results if asked for, then the final one.

    Interim results carry ``final: false`` and no ``state`` (their exact shape is
    unconfirmed, reference §12.6); only the last one is ``final: true``.
    """
    if not action.active:
        return
    result = call.next_collect_result()
    spec = action.params.get("collect") if action.kind == "calling.play_and_collect" else None
    spec = spec if isinstance(spec, dict) else action.params
    if result.get("type") in ("digit", "speech"):
        if spec.get("send_start_of_input") is True:
            await call.emit_action(action, {"result": {"type": "start_of_input"}, "final": False})
        if spec.get("partial_results") is True:
            for partial in _partial_results(result):
                await call.emit_action(action, {"result": partial, "final": False})
    await call.emit_action(action, _collect_payload(result))


def _partial_results(result: JSONObject) -> list[JSONObject]:
    """What a recogniser reports before ``result``: growing prefixes of the input."""
    params = result.get("params")
    params = params if isinstance(params, dict) else {}
    if result.get("type") == "digit":
        digits = str(params.get("digits", ""))
        return [{"type": "digit", "params": {"digits": digits[:n]}} for n in range(1, len(digits))]
    words = str(params.get("text", "")).split()
    return [
        {"type": "speech", "params": {"text": " ".join(words[:n]), "confidence": 0.5}}
        for n in range(1, len(words))
    ]


async def _detect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_DETECT)
    spec = params.get("detect")
    kind = spec.get("type", "machine") if isinstance(spec, dict) else "machine"
    ctx.then(functools.partial(_deliver_detect, call, action, str(kind)))
    return _accepted("Detecting", call, action)


async def _deliver_detect(call: FakeCall, action: FakeAction, kind: str) -> None:
    """The scripted detection results, one event each; then the detector is done.

    The first one is the outcome clients wait for; later ones (a machine's
    ``READY``...) only reach listeners.
    """
    action.state = "finished"
    for event in call.next_detect_events(kind):
        detect = {"type": kind, "params": {"event": event}}
        await call.emit_action(action, {"detect": detect})


async def _emit_if_active(call: FakeCall, action: FakeAction, payload: JSONObject) -> None:
    """A delayed outcome: sent unless the action ended meanwhile (stop, call end)."""
    if action.active:
        await call.emit_action(action, payload)


# -- bridging ------------------------------------------------------------------------------


async def _connect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    groups = _device_groups(params)
    if call.peer is not None:
        raise ResultCodeError("409", "Call is already connected")
    outcome = call._connect_outcomes.popleft() if call._connect_outcomes else "connected"
    tag = params.get("tag")
    tag = tag if isinstance(tag, str) else ""
    ctx.then(functools.partial(_bridge, call, groups[0][0], tag, outcome))
    return ok("Connecting", call_id=call.call_id)


async def _bridge(call: FakeCall, device: JSONObject, tag: str, outcome: str) -> None:
    """``connecting``, then ``connected`` with the peer leg (or ``failed``)."""
    if call.state == CALL_STATE_ENDED:
        return
    call.connect_state = "connecting"
    await call.emit(EVENT_CALL_CONNECT, {"tag": tag, "connect_state": "connecting"})
    if outcome == "failed":
        call.connect_state = "failed"
        await call.emit(EVENT_CALL_CONNECT, {"tag": tag, "connect_state": "failed"})
        return
    # The peer belongs to the bridge, not to the client: its state is never announced.
    peer = FakeCall.register(
        call.server, call.session, direction="outbound", device=device, tag=tag
    )
    peer.state = CALL_STATE_ANSWERED
    peer.states.extend((CALL_STATE_CREATED, CALL_STATE_ANSWERED))
    call.peer = peer
    call.connect_state = "connected"
    payload = {"tag": tag, "connect_state": "connected", "peer": _peer_info(peer)}
    await call.emit(EVENT_CALL_CONNECT, payload)


def _peer_info(peer: FakeCall) -> JSONObject:
    return {
        "call_id": peer.call_id,
        "node_id": peer.node_id,
        "tag": peer.tag,
        "device": peer.device,
    }


async def _disconnect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.peer is not None:
        ctx.then(functools.partial(_unbridge, call))
    return ok("Disconnecting")


async def _unbridge(call: FakeCall) -> None:
    """``disconnected``: on ``calling.disconnect`` the peer lives on; on call end it ends."""
    peer, call.peer = call.peer, None
    if peer is None:
        return
    if call.state in (CALL_STATE_ENDING, CALL_STATE_ENDED):
        peer.quiet_end()
    call.connect_state = "disconnected"
    payload = {"tag": peer.tag, "connect_state": "disconnected", "peer": _peer_info(peer)}
    await call.emit(EVENT_CALL_CONNECT, payload)


# -- digits, media taps, streams, transcription --------------------------------------------

_DTMF: Final = re.compile(r"[0-9#*A-DwW]+")


async def _send_digits(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    digits = params.get("digits")
    if not isinstance(digits, str) or not _DTMF.fullmatch(digits):
        raise _invalid_params("digits must be 0-9, #, *, A-D, w or W")
    control_id = params.get("control_id")
    payload: JSONObject = {"control_id": control_id} if isinstance(control_id, str) else {}
    ctx.then(functools.partial(call.emit, EVENT_CALL_SEND_DIGITS, payload | {"state": "finished"}))
    return ok("Sending Digits")


def _tap_fields(action: FakeAction) -> JSONObject:
    return {"tap": action.params.get("tap"), "device": action.params.get("device")}


def _check_tap(params: JSONObject) -> JSONObject:
    tap, device = params.get("tap"), params.get("device")
    if not isinstance(tap, dict) or "type" not in tap or not isinstance(tap.get("params"), dict):
        raise _invalid_params("tap needs both type and params")
    device_params = device.get("params") if isinstance(device, dict) else None
    if not isinstance(device, dict) or not isinstance(device_params, dict):
        raise _invalid_params("device needs type and params")
    needed = {"rtp": ("addr", "port"), "ws": ("uri",)}.get(str(device.get("type")))
    if needed is None or any(key not in device_params for key in needed):
        raise _invalid_params("device must be rtp (addr, port) or ws (uri)")
    return device


async def _tap(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call  # an unknown or ended call is reported before bad params
    device = _check_tap(params)
    call, action = ctx.start_action(EVENT_CALL_TAP)
    ctx.then(
        functools.partial(call.emit_action, action, {"state": "tapping", **_tap_fields(action)})
    )
    if call.take_failure(ctx.method):
        ctx.then(
            functools.partial(call.emit_action, action, {"state": "error", **_tap_fields(action)})
        )
    source = {
        "type": device["type"],
        "params": {"addr": "127.0.0.1", "port": 49152, "codec": "PCMU"},
    }
    return _accepted("Tapping", call, action, source_device=source)


def _stream_fields(action: FakeAction) -> JSONObject:
    fields: JSONObject = {"url": action.params.get("url")}
    if "name" in action.params:
        fields["name"] = action.params["name"]
    return fields


async def _stream(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise _invalid_params("url must be a ws:// or wss:// URL")
    call, action = ctx.start_action(EVENT_CALL_STREAM)
    streaming = {"state": "streaming", **_stream_fields(action)}
    ctx.then(functools.partial(call.emit_action, action, streaming))
    if call.take_failure(ctx.method):
        failed = {"state": "error", **_stream_fields(action)}
        ctx.then(functools.partial(call.emit_action, action, failed))
    return _accepted("Streaming", call, action)


async def _transcribe(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """No event until it ends: the reference knows only the ``finished`` state."""
    call = ctx.call
    if any(a.kind == ctx.method and a.active for a in call.actions.values()):
        raise ResultCodeError("409", "Transcription already in progress")
    call, action = ctx.start_action(EVENT_CALL_TRANSCRIBE)
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    return _accepted("Transcribing", call, action)


def _transcribe_finished(action: FakeAction) -> JSONObject:
    duration = round(max(0.0, anyio.current_time() - action.started_at), 3)
    return {
        "state": "finished",
        "url": f"{_FAKE_MEDIA_HOST}/transcriptions/{action.control_id}.wav",
        "recording_id": action.control_id,
        "duration": duration,
        "size": int(duration * _RECORDING_BYTES_PER_SECOND),
    }


# -- fax and payment -----------------------------------------------------------------------


async def _fax(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Pages (``fax.type`` ``page``), then the result (``fax.type`` ``finished``).

    The result's shape is the older RELAY SDKs' (reference §12.9): no top-level
    ``state``, which is why the official client never sees a fax end.
    """
    _ = ctx.call
    sending = ctx.method == "calling.send_fax"
    if sending and not isinstance(params.get("document"), str):
        raise _invalid_params("document is required")
    call, action = ctx.start_action(EVENT_CALL_FAX)
    script = call._fax_scripts.popleft() if call._fax_scripts else FaxScript()
    failed = call.take_failure(ctx.method)
    ctx.then(functools.partial(_fax_page, call, action, script, 1, failed), script.page_delay)
    return _accepted("Sending fax" if sending else "Receiving fax", call, action)


async def _fax_page(
    call: FakeCall, action: FakeAction, script: FaxScript, number: int, failed: bool
) -> None:
    if not action.active:
        return
    if failed:
        action.state = "error"
        result = _fax_result(call, action, 0, success=False, text="fax error")
        await call.emit_action(action, {"fax": result | {"type": "error"}})
        return
    if number > script.pages:
        action.state = "finished"
        text = "" if script.success else "remote fax machine hung up"
        result = _fax_result(call, action, script.pages, success=script.success, text=text)
        await call.emit_action(action, {"fax": result})
        return
    action.progress = number
    page = {"type": "page", "params": {"direction": _fax_direction(action), "number": number}}
    await call.emit_action(action, {"fax": page})
    follow_up = functools.partial(_fax_page, call, action, script, number + 1, failed)
    await call.server.run_after(script.page_delay, follow_up)


def _fax_direction(action: FakeAction) -> str:
    return "send" if action.kind == "calling.send_fax" else "receive"


def _fax_result(
    call: FakeCall, action: FakeAction, pages: int, *, success: bool, text: str
) -> JSONObject:
    numbers = call.device.get("params", {})
    numbers = numbers if isinstance(numbers, dict) else {}
    document = action.params.get("document") or f"{_FAKE_MEDIA_HOST}/faxes/{action.control_id}.pdf"
    params = {
        "direction": _fax_direction(action),
        "identity": action.params.get("identity", numbers.get("to_number", "")),
        "remote_identity": numbers.get("from_number", ""),
        "document": document,
        "success": success,
        "result": "0" if success else "1",
        "result_text": text,
        "pages": pages,
    }
    return {"type": "finished", "params": params}


async def _pay(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call
    if not isinstance(params.get("payment_connector_url"), str):
        raise _invalid_params("payment_connector_url is required")
    call, action = ctx.start_action(EVENT_CALL_PAY)
    outcome = call._pay_outcomes.popleft() if call._pay_outcomes else {"state": "finished"}
    if call.take_failure(ctx.method):
        outcome = {"state": "error"}
    if outcome is not None:
        follow_up = functools.partial(_emit_if_active, call, action, outcome)
        ctx.then(follow_up, ctx.server.collect_delay)
    return _accepted("Collecting payment", call, action)


# -- queues, refer, denoise, hold, echo, AI ------------------------------------------------


def _queue_name(params: JSONObject) -> str:
    name = params.get("queue_name")
    if not isinstance(name, str) or not name:
        raise _invalid_params("queue_name is required")
    return name


def _queue_event(call: FakeCall, params: JSONObject, status: str, position: int) -> JSONObject:
    name = _queue_name(params)
    size = sum(
        1 for c in call.server.calls.values() if c.queue == name and c.state != CALL_STATE_ENDED
    )
    payload: JSONObject = {}
    if isinstance(params.get("control_id"), str):
        payload["control_id"] = params["control_id"]
    queue_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"queue:{name}"))
    return payload | {
        "status": status,
        "id": queue_id,
        "name": name,
        "position": position,
        "size": size,
    }


async def _queue_enter(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    call.queue = _queue_name(params)
    event = _queue_event(call, params, "enqueue", 0)
    event["position"] = event["size"]
    ctx.then(functools.partial(call.emit, EVENT_CALL_QUEUE, event))
    return ok("Entering Queue")


async def _queue_leave(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.queue != _queue_name(params):
        raise ResultCodeError("404", "Call is not in that queue")
    call.queue = None
    ctx.then(functools.partial(call.emit, EVENT_CALL_QUEUE, _queue_event(call, params, "leave", 0)))
    return ok("Leaving Queue")


async def _refer(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    device = params.get("device")
    target = device.get("params") if isinstance(device, dict) else None
    if not isinstance(target, dict) or not isinstance(target.get("to"), str):
        raise _invalid_params("device must be a sip device with params.to")
    event = {
        "state": "success",
        "sip_refer_to": target["to"],
        "sip_refer_response_code": "202",
        "sip_notify_response_code": "200",
    }
    ctx.then(functools.partial(call.emit, EVENT_CALL_REFER, event))
    return ok("Starting SIP REFER")


def _denoise_handler(on: bool) -> Handler:
    async def denoise(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call = ctx.call
        call.denoised = on
        ctx.then(functools.partial(call.emit, EVENT_CALL_DENOISE, {"denoised": on}))
        return ok("Denoiser on" if on else "Denoiser off")

    return denoise


def _hold_handler(hold: bool) -> Handler:
    async def hold_or_unhold(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call = ctx.call
        call.held = hold
        if call.hold_events:
            state = {"state": "hold" if hold else "unhold"}
            ctx.then(functools.partial(call.emit, EVENT_CALL_HOLD, state))
        return ok()

    return hold_or_unhold


async def _echo(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    ctx.then(functools.partial(call.emit, EVENT_CALL_ECHO, {"state": "echoing"}))
    return ok("Echo started")


async def _ai(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """No event while it runs; ``finished`` on ``calling.ai.stop`` or at call end."""
    call, action = ctx.start_action(EVENT_CALL_AI)
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    return _accepted("AI started", call, action)


def _accept(message: str, *required: str) -> Handler:
    """A command with no visible effect: the call must exist and ``required`` be sent."""

    async def accept(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        _ = ctx.call
        missing = [key for key in required if key not in params]
        if missing:
            raise _invalid_params(f"{', '.join(missing)} required")
        return ok(message)

    return accept


# -- conferences ---------------------------------------------------------------------------


async def _join_conference(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Join (creating it if needed); the result carries ``conference_id``.

    Events: ``conference-start`` (conference-level: no ``call_id``) when it is
    created, then ``participant-join`` (with ``call_id``). Statuses other than
    ``conference-start`` are unconfirmed (reference §12.18).
    """
    call = ctx.call
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid_params("name is required")
    rooms = conferences(ctx.server)
    conference = rooms.get(name)
    created = conference is None
    if conference is None:
        conference = rooms[name] = FakeConference(name, str(uuid.uuid4()))
    if call in conference.participants:
        raise ResultCodeError("409", "Call is already in the conference")
    conference.participants.append(call)
    ctx.then(functools.partial(_announce_join, call, conference, created))
    return ok("Joining conference", conference_id=conference.conference_id)


async def _announce_join(call: FakeCall, conference: FakeConference, created: bool) -> None:
    if created:
        await _conference_event(conference, {"status": "conference-start"}, [call.session])
    joined = {"status": "participant-join", "call_id": call.call_id, "node_id": call.node_id}
    await _conference_event(conference, joined, _sessions(conference.participants))


async def _leave_conference_handler(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    conference_id = params.get("conference_id")
    conference = next(
        (c for c in conferences(ctx.server).values() if c.conference_id == conference_id), None
    )
    if conference is None or call not in conference.participants:
        raise ResultCodeError("404", "Conference not found")
    ctx.then(functools.partial(_leave_conference, call, conference))
    return ok("Leaving conference")


async def _leave_conference(call: FakeCall, conference: FakeConference) -> None:
    """``participant-leave``; the last one out also gets ``conference-end``."""
    if call not in conference.participants:
        return
    sessions = _sessions(conference.participants)
    conference.participants.remove(call)
    left = {"status": "participant-leave", "call_id": call.call_id, "node_id": call.node_id}
    await _conference_event(conference, left, sessions)
    if not conference.participants:
        conferences(call.server).pop(conference.name, None)
        await _conference_event(conference, {"status": "conference-end"}, [call.session])


def _sessions(calls: list[FakeCall]) -> list[FakeSession]:
    return list({id(c.session): c.session for c in calls}.values())


async def _conference_event(
    conference: FakeConference, payload: JSONObject, sessions: list[FakeSession]
) -> None:
    params = {"conference_id": conference.conference_id, "name": conference.name, **payload}
    for session in sessions:
        await session.emit(EVENT_CONFERENCE, params)


# -- dial ----------------------------------------------------------------------------------


def _device_groups(params: JSONObject) -> list[list[JSONObject]]:
    devices = params.get("devices")
    if (
        not isinstance(devices, list)
        or not devices
        or not all(isinstance(group, list) and group for group in devices)
    ):
        raise _invalid_params("devices must be a non-empty list of non-empty lists")
    return devices


async def _dial(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    scripts = ctx.server.dial_scripts
    return _start_dial(ctx, params, scripts.popleft() if scripts else None)


def dial_handler(script_for: Callable[[JSONObject], DialScript | None]) -> Handler:
    """A ``calling.dial`` handler that picks each dial's script from its params.

    ``server.script_dial`` scripts dials in arrival order, which concurrent dials do
    not fix; ``server.set_handler("calling.dial", dial_handler(lambda p: ...))`` can
    choose by tag or device instead. ``None`` means unscripted (every leg answers).
    """

    async def dial(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        return _start_dial(ctx, params, script_for(params))

    return dial


def _start_dial(ctx: HandlerContext, params: JSONObject, script: DialScript | None) -> JSONObject:
    tag = params.get("tag")
    if not isinstance(tag, str) or not tag:
        raise _invalid_params("tag is required")
    groups = _device_groups(params)
    dial = _Dial(ctx.server, ctx.session, tag, groups, script or DialScript())
    ctx.then(functools.partial(dial.ring_group, 0))
    return ok("Dialing")


@attrs.define(eq=False)
class _Dial:
    """One ``calling.dial``: groups are tried in order, the legs of a group in parallel."""

    server: FakeRelayServer
    session: FakeSession
    tag: str
    groups: list[list[JSONObject]]
    script: DialScript
    _legs_started: int = 0

    async def ring_group(self, index: int) -> None:
        if index == len(self.groups):
            await self._report("failed", {})
            return
        legs = [self._new_leg(device) for device in self.groups[index]]
        for state in (CALL_STATE_CREATED, CALL_STATE_RINGING):
            for leg, _ in legs:
                if leg.state != CALL_STATE_ENDED:  # the client may end a leg at once
                    await leg.set_state(state)
        resolve = functools.partial(self._resolve_group, index, legs)
        await self.server.run_after(self.script.answer_delay, resolve)

    def _new_leg(self, device: JSONObject) -> tuple[FakeCall, str]:
        outcome = self.script.outcome(self._legs_started)
        self._legs_started += 1
        leg = FakeCall.register(
            self.server, self.session, direction="outbound", device=device, tag=self.tag
        )
        return leg, outcome

    async def _resolve_group(self, index: int, legs: list[tuple[FakeCall, str]]) -> None:
        # Legs the client ended while they rang (``calling.end``) can no longer answer.
        legs = [(leg, outcome) for leg, outcome in legs if leg.state != CALL_STATE_ENDED]
        winner = next((leg for leg, outcome in legs if outcome == "answer"), None)
        if winner is not None:
            await winner.set_state(CALL_STATE_ANSWERED)
        for leg, outcome in legs:
            if leg is not winner:
                await leg.set_state(CALL_STATE_ENDED, end_reason=DIAL_OUTCOMES[outcome])
        if winner is None:
            await self.ring_group(index + 1)
            return
        call = {
            "call_id": winner.call_id,
            "node_id": winner.node_id,
            "tag": self.tag,
            "device": winner.device,
            "dial_winner": True,
        }
        await self._report("answered", call, node_id=winner.node_id)

    async def _report(self, dial_state: str, call: JSONObject, *, node_id: str = "") -> None:
        params: JSONObject = {"node_id": node_id or self.server.node_id, "tag": self.tag}
        params |= {"dial_state": dial_state, "call": call}
        await self.session.emit(EVENT_CALL_DIAL, params)


# -- messaging -----------------------------------------------------------------------------


#: The behaviour of every method the fake knows, by method name. Copied per server, so
#: ``server.set_handler`` never leaks into other tests. Any other method is refused as
#: unknown (``server.invalid_request_reply`` says how) and recorded as a violation.
DEFAULT_HANDLERS: Final[dict[str, Handler]] = {
    METHOD_SIGNALWIRE_PING: _ping,
    METHOD_SIGNALWIRE_RECEIVE: _receive,
    METHOD_SIGNALWIRE_UNRECEIVE: _unreceive,
    "calling.answer": _answer,
    "calling.end": _end,
    "calling.pass": _pass,
    "calling.dial": _dial,
    "calling.play": _play,
    "calling.play.stop": _stop,
    "calling.play.pause": _pause_handler(PLAY_STATE_PLAYING),
    "calling.play.resume": _resume_handler(PLAY_STATE_PLAYING),
    "calling.play.volume": _control_ack,
    "calling.record": _record,
    "calling.record.stop": _stop,
    "calling.record.pause": _pause_handler(RECORD_STATE_RECORDING),
    "calling.record.resume": _resume_handler(RECORD_STATE_RECORDING),
    "calling.play_and_collect": _play_and_collect,
    "calling.play_and_collect.stop": _stop,
    "calling.play_and_collect.volume": _control_ack,
    "calling.collect": _collect,
    "calling.collect.stop": _stop,
    "calling.collect.start_input_timers": _control_ack,
    "calling.detect": _detect,
    "calling.detect.stop": _stop,
    "calling.connect": _connect,
    "calling.disconnect": _disconnect,
    "calling.send_digits": _send_digits,
    "calling.tap": _tap,
    "calling.tap.stop": _stop,
    "calling.stream": _stream,
    "calling.stream.stop": _stop,
    "calling.transcribe": _transcribe,
    "calling.transcribe.stop": _stop,
    "calling.send_fax": _fax,
    "calling.send_fax.stop": _stop,
    "calling.receive_fax": _fax,
    "calling.receive_fax.stop": _stop,
    "calling.pay": _pay,
    "calling.pay.stop": _stop,
    "calling.queue.enter": _queue_enter,
    "calling.queue.leave": _queue_leave,
    "calling.refer": _refer,
    "calling.transfer": _accept("Transferring", "dest"),
    "calling.denoise": _denoise_handler(True),
    "calling.denoise.stop": _denoise_handler(False),
    "calling.hold": _hold_handler(True),
    "calling.unhold": _hold_handler(False),
    "calling.echo": _echo,
    "calling.join_conference": _join_conference,
    "calling.leave_conference": _leave_conference_handler,
    "calling.join_room": _accept("Joining room", "name"),
    "calling.leave_room": _accept("Leaving room"),
    "calling.bind_digit": _accept("Digit binding created", "digits", "bind_method"),
    "calling.clear_digit_bindings": _accept("Digit bindings cleared"),
    "calling.live_transcribe": _accept("Live transcription started", "action"),
    "calling.live_translate": _accept("Live translation started", "action"),
    "calling.ai": _ai,
    "calling.ai.stop": _stop,
    "calling.ai_message": _accept("Message sent"),
    "calling.ai_hold": _accept("AI on hold"),
    "calling.ai_unhold": _accept("AI resumed"),
    "calling.amazon_bedrock": _accept("AI started"),
    "calling.user_event": _accept("Event sent"),
    "messaging.send": messaging_send,
}
