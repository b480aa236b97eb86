"""Routing: the session's listener, which gives every event to its owner.

The reader calls :meth:`Router.session_event` for each event, synchronously: an
inbound offer becomes a ``Call`` whose scope starts in the client's task group (or is
passed back to RELAY when no handler is registered or ``max_active_calls`` is
reached); a dial event resolves its pending dial; a state event of a dial's leg
registers the leg; a messaging event goes to its ``Message``, a task to the
``on_task`` handler; anything else goes to its call by ``call_id``, or to the
client-level listeners. This is the only code that touches dial legs, and the one
that registers a bridge's peer leg (``adopt_peer``). :meth:`Router.session_state`
fails the old calls and dials when a session is replaced, and probes the live calls
after a resume.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import anyio
import anyio.abc

from ._call import Call, CallHandler
from ._commands import RequestFunction
from ._config import ClientConfig
from ._constants import (
    CALL_STATE_ENDED,
    EVENT_CALL_DIAL,
    EVENT_CALL_RECEIVE,
    EVENT_CALL_STATE,
    EVENT_MESSAGING_RECEIVE,
    EVENT_MESSAGING_STATE,
    EVENT_TASK,
)
from ._dials import PendingDial
from ._errors import ConnectionLost, RelayError
from ._events import make_event
from ._listeners import Dispatcher, ListenerSet
from ._messaging import Message, MessageHandler, MessageRegistry
from ._session import ConnectionState, Session
from ._task_events import TaskEvent
from ._telemetry import NOOP, Telemetry

__all__ = ["Router", "TaskHandler"]

logger = logging.getLogger("relay_anyio.client")

ConnectionStateCallback = Callable[[ConnectionState], object]
#: ``@client.on_task``: run for each task RELAY hands this client.
TaskHandler = Callable[[TaskEvent], Awaitable[object]]
#: The probe that asks the server whether a call still exists after a resume: a
#: command without effect (no binding lives in this realm) that RELAY answers 404/410
#: for a call it no longer knows.
_PROBE_METHOD = "calling.clear_digit_bindings"
_PROBE_REALM = "relay-anyio-probe"
_PROBES_IN_FLIGHT = 16


class Router:
    """Who owns which event (see the module docstring); the client's routing state."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._session: Session = None  # type: ignore[assignment]  # bound by bind()
        self.call_handler: CallHandler | None = None
        self.message_handler: MessageHandler | None = None
        self.task_handler: TaskHandler | None = None
        self.state_callbacks: list[ConnectionStateCallback] = []
        self.listeners = ListenerSet()
        #: Where calls, actions and overflows are reported (see ``_telemetry``).
        self.telemetry: Telemetry = NOOP
        #: Listener queues that overflowed (calls' and the client's), for ``health()``.
        self.overflows = 0
        self.dispatcher = self._dispatcher()
        self.messages = MessageRegistry(config.message_ttl)
        self.calls: dict[str, Call] = {}
        #: Ended calls still waiting for a late action result (see ``Call._finish``).
        self.lingering: dict[str, Call] = {}
        #: Calls to hang up when the client exits: inbound ones whose handler still
        #: runs, and dialled legs until they end.
        self.handled: set[Call] = set()
        self.dials: dict[str, PendingDial] = {}
        self._abandoned_dials: dict[str, None] = {}
        #: The running recheck of live calls after a resume (see _recheck_calls).
        self._recheck: anyio.CancelScope | None = None
        #: The client's task group while it is entered.
        self.task_group: anyio.abc.TaskGroup | None = None
        # Bound once and shared by every call, rather than a bound method (or a
        # closure) allocated per call.
        self._request: RequestFunction = None  # type: ignore[assignment]  # bound by bind()
        self._on_call_finished = self._call_finished
        self._handler_done = self.handled.discard

    def bind(self, session: Session) -> None:
        """The session this router listens to (it sends the calls' commands)."""
        self._session = session
        self._request = session.request

    def enter(self, task_group: anyio.abc.TaskGroup) -> None:
        """The client was entered: handlers, listeners and probes run in ``task_group``."""
        self.task_group = task_group
        # Read again: the session's telemetry (set before entering) may wrap it.
        self._request = self._session.request
        # Client-level listeners and messages: a listener task per entry of the client.
        self.dispatcher = self._dispatcher()
        self.dispatcher.task_group = task_group

    def _dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher("the client", self.config.call_event_buffer, "drop")
        dispatcher.on_overflow = self._overflowed
        return dispatcher

    def _overflowed(self, owner: str, policy: str) -> None:
        self.overflows += 1
        self.telemetry.listener_overflow(owner, policy)

    def close(self) -> None:
        """The client is leaving: no listener task starts any more."""
        self.dispatcher.close()
        for call in [*self.calls.values(), *self.lingering.values()]:
            call._dispatcher.close()
        self.telemetry.close()

    async def hang_up_handled_calls(self) -> None:
        calls = [c for c in self.handled if c.state != CALL_STATE_ENDED]
        if not calls or not self._session.connected:
            return
        logger.info("shutting down: hanging up %d call(s) still being handled", len(calls))
        with anyio.move_on_after(self.config.shutdown_timeout, shield=True):
            async with anyio.create_task_group() as tg:
                for call in calls:
                    tg.start_soon(_quiet_hangup, call)

    async def abandon_dial(self, dial: PendingDial) -> None:
        """End every leg of a dial nobody will get (timeout, cancel, failure)."""
        self._abandoned_dials[dial.tag] = None
        while len(self._abandoned_dials) > 1000:
            del self._abandoned_dials[next(iter(self._abandoned_dials))]
        legs = [leg for leg in dial.legs.values() if leg.state != CALL_STATE_ENDED]
        if dial.winner is not None and dial.winner not in legs:
            legs.append(dial.winner)
        if not legs:
            return
        with anyio.move_on_after(self.config.shutdown_timeout, shield=True):
            async with anyio.create_task_group() as tg:
                for leg in legs:
                    tg.start_soon(self._end_leg, leg)

    async def _end_leg(self, leg: Call) -> None:
        try:
            await leg.hangup("cancel")
        except RelayError as exc:
            logger.warning(
                "could not end dial leg %s: %s", leg.call_id, exc, extra={"call_id": leg.call_id}
            )

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        if event_type == EVENT_CALL_RECEIVE:
            self._on_call_received(params, timestamp)
            return
        if event_type == EVENT_MESSAGING_STATE:
            self.messages.route_state(params, timestamp)
            return
        if event_type == EVENT_MESSAGING_RECEIVE:
            self._on_message_received(params)
            return
        if event_type == EVENT_TASK:
            self._on_task(params, timestamp)
            return
        if event_type == EVENT_CALL_DIAL:
            if self._on_dial_event(params, timestamp):
                return
        call_id = params.get("call_id")
        call = self.calls.get(call_id) if type(call_id) is str else None
        if call is None:
            if event_type == EVENT_CALL_STATE:
                call = self._maybe_dial_leg(params)
            elif self.lingering and type(call_id) is str:
                call = self.lingering.get(call_id)
        if call is not None:
            call._deliver(event_type, params, timestamp)
            return
        listeners = self.listeners.get(event_type)
        if listeners:
            self.dispatcher.dispatch(listeners, make_event(event_type, params, timestamp))
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "no receiver for %s event (call_id=%r)",
                event_type,
                call_id,
                extra={"call_id": call_id} if type(call_id) is str else None,
            )

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        if fresh_session and (self.calls or self.dials):
            lost = ConnectionLost(
                "the RELAY session was restarted: calls of the previous session are gone"
            )
            logger.warning(
                "session restarted: ending waits of %d call(s) and %d dial(s)",
                len(self.calls),
                len(self.dials),
            )
            for call in [*self.calls.values(), *self.lingering.values()]:
                call._finish(lost)
            self.calls.clear()
            self.lingering.clear()
            # A dial of the old session will never hear back, legs announced or not.
            for dial in self.dials.values():
                if not dial.done.is_set():
                    dial.error = dial.error or lost
                    dial.done.set()
        elif state is ConnectionState.CONNECTED and self.calls and self.task_group is not None:
            if self._recheck is not None:
                self._recheck.cancel()  # the new one asks about every live call again
            self._recheck = anyio.CancelScope()
            self.task_group.start_soon(
                self._recheck_calls, list(self.calls.values()), self._recheck
            )
        for callback in list(self.state_callbacks):
            try:
                callback(state)
            except Exception:
                logger.exception("connection state callback %r failed", callback)

    async def _recheck_calls(self, calls: list[Call], scope: anyio.CancelScope) -> None:
        """After a resume, end the calls the server no longer knows.

        A server need not redeliver the events it sent while the link was down
        (reference §8.2: unconfirmed), so a call may have ended unseen and every
        wait on it would hang. Each call still live here is probed once (bounded
        concurrency, the request timeout each); one the server answers 404/410 for
        gets a synthetic ``ended`` (``end_reason`` "gone"), which ends its waits and
        reaches its listeners as any end would. One recheck runs at a time: the next
        resume cancels this one and asks again (a probe waiting for a connection
        would otherwise pile up behind a flapping link).
        """
        pending = iter(calls)
        with scope:
            async with anyio.create_task_group() as tg:
                for _ in range(min(_PROBES_IN_FLIGHT, len(calls))):
                    tg.start_soon(self._probe, pending)

    async def _probe(self, pending: Iterator[Call]) -> None:
        for call in pending:
            if call.state == CALL_STATE_ENDED:
                continue
            params = {"node_id": call.node_id, "call_id": call.call_id, "realm": _PROBE_REALM}
            try:
                await self._session.request(_PROBE_METHOD, params)
            except RelayError as exc:
                if exc.code not in (404, 410) or call.state == CALL_STATE_ENDED:
                    continue  # alive, or cannot tell (the link dropped again, ...)
                logger.warning(
                    "call %s is gone after the reconnect; its end was never delivered",
                    call.call_id,
                    extra={"call_id": call.call_id},
                )
                call._deliver(EVENT_CALL_STATE, call._state_params(CALL_STATE_ENDED, "gone"), 0.0)

    def _call_finished(self, call: Call, lingering: bool) -> None:
        """A call ended: stop routing to it (``lingering``: only its late results)."""
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
            self.telemetry.call_ended(call)
        self.handled.discard(call)
        if lingering:
            self.lingering[call.call_id] = call
        elif self.lingering.get(call.call_id) is call:
            del self.lingering[call.call_id]

    def _new_call(self, params: Mapping[str, Any], **overrides: Any) -> Call | None:
        call_id, node_id = params.get("call_id"), params.get("node_id")
        if not isinstance(call_id, str) or not call_id or not isinstance(node_id, str):
            logger.warning("ignored a call event without call_id/node_id")
            return None

        def text(key: str, default: str = "") -> str:
            value = params.get(key)
            return value if isinstance(value, str) else default

        device = params.get("device")
        fields: dict[str, Any] = {
            "call_id": call_id,
            "node_id": node_id,
            "context": text("context") or text("protocol"),
            "direction": text("direction", "inbound"),
            "device": device if isinstance(device, dict) else {},
            "state": text("call_state", "created"),
            "tag": text("tag"),
            "segment_id": text("segment_id"),
            "project_id": text("project_id", self.config.project),
            "event_buffer": self.config.call_event_buffer,
            "late_result_grace": self.config.late_result_grace,
        }
        fields.update(overrides)
        call = Call(self._request, self._on_call_finished, **fields)
        call._telemetry = self.telemetry
        call._dispatcher.on_overflow = self._overflowed
        call._peers = self
        return call

    def adopt_peer(self, info: dict[str, Any]) -> tuple[Call, bool] | None:
        """A bridge's peer leg, routed from now on; True: new (never hung up at exit)."""
        call_id = info.get("call_id")
        known = self.calls.get(call_id) if isinstance(call_id, str) else None
        if known is not None:
            return known, False
        peer = self._new_call({**info, "call_state": "answered"}, direction="outbound")
        if peer is None:
            return None
        peer._set_scope(self.task_group)
        self.calls[peer.call_id] = peer
        return peer, True

    def _on_call_received(self, params: dict[str, Any], timestamp: float) -> None:
        call = self._new_call(params)
        if call is None or call.call_id in self.calls:
            return
        assert self.task_group is not None
        if self.call_handler is None or len(self.calls) >= self.config.max_active_calls:
            why = (
                "no on_call handler is registered"
                if self.call_handler is None
                else f"max_active_calls ({self.config.max_active_calls}) reached"
            )
            logger.warning(
                "passing call %s back to RELAY: %s",
                call.call_id,
                why,
                extra={"call_id": call.call_id},
            )
            self.task_group.start_soon(_pass_call, self.telemetry, call)
            return
        self.calls[call.call_id] = call
        self.telemetry.call_started(call, "handled")
        # Only a handler that was cancelled (client shutdown) stays "being handled",
        # so that __aexit__ hangs its call up.
        self.handled.add(call)
        self.task_group.start_soon(
            call._serve, self.call_handler, self._handler_done, name=f"relay call {call.call_id}"
        )

    def _on_dial_event(self, params: dict[str, Any], timestamp: float) -> bool:
        """Resolve a pending dial; return True if the event was consumed by one."""
        tag = params.get("tag")
        dial = self.dials.get(tag) if isinstance(tag, str) else None
        info = params.get("call")
        info = info if isinstance(info, dict) else {}
        state = params.get("dial_state")
        if dial is None:
            call_id = info.get("call_id")
            call = self.calls.get(call_id) if isinstance(call_id, str) else None
            if call is not None:
                call._deliver(EVENT_CALL_DIAL, params, timestamp)
                return True
            return False
        if state == "answered":
            call_id = info.get("call_id")
            winner = dial.legs.get(call_id) if isinstance(call_id, str) else None
            if winner is None:
                winner = self._new_call(
                    {**info, "tag": dial.tag, "call_state": "answered"}, direction="outbound"
                )
                if winner is None:
                    dial.error = RelayError(-1, f"Dial answered without a call id (tag={tag})")
                    dial.done.set()
                    return True
                dial.adopt(winner)
                self._register_outbound(winner)
            else:
                if not winner.node_id and isinstance(info.get("node_id"), str):
                    winner.node_id = info["node_id"]
                if not winner.device:  # its state events came without one
                    winner._adopt_device(info)
            dial.winner = winner
            dial.done.set()
        elif state == "failed":
            # The dial event says only "failed"; why is in the legs' end reasons.
            reasons = [leg.end_reason for leg in dial.legs.values() if leg.end_reason]
            why = ", ".join(dict.fromkeys(reasons)) or "no leg answered"
            dial.error = RelayError(-1, f"Dial failed (tag={tag}): {why}", params)
            dial.done.set()
        return True

    def _maybe_dial_leg(self, params: dict[str, Any]) -> Call | None:
        tag = params.get("tag")
        if not isinstance(tag, str):
            return None
        dial = self.dials.get(tag)
        if dial is None:
            if tag in self._abandoned_dials and params.get("call_state") != CALL_STATE_ENDED:
                leg = self._new_call(params, direction="outbound")
                if leg is not None:
                    logger.warning(
                        "hanging up leg %s of an abandoned dial",
                        leg.call_id,
                        extra={"call_id": leg.call_id},
                    )
                    self._register_outbound(leg)
                    assert self.task_group is not None
                    self.task_group.start_soon(self._end_leg, leg)
            return None
        leg = self._new_call(params, direction="outbound")
        if leg is None:
            return None
        dial.adopt(leg)
        self._register_outbound(leg)
        return leg

    def _register_outbound(self, call: Call) -> None:
        """Make an outbound leg the client's: routed, listened to, hung up at exit.

        Its listener task runs in the client's task group, and until it ends it is
        among the calls the client hangs up when it exits, so a dialled call can
        outlive neither the client nor a dial nobody waits for any more.
        """
        call._set_scope(self.task_group)
        self.calls[call.call_id] = call
        self.handled.add(call)  # until it ends (see _call_finished)
        self.telemetry.call_started(call, "dialed")

    def _on_message_received(self, params: dict[str, Any]) -> None:
        message = Message(self.dispatcher, params, state="received", direction="inbound")
        handler = self.message_handler
        if handler is None:
            logger.warning(
                "inbound message %s dropped: no on_message handler",
                message.message_id,
                extra={"message_id": message.message_id},
            )
            return
        assert self.task_group is not None
        self.task_group.start_soon(_handle_message, handler, message)

    def _on_task(self, params: dict[str, Any], timestamp: float) -> None:
        task = TaskEvent(EVENT_TASK, params, timestamp)
        handler = self.task_handler
        if handler is None:
            # RELAY gave the task to this session, so no other consumer gets it.
            logger.warning(
                "task on context %r dropped: no on_task handler",
                task.context,
                extra={"context": task.context},
            )
            return
        assert self.task_group is not None
        self.task_group.start_soon(_handle_task, handler, task)


async def _quiet_hangup(call: Call) -> None:
    try:
        await call.hangup()
    except RelayError as exc:
        extra = {"call_id": call.call_id}
        logger.warning("could not hang up %s at shutdown: %s", call.call_id, exc, extra=extra)


async def _pass_call(telemetry: Telemetry, call: Call) -> None:
    """Hand a call back to RELAY (``calling.pass``): another consumer gets the offer."""
    telemetry.call_started(call, "passed")
    try:
        await call.pass_()
    except RelayError as exc:
        logger.warning(
            "calling.pass for %s failed: %s", call.call_id, exc, extra={"call_id": call.call_id}
        )
    finally:
        telemetry.call_ended(call)


async def _handle_message(handler: MessageHandler, message: Message) -> None:
    try:
        await handler(message)
    except Exception:
        logger.exception(
            "on_message handler failed for message %s",
            message.message_id,
            extra={"message_id": message.message_id},
        )


async def _handle_task(handler: TaskHandler, task: TaskEvent) -> None:
    try:
        await handler(task)
    except Exception:
        logger.exception(
            "on_task handler failed for a task on context %r",
            task.context,
            extra={"context": task.context},
        )
