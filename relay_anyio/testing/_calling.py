"""What the fake server does when a client sends a method: the handler registry.

Every method the fake understands beyond the session layer (connect, acks, pings sent
by the server) is an entry of :data:`DEFAULT_HANDLERS`: an async function
``(ctx, params) -> result``. A registry of plain functions, rather than one big
``match``, is what lets each test swap a single behaviour
(``server.set_handler("calling.answer", my_handler)``) and lets later work add methods
without touching the server core.

The events a handler produces must reach the client *after* its response, as they do
from RELAY (a client that registers a waiter only once the response arrives must not
miss them). Handlers therefore never send events themselves: they queue follow-ups
with :meth:`HandlerContext.then`, which the server runs once the response is written.
A follow-up with no delay runs inline, so the event order of a handler is fixed and
tests are deterministic on both backends; a delayed one runs in the server's task
group and keeps going while the client is disconnected (its events are queued on the
session and delivered on resume).
"""

from __future__ import annotations

import functools
import logging
import uuid
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
    EVENT_CALL_COLLECT,
    EVENT_CALL_DETECT,
    EVENT_CALL_DIAL,
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_STATE,
    METHOD_SIGNALWIRE_PING,
    METHOD_SIGNALWIRE_RECEIVE,
    METHOD_SIGNALWIRE_UNRECEIVE,
    PLAY_STATE_FINISHED,
    PLAY_STATE_PAUSED,
    PLAY_STATE_PLAYING,
    RECORD_STATE_RECORDING,
)
from ._messaging import messaging_send

if TYPE_CHECKING:
    from ._server import FakeRelayServer, FakeSession

__all__ = [
    "DEFAULT_HANDLERS",
    "DIAL_OUTCOMES",
    "DialScript",
    "FakeAction",
    "FakeCall",
    "FollowUp",
    "Handler",
    "HandlerContext",
    "JsonRpcError",
    "ResultCodeError",
    "calling_default",
    "ok",
]

logger = logging.getLogger("relay_anyio.testing")

JSONObject = dict[str, Any]
_T = TypeVar("_T")

#: A step to run once the response is out: a no-argument coroutine function.
FollowUp = Callable[[], Awaitable[object]]

#: A method handler: gets the request context and ``params``, returns the ``result``.
Handler = Callable[["HandlerContext", JSONObject], Awaitable[JSONObject]]

#: Outcomes :meth:`FakeRelayServer.script_dial` accepts, with the ``end_reason`` a leg
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


def _invalid_params(message: str) -> JsonRpcError:
    return JsonRpcError(-32602, f"Invalid params: {message}")


@attrs.frozen
class DialScript:
    """How the legs of one ``calling.dial`` behave (see ``script_dial``)."""

    outcomes: tuple[str, ...] = ()
    answer_delay: float = 0.0

    def outcome(self, leg_index: int) -> str:
        """Legs beyond the scripted list answer, like an unscripted dial."""
        return self.outcomes[leg_index] if leg_index < len(self.outcomes) else "answer"


