"""A call leg: identity, state, event intake, listeners, waits and its end.

Lifetimes. An inbound call's handler runs in the call's own task group (``_serve``),
inside the client's; that group lives until the call ends (or the client closes), not
until the handler returns, so listeners see the call to its end. When the handler
returns, the actions it left running are stopped. The reader updates the call
synchronously for every event (state, actions, ``wait_for`` waiters) and hands its
listeners to the call's ``Dispatcher``. When the call
ends, every pending wait finishes at once (actions with their terminal event or a
"call ended" result; ``wait_for`` with ``CallEnded``), and the listeners get the
ended event and are dropped. A recording is the exception: its result (the URL) may
come after ``ended``, so its wait gets a short grace first (``late_result_grace``).

The commands live in the mixins (``_commands``, ``_media``, ``_services``); this
module is the part every command and event relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from ._actions import Action
from ._bridge import Bridging
from ._call_info import CallInfo
from ._commands import ControlCommands, RequestFunction
from ._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_ENDED,
    CALL_STATE_ENDING,
    CALL_STATE_RINGING,
    CALL_STATES,
    EVENT_CALL_CONNECT,
    EVENT_CALL_STATE,
)
from ._errors import CallEnded, RelayError
from ._events import RelayEvent, make_event
from ._listeners import (
    Callbacks,
    Dispatcher,
    EventListener,
    ListenerHandle,
    ListenerSet,
    pick_listener,
)
from ._media import MediaCommands
from ._services import ServiceCommands
from ._shortcuts import CallShortcuts
from ._streams import CallEvents
from ._sync import LazyEvent

__all__ = ["Call", "CallHandler", "EventListener"]

logger = logging.getLogger("relay_anyio.call")

CallHandler = Callable[["Call"], Awaitable[object]]
_RANK = {state: i for i, state in enumerate(CALL_STATES)}


class _Waiter:
    __slots__ = ("error", "event", "event_type", "predicate", "result")

    def __init__(self, event_type: str, predicate: Callable[[RelayEvent], bool] | None) -> None:
        self.event_type = event_type
        self.predicate = predicate
        self.event = LazyEvent()
        self.result: RelayEvent | None = None
        self.error: BaseException | None = None


class Call(
    CallInfo,
    CallShortcuts,
    Bridging,
    ControlCommands,
    MediaCommands,
    ServiceCommands,
    CallEvents,
):
    """One call leg, inbound or outbound. Created by the client, never by users.

    ``request`` sends a request on the client's session; ``on_finished(call,
    lingering)`` tells the client that the call ended (``lingering``: it still waits
    for late action results and must stay routable until a second, final call).
    """

    def __init__(
        self,
        request: RequestFunction,
        on_finished: Callable[[Call, bool], object],
        *,
        call_id: str,
        node_id: str,
        context: str = "",
        direction: str = "inbound",
        device: dict[str, Any] | None = None,
        state: str = "created",
        tag: str = "",
        segment_id: str = "",
        project_id: str = "",
        event_buffer: int = 1000,
        late_result_grace: float = 2.0,
    ) -> None:
        self._request = request
        self._on_finished = on_finished
        self.call_id = call_id
        self.node_id = node_id
        self.context = context
        self.direction = direction
        self.device: dict[str, Any] = device or {}
        self.state: str = state
        self.tag = tag
        self.segment_id = segment_id
        self.project_id = project_id
        self.end_reason: str = ""
        self._actions: dict[str, Action] = {}
        self._listeners = ListenerSet()
        self._dispatcher = Dispatcher(
            "call", event_buffer, "fail", on_fail=self._listeners_overflowed, call_id=call_id
        )
        self._waiters: list[_Waiter] = []
        self._state_events: dict[str, RelayEvent] = {}
        self._ended = LazyEvent()
        self._late_result_grace = late_result_grace
        #: The call's scope: its handler's task group (inbound) or the client's
        #: (dialled legs). Listener tasks and late-result timers run in it.
        self._task_group: anyio.abc.TaskGroup | None = None
        #: Why every wait on this call failed: its session was replaced.
        self._failure: RelayError | None = None
        self._hung_up = False
        self._hangup_in_flight: LazyEvent | None = None

    def __repr__(self) -> str:
        return f"<Call {self.call_id} {self.direction} {self.state}>"

    # -- scope -------------------------------------------------------------------------

    async def _serve(self, handler: CallHandler, on_handler_done: Callable[[Call], object]) -> None:
        """The call's scope: its handler, then its listeners until the call ends.

        The call's task itself (no wrapping coroutine: a frame less per held call).
        """
        with self._telemetry.handling(self):
            try:
                async with anyio.create_task_group() as tg:
                    self._set_scope(tg)
                    try:
                        await handler(self)
                    except Exception:
                        logger.exception(
                            "on_call handler failed for call %s",
                            self.call_id,
                            extra={"call_id": self.call_id},
                        )
                    finally:
                        await self._stop_actions()
                    on_handler_done(self)
                    if not self._ended.is_set():  # (a set flag would still cost a loop turn)
                        await self._ended.wait()
            finally:
                self._dispatcher.close()  # cancelled (client shutdown): nobody listens
                self._set_scope(None)

    def _set_scope(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Hand the call the task group its listener task and timers run in."""
        self._task_group = task_group
        self._dispatcher.task_group = task_group

    async def _stop_actions(self) -> None:
        """The handler returned: stop the actions it left running (shielded, bounded).

        Listeners stay: the call's scope lives on until the call ends.
        """
        running = [a for a in self._actions.values() if not a.is_done]
        if running and self.state != CALL_STATE_ENDED:
            async with anyio.create_task_group() as tg:
                for action in running:
                    tg.start_soon(action._stop_quietly)

    # -- event intake (reader side, synchronous) ----------------------------------------

    def _deliver(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        """Apply one event routed to this call. Called by the reader; never blocks."""
        event = make_event(event_type, params, timestamp)
        ended = False
        if event_type == EVENT_CALL_STATE:
            state = params.get("call_state")
            if isinstance(state, str) and state in _RANK:
                if _RANK[state] < _RANK.get(self.state, 0):
                    # A call never goes back (a late or replayed event): keep the state.
                    logger.warning(
                        "ignored stale call_state %r for call %s, which is %s",
                        state,
                        self.call_id,
                        self.state,
                        extra={"call_id": self.call_id},
                    )
                else:
                    self.state = state
                    self._state_events[state] = event
                    if not self.device:  # a leg announced without its device
                        self._adopt_device(params)
                    if state == CALL_STATE_ENDED and not self._ended.is_set():
                        reason = params.get("end_reason")
                        self.end_reason = reason if isinstance(reason, str) else ""
                        ended = True
        if self._bridge is not None and event_type == EVENT_CALL_CONNECT:
            self._bridge._on_connect_event(self, event)  # before waiters: call.peer is set
        control_id = params.get("control_id")
        if control_id is not None and type(control_id) is str:
            action = self._actions.get(control_id)
            if action is not None and action._handle(event):
                del self._actions[control_id]
        if self._waiters:
            self._check_waiters(event)
        listeners = self._listeners.get(event_type)
        if listeners:
            self._dispatcher.dispatch(listeners, event)
        if ended:
            self._finish()

    def _adopt_device(self, params: dict[str, Any]) -> None:
        device = params.get("device")
        if isinstance(device, dict) and device:
            self.device = device

    def _check_waiters(self, event: RelayEvent) -> None:
        for waiter in list(self._waiters):
            if waiter.event_type != event.event_type or waiter.event.is_set():
                continue
            try:
                matched = waiter.predicate is None or bool(waiter.predicate(event))
            except Exception as exc:  # the user's predicate: hand its error to its waiter
                waiter.error = exc
                matched = True
            if matched:
                waiter.result = event
                waiter.event.set()

    def _finish(self, error: RelayError | None = None) -> None:
        """The call is over: its ``ended`` arrived, or (``error``) its session is gone.

        Every wait finishes, the listeners are dropped, the client is told. After a
        real end, an action whose result matters after the call (a recording's URL)
        may get its terminal event after ``ended``, or never: it gets
        ``late_result_grace`` seconds, during which the call still routes that
        action's events (and nothing else), then finishes as "call ended". When the
        session is gone, nothing more can come: everything fails with ``error``.
        """
        if error is not None:
            for action in self._actions.values():
                action._fail(error)
            self._actions.clear()
            if self._streams:
                self._end_streams(error)
            if self._ended.is_set():  # only late results were pending: the timer releases
                return
            self._failure = error
            self.state = CALL_STATE_ENDED
            self.end_reason = self.end_reason or "session_lost"
        lingering: dict[str, Action] = {}
        for control_id, action in self._actions.items():
            if action.result_outlives_call and self._task_group is not None:
                lingering[control_id] = action
            else:
                action._finish_call_ended(self.end_reason)
        self._actions = lingering
        if self._bridge is not None:
            self._bridge._call_finished(self, error)
        wait_error = error
        for waiter in self._waiters:
            if not waiter.event.is_set():
                if wait_error is None:  # built only for a call somebody waits on
                    wait_error = CallEnded(self.call_id, self.end_reason)
                waiter.error = wait_error
                waiter.event.set()
        if self._streams and error is None:
            self._end_streams(None)
        self._listeners.clear()
        self._ended.set()
        if lingering:
            self._on_finished(self, True)
            assert self._task_group is not None
            self._task_group.start_soon(self._linger, name=f"relay late results {self.call_id}")
        else:
            self._release()

    async def _linger(self) -> None:
        with anyio.move_on_after(self._late_result_grace):
            for action in list(self._actions.values()):
                await action._done.wait()
        for action in self._actions.values():
            action._finish_call_ended(self.end_reason)
        self._actions.clear()
        self._release()

    def _release(self) -> None:
        """Nothing of this call runs any more: its listener task drains and ends."""
        self._dispatcher.close()
        self._on_finished(self, False)

    def _dispatch(self, callbacks: Callbacks, event: RelayEvent) -> None:
        """Run callbacks of this call (an action's ``on_completed``) in event order."""
        self._dispatcher.dispatch(callbacks, event)

    # -- listeners ---------------------------------------------------------------------

    def on(
        self,
        event_type: str,
        listener: EventListener | None = None,
        *,
        handler: EventListener | None = None,
    ) -> ListenerHandle:
        """Call ``listener(event)`` for every event of ``event_type`` on this call.

        ``handler=`` is the same as ``listener`` (SignalWire's client spells it so).

        Listeners may be plain or async functions, and run in the order events
        arrived. A plain function runs as the event is routed, before anything waiting
        on the call wakes up (so, like any synchronous code in an async program, it
        must not block). Async listeners run on this call's listener task, fed by a
        bounded queue; from the first awaitable a listener of a call returns, all
        that call's listeners go through its task, which keeps their order. An exception
        is logged and the next listener still runs.

        A listener sees every event of the call up to and including the ``ended``
        state event, whether or not the handler has returned (the call's scope lives
        until the call ends or the client closes); then it is dropped.

        Returns a ``ListenerHandle``: ``remove()`` it, or ``with call.on(...):`` to
        listen for the length of a block.

        Raises ``CallEnded`` on an ended call and ``EventOverflow`` once
        this call's listeners fell too far behind and were dropped: in each case a
        new listener would never run.
        """
        listener = pick_listener(listener, handler)
        if self._ended.is_set():
            raise CallEnded(self.call_id, self.end_reason, "cannot listen on an ended call")
        if self._dispatcher.failed is not None:
            raise self._dispatcher.failed  # its listener task is gone: say so
        return self._listeners.add(event_type, listener)

    def off(self, event_type: str, listener: EventListener | None = None) -> None:
        """Remove one listener, or all listeners of ``event_type``."""
        self._listeners.remove(event_type, listener)

    # -- waiting -----------------------------------------------------------------------

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[RelayEvent], bool] | None = None,
        timeout: float | None = None,
    ) -> RelayEvent:
        """Wait for the next event of ``event_type`` (matching ``predicate``) on this call.

        Raises ``CallEnded`` if the call ends first, ``TimeoutError`` after
        ``timeout`` seconds.
        """
        if self._ended.is_set():
            raise self._failure or CallEnded(self.call_id, self.end_reason)
        waiter = _Waiter(event_type, predicate)
        self._waiters.append(waiter)
        try:
            await waiter.event.wait(timeout)
        finally:
            self._waiters.remove(waiter)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    async def wait_for_ended(self, timeout: float | None = None) -> RelayEvent:
        """Wait until the call has ended; return its ``ended`` state event."""
        if not self._ended.is_set():
            await self._ended.wait(timeout)
        if self._failure is not None and CALL_STATE_ENDED not in self._state_events:
            raise self._failure
        return self._state_events.get(CALL_STATE_ENDED) or self._synthetic_state_event()

    async def wait_for_answered(self, timeout: float | None = None) -> RelayEvent:
        """Wait until answered. Raises ``CallEnded`` if it ends unanswered."""
        return await self._wait_for_state(CALL_STATE_ANSWERED, timeout, strict=True)

    async def wait_for_ringing(self, timeout: float | None = None) -> RelayEvent:
        """Wait until ringing (or past it: then a synthetic event of the current state)."""
        return await self._wait_for_state(CALL_STATE_RINGING, timeout, strict=False)

    async def wait_for_ending(self, timeout: float | None = None) -> RelayEvent:
        """Wait until ending (or past it: then a synthetic event of the current state)."""
        return await self._wait_for_state(CALL_STATE_ENDING, timeout, strict=False)

    async def _wait_for_state(self, target: str, timeout: float | None, strict: bool) -> RelayEvent:
        rank = _RANK[target]

        def reached() -> RelayEvent | None:
            if target in self._state_events:
                return self._state_events[target]
            if _RANK.get(self.state, 0) >= rank:
                if strict or self._failure is not None:
                    raise self._failure or CallEnded(
                        self.call_id, self.end_reason, f"Call {self.call_id} ended before {target}"
                    )
                return self._synthetic_state_event()
            return None

        event = reached()
        if event is not None:
            return event

        def arrived(event: RelayEvent) -> bool:
            state = event.raw_params.get("call_state")
            # Waiting for "answered" past "ending" waits for "ended" and its reason.
            if strict and state == CALL_STATE_ENDING:
                return False
            return _RANK.get(str(state), -1) >= rank

        try:
            await self.wait_for(EVENT_CALL_STATE, arrived, timeout)
        except CallEnded:
            pass
        event = reached()
        assert event is not None
        return event

    def _synthetic_state_event(self) -> RelayEvent:
        return make_event(EVENT_CALL_STATE, self._state_params(self.state, self.end_reason))

    def _state_params(self, state: str, end_reason: str) -> dict[str, Any]:
        """The params of a ``calling.call.state`` event for this call (synthetic ones)."""
        return {
            "call_id": self.call_id,
            "node_id": self.node_id,
            "call_state": state,
            "end_reason": end_reason,
            "direction": self.direction,
            "device": self.device,
            "tag": self.tag,
        }