@attrs.define(eq=False)
class FakeAction:
    """One operation (play, record, collect, detect...) running on a :class:`FakeCall`.

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

    @property
    def active(self) -> bool:
        return self.state not in _TERMINAL_ACTION_STATES


@attrs.define(eq=False)
class FakeCall:
    """A call leg as the fake server sees it: an inbound offer or a dial leg.

    Its events go to the session that owns it (the one it was offered to or that
    dialled it), queued while that session has no connection. ``states`` is the
    history of ``call_state`` values sent, so assertions can check the whole sequence.
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
    _collect_results: deque[JSONObject] = attrs.field(factory=deque, init=False, repr=False)
    _detect_events: deque[str] = attrs.field(factory=deque, init=False, repr=False)

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

    def script_detect(self, event: str = "MACHINE") -> None:
        """Make the next ``calling.detect`` report ``event`` (unscripted: ``HUMAN``)."""
        self._detect_events.append(event)

    def next_collect_result(self) -> JSONObject:
        """The scripted result of the next collect, ``no_input`` when none is left."""
        return self._collect_results.popleft() if self._collect_results else {"type": "no_input"}

    def next_detect_event(self) -> str:
        return self._detect_events.popleft() if self._detect_events else "HUMAN"

    # -- driving the call from the test ------------------------------------------------

    async def remote_hangup(self, reason: str = END_REASON_HANGUP) -> None:
        """The far end hangs up: ``ending``, running actions finish, ``ended``."""
        await self.end(reason)

    async def send_event(self, event_type: str, params: JSONObject) -> None:
        """Send any event to this call's session, ``params`` exactly as given."""
        await self.session.emit(event_type, params)

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
        """``ending``, then the terminal event of every running action, then ``ended``.

        Actions finish before ``ended`` because clients (the official one among them)
        drop events for a call once it has ended; a recording's URL would be lost.
        """
        if self.state in (CALL_STATE_ENDING, CALL_STATE_ENDED):
            return
        await self.set_state(CALL_STATE_ENDING)
        for action in list(self.actions.values()):
            await finish_action(self, action)
        await self.set_state(CALL_STATE_ENDED, end_reason=reason)

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


async def finish_action(call: FakeCall, action: FakeAction) -> None:
    """Send the terminal event of a still-running action (stop, timer, call end)."""
    if action.active:
        await call.emit_action(action, _terminal_payload(action))


def _terminal_payload(action: FakeAction) -> JSONObject:
    if action.event_type == EVENT_CALL_RECORD:
        return _record_finished(action)
    if action.event_type == EVENT_CALL_COLLECT:
        return _collect_payload({"type": "no_input"})
    return {"state": PLAY_STATE_FINISHED}


def _record_finished(action: FakeAction) -> JSONObject:
    duration = round(max(0.0, anyio.current_time() - action.started_at), 3)
    url = _recording_url(action)
    size = int(duration * _RECORDING_BYTES_PER_SECOND)
    record = action.params.get("record")
    audio = record.get("audio", {}) if isinstance(record, dict) else {}
    facts = {"url": url, "duration": duration, "size": size}
    # The reference says clients read ``record.*`` first, then the top level: send both.
    return {"state": "finished", **facts, "record": {"audio": audio, **facts}}


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

        Raises :class:`ResultCodeError` 404 for an unknown call (or a ``node_id`` that
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
    """Any other ``calling.*`` method: accepted (404/410 still apply to its call)."""
    if "call_id" in params:
        _ = ctx.call
    return ok()


# -- play ------------------------------------------------------------------------------------


async def _play(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_PLAY)
    ctx.then(functools.partial(call.emit_action, action, {"state": PLAY_STATE_PLAYING}))
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
    if (duration := ctx.server.record_duration) is not None:
        ctx.then(functools.partial(finish_action, call, action), duration)
    return _accepted("Recording", call, action, url=_recording_url(action))


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
    if action.active:
        await call.emit_action(action, _collect_payload(call.next_collect_result()))


async def _detect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_DETECT)
    spec = params.get("detect")
    kind = spec.get("type", "machine") if isinstance(spec, dict) else "machine"
    ctx.then(functools.partial(_deliver_detect, call, action, kind))
    return _accepted("Detecting", call, action)


async def _deliver_detect(call: FakeCall, action: FakeAction, kind: str) -> None:
    """One detection result, after which the detector is done."""
    action.state = "finished"
    detect = {"type": kind, "params": {"event": call.next_detect_event()}}
    await call.emit_action(action, {"detect": detect})


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
    tag = params.get("tag")
    if not isinstance(tag, str) or not tag:
        raise _invalid_params("tag is required")
    scripts = ctx.server.dial_scripts
    script = scripts.popleft() if scripts else DialScript()
    dial = _Dial(ctx.server, ctx.session, tag, _device_groups(params), script)
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
#: ``server.set_handler`` never leaks into other tests. Other ``calling.*`` methods fall
#: back to :func:`calling_default`; anything else gets JSON-RPC -32601.
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
    "messaging.send": messaging_send,
}
