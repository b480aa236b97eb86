"""A call leg and everything that can be done to it.

Lifetimes. An inbound call's handler runs in the call's own task group, inside the
client's; that group lives until the call ends (or the client closes), not until the
handler returns, so listeners see the call to its end. When the handler returns, the
actions it left running are stopped. The reader updates the call synchronously for
every event (state, actions, ``wait_for`` waiters) and runs plain listeners there
too: a task switch per event would cost more than the listener. Async listeners run
on one listener task per call, started by the first awaitable a listener returns and
fed through a bounded memory object stream, so a slow one delays its own call and
nothing else. When the call ends, every pending wait finishes at once (actions with
their terminal event or a "call ended" result; ``wait_for`` with
:class:`CallEnded`), and the listeners get the ended event and are dropped. A
recording is the exception: its result (the URL) may come after ``ended``, so its
wait gets a short grace first (``late_result_grace``).

Errors. A command on a call that is already gone (404/410) is a no-op that logs a
warning and returns ``{}``, as in the official client; every other error raises.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._actions import (
    Action,
    AIAction,
    CollectAction,
    CompletedCallback,
    DetectAction,
    FaxAction,
    PayAction,
    PlayAction,
    RecordAction,
    StandaloneCollectAction,
    StreamAction,
    TapAction,
    TranscribeAction,
)
from ._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_ENDED,
    CALL_STATE_ENDING,
    CALL_STATE_RINGING,
    CALL_STATES,
    EVENT_CALL_STATE,
)
from ._errors import CallEnded, EventOverflow, RelayError, RequestTimeout
from ._events import RelayEvent, make_event
from ._sync import LazyEvent

__all__ = ["Call", "EventListener", "normalize_media", "run_listeners", "run_plain"]

logger = logging.getLogger("relay_anyio.call")

EventListener = Callable[[RelayEvent], Any]
_A = TypeVar("_A", bound=Action)
_RANK = {state: i for i, state in enumerate(CALL_STATES)}
_GONE_CODES = (404, 410)


class _Requester(Protocol):
    """The part of the client a call talks through."""

    @property
    def _call_request(self) -> Callable[..., Awaitable[dict[str, Any]]]: ...

    def _call_finished(self, call: Call, *, lingering: bool = False) -> None: ...


class _Waiter:
    __slots__ = ("error", "event", "event_type", "predicate", "result")

    def __init__(self, event_type: str, predicate: Callable[[RelayEvent], bool] | None) -> None:
        self.event_type = event_type
        self.predicate = predicate
        self.event = LazyEvent()
        self.result: RelayEvent | None = None
        self.error: BaseException | None = None


#: What listener tasks consume: the callbacks to run and the event to run them on.
ListenerQueue = MemoryObjectReceiveStream[tuple[tuple[EventListener, ...], RelayEvent]]


async def run_listeners(receive: ListenerQueue, owner: object) -> None:
    """Run queued callbacks in order until the queue closes (a listener task's body).

    Callbacks may be plain or async functions; an exception is logged with ``owner``
    and the next callback still runs.
    """
    async with receive:
        async for callbacks, event in receive:
            for callback in callbacks:
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception(
                        "listener %r failed on %s for %s", callback, event.event_type, owner
                    )


def run_plain(
    callbacks: tuple[EventListener, ...], event: RelayEvent, owner: object
) -> tuple[EventListener, ...]:
    """Run callbacks now, in order, until one returns an awaitable; return the rest.

    What is returned (that awaitable, then the callbacks after it) must run on the
    owner's listener task, after which every later event must go there too, or a
    plain listener would overtake an async one. An exception is logged with
    ``owner`` and the next callback still runs.
    """
    for index, callback in enumerate(callbacks):
        try:
            result = callback(event)
        except Exception:
            logger.exception(
                "listener %r failed on %s for %s", callback, event.event_type, owner
            )
            continue
        if result is not None and inspect.isawaitable(result):
            return (_returning(result), *callbacks[index + 1 :])
    return ()


class _returning:
    """A callback standing for an awaitable a plain listener returned: awaits it."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable

    def __call__(self, event: RelayEvent) -> Awaitable[Any]:
        return self.awaitable

    def __repr__(self) -> str:
        return repr(self.awaitable)


def _discard(callback: EventListener) -> None:
    """Close a coroutine nobody will await (no 'never awaited' warning)."""
    if isinstance(callback, _returning) and inspect.iscoroutine(callback.awaitable):
        callback.awaitable.close()


def normalize_media(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Accept the guide's flat media (``{"type": "tts", "text": "Hi"}``), send the wire's.

    On the wire every media item nests its fields under ``params``; the guide writes
    them flat, and the official client forwards that unchanged. Both shapes are
    accepted here; flat keys are moved under ``params`` (explicit ``params`` win).
    """
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping) or "type" not in item:
            raise ValueError(f"media item needs a 'type': {item!r}")
        flat = {k: v for k, v in item.items() if k not in ("type", "params")}
        nested = item.get("params")
        if nested is not None and not isinstance(nested, Mapping):
            raise ValueError(f"media 'params' must be an object: {item!r}")
        out.append({"type": item["type"], "params": {**flat, **(nested or {})}})
    return out


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


class Call:
    """One call leg, inbound or outbound. Created by the client, never by users."""

    def __init__(
        self,
        client: _Requester,
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
        self._client = client
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
        #: Tuples, replaced on change: the reader iterates them without copying.
        self._listeners: dict[str, tuple[EventListener, ...]] = {}
        self._waiters: list[_Waiter] = []
        self._state_events: dict[str, RelayEvent] = {}
        self._ended = LazyEvent()
        self._event_buffer = event_buffer
        self._late_result_grace = late_result_grace
        self._pump_send: MemoryObjectSendStream[tuple[tuple[EventListener, ...], RelayEvent]]
        self._pump_send = None  # type: ignore[assignment]
        #: The call's scope: its handler's task group (inbound) or the client's
        #: (dialled legs). Listener tasks and late-result timers run in it.
        self._task_group: anyio.abc.TaskGroup | None = None
        #: Why every wait on this call failed: its session was replaced.
        self._failure: RelayError | None = None
        #: Why its listeners were dropped: they fell too far behind.
        self._listener_error: EventOverflow | None = None
        self._hung_up = False
        self._hangup_in_flight: LazyEvent | None = None
        #: Run (synchronously) once when the call ends or its session is lost.
        self._end_callbacks: list[Callable[[Call], object]] = []

    def __repr__(self) -> str:
        return f"<Call {self.call_id} {self.direction} {self.state}>"

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
                    )
                else:
                    self.state = state
                    self._state_events[state] = event
                    if state == CALL_STATE_ENDED and not self._ended.is_set():
                        reason = params.get("end_reason")
                        self.end_reason = reason if isinstance(reason, str) else ""
                        ended = True
        control_id = params.get("control_id")
        if control_id is not None and type(control_id) is str:
            action = self._actions.get(control_id)
            if action is not None and action._handle(event):
                del self._actions[control_id]
        if self._waiters:
            self._check_waiters(event)
        listeners = self._listeners.get(event_type)
        if listeners:
            self._run_callbacks(listeners, event)
        if ended:
            self._end()

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

    def _end(self) -> None:
        """The call ended: finish every wait, drop the listeners, release the call.

        An action whose result matters after the call (a recording's URL) may get
        its terminal event after ``ended``, or never: it gets ``late_result_grace``
        seconds to arrive, during which the call still routes that action's events
        (and nothing else), then finishes with the synthetic "call ended" result.
        """
        lingering: dict[str, Action] = {}
        for control_id, action in self._actions.items():
            if action.result_outlives_call and self._task_group is not None:
                lingering[control_id] = action
            else:
                action._finish_call_ended(self.end_reason)
        self._actions = lingering
        for waiter in self._waiters:
            if not waiter.event.is_set():
                waiter.error = CallEnded(self.call_id, self.end_reason)
                waiter.event.set()
        self._listeners.clear()
        self._ended.set()
        self._run_end_callbacks()
        if lingering:
            self._client._call_finished(self, lingering=True)
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
        """Nothing of this call runs any more: let its listener task drain and end."""
        self._close_listeners()
        self._client._call_finished(self)

    def _close_listeners(self) -> None:
        """Close the listener queue (idempotent): its task drains what is queued, ends."""
        if self._pump_send is not None:
            self._pump_send.close()

    def _fail(self, error: RelayError) -> None:
        """End this call's waits with ``error`` (the session it lived in is gone)."""
        for action in list(self._actions.values()):
            action._fail(error)
        self._actions.clear()
        if self._ended.is_set():  # only late results were pending: they never come
            return
        self._failure = error
        for waiter in self._waiters:
            if not waiter.event.is_set():
                waiter.error = error
                waiter.event.set()
        self._listeners.clear()
        self.state = CALL_STATE_ENDED
        self.end_reason = self.end_reason or "session_lost"
        self._ended.set()
        self._close_listeners()
        self._run_end_callbacks()

    def _run_end_callbacks(self) -> None:
        callbacks, self._end_callbacks = self._end_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("end callback %r of call %s failed", callback, self.call_id)

    # -- listeners ---------------------------------------------------------------------

    def on(self, event_type: str, listener: EventListener) -> None:
        """Call ``listener(event)`` for every event of ``event_type`` on this call.

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

        Raises :class:`CallEnded` on an ended call and :class:`EventOverflow` once
        this call's listeners fell too far behind and were dropped: in each case a
        new listener would never run.
        """
        if self._ended.is_set():
            raise CallEnded(self.call_id, self.end_reason, "cannot listen on an ended call")
        if self._listener_error is not None:
            raise self._listener_error  # its listener task is gone: say so, not drop silently
        self._listeners[event_type] = (*self._listeners.get(event_type, ()), listener)

    def off(self, event_type: str, listener: EventListener | None = None) -> None:
        """Remove one listener, or all listeners of ``event_type``."""
        if listener is None:
            self._listeners.pop(event_type, None)
            return
        listeners = self._listeners.get(event_type, ())
        if listener in listeners:
            index = listeners.index(listener)
            rest = listeners[:index] + listeners[index + 1 :]
            if rest:
                self._listeners[event_type] = rest
            else:
                del self._listeners[event_type]

    def _ensure_pump(self) -> None:
        if self._task_group is None:
            # Only a call nobody handles, or one whose scope is over, has none.
            raise RuntimeError(f"{self!r} has no task group: its scope has ended")
        if self._pump_send is not None:
            return
        send, receive = anyio.create_memory_object_stream[
            tuple[tuple[EventListener, ...], RelayEvent]
        ](self._event_buffer)
        self._pump_send = send
        assert self._task_group is not None
        self._task_group.start_soon(self._pump, receive, name=f"relay listeners {self.call_id}")

    def _run_callbacks(self, callbacks: tuple[EventListener, ...], event: RelayEvent) -> None:
        """Run plain listeners now, or queue for this call's listener task (from the reader).

        The inline path is the hot one (thousands of events a second): no task
        switch, no queue. It is taken only while the call has no listener task, so a
        plain listener never overtakes an async one queued before it.
        """
        if self._pump_send is None:
            callbacks = run_plain(callbacks, event, self)
            if not callbacks:
                return
        self._queue(callbacks, event)

    def _queue(self, callbacks: tuple[EventListener, ...], event: RelayEvent) -> None:
        if self._pump_send is None:
            try:
                self._ensure_pump()
            except RuntimeError:
                logger.warning("dropped callbacks for %r: its scope has ended", self)
                for callback in callbacks:
                    _discard(callback)
                return
        try:
            self._pump_send.send_nowait((callbacks, event))
        except anyio.WouldBlock:
            self._overflow()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            logger.debug("dropped a listener event for %r after its scope ended", self)

    def _overflow(self) -> None:
        error = EventOverflow(f"listeners of call {self.call_id}", self._event_buffer)
        logger.error("%s; its listeners are dropped", error.message)
        self._listeners.clear()
        # Only the listeners fail: waits and actions do not go through the pump.
        self._listener_error = error
        self._pump_send.close()

    async def _pump(self, receive: ListenerQueue) -> None:
        await run_listeners(receive, self)

    async def _stop_actions(self) -> None:
        """The handler returned: stop the actions it left running (shielded, bounded).

        Listeners stay: the call's scope lives on until the call ends.
        """
        running = [a for a in self._actions.values() if not a.is_done]
        if running and self.state != CALL_STATE_ENDED:
            async with anyio.create_task_group() as tg:
                for action in running:
                    tg.start_soon(action._stop_quietly)

    # -- waiting -----------------------------------------------------------------------

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[RelayEvent], bool] | None = None,
        timeout: float | None = None,
    ) -> RelayEvent:
        """Wait for the next event of ``event_type`` (matching ``predicate``) on this call.

        Raises :class:`CallEnded` if the call ends first, ``TimeoutError`` after
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
        """Wait until answered. Raises :class:`CallEnded` if it ends unanswered."""
        return await self._wait_for_state(CALL_STATE_ANSWERED, timeout, strict=True)

    async def wait_for_ringing(self, timeout: float | None = None) -> RelayEvent:
        return await self._wait_for_state(CALL_STATE_RINGING, timeout, strict=False)

    async def wait_for_ending(self, timeout: float | None = None) -> RelayEvent:
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

    # -- commands ----------------------------------------------------------------------

    async def _command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a call command; 404/410 (call gone) give ``{}``, other errors raise."""
        result = await self._send(method, params)
        return {} if result is None else result

    async def _send(self, method: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
        full = {"node_id": self.node_id, "call_id": self.call_id}
        if params:
            full.update(params)
        try:
            return await self._client._call_request(method, full)
        except RelayError as exc:
            if exc.code in _GONE_CODES:
                logger.warning("%s on call %s: call is gone (%s)", method, self.call_id, exc)
                return None
            raise

    async def _start(
        self,
        action: _A,
        method: str,
        params: dict[str, Any],
    ) -> _A:
        """Register ``action`` before sending (an instant terminal event is not lost).

        On an ended call nothing is sent and the action is returned already done
        (``on_completed`` runs before this returns, as the call may have no listener
        task left to run it on). If the start is cancelled or times out once the
        command may have reached the server, the operation is stopped (shielded,
        bounded): nobody holds a handle that could stop it later.
        """
        if self._ended.is_set():
            await action._complete_now(self.end_reason)
            return action
        self._actions[action.control_id] = action
        try:
            result = await self._send(method, {"control_id": action.control_id, **params})
        except BaseException as exc:
            if isinstance(exc, RequestTimeout | anyio.get_cancelled_exc_class()):
                await action._stop_quietly()  # still registered: its end event resolves it
            self._actions.pop(action.control_id, None)
            raise
        if result is None:
            self._actions.pop(action.control_id, None)
            await action._complete_now(self.end_reason or "gone")
        else:
            action.start_result = result
        return action

    @staticmethod
    def _control_id(control_id: str | None) -> str:
        return control_id or str(uuid.uuid4())

    # lifecycle

    async def answer(self, **kwargs: Any) -> dict[str, Any]:
        """Answer the call (``calling.answer``); extra keyword arguments are sent as params."""
        return await self._command("calling.answer", kwargs)

    async def hangup(self, reason: str = "hangup") -> dict[str, Any]:
        """End the call (``calling.end``). A call that is already gone is a no-op.

        So is a call already hung up here: once RELAY accepted one ``calling.end``,
        another would only come back 410 (the official client sends it anyway), e.g.
        when the client exits right after a handler hung up, before "ended" arrived.
        A hangup issued while another is in flight waits for that one's answer.
        """
        while not (self._hung_up or self._ended.is_set()):
            in_flight = self._hangup_in_flight
            if in_flight is not None:
                await in_flight.wait()
                continue  # that one failed: try again, or it succeeded: done
            in_flight = self._hangup_in_flight = LazyEvent()
            try:
                result = await self._command("calling.end", {"reason": reason})
                self._hung_up = True
                return result
            finally:
                self._hangup_in_flight = None
                in_flight.set()
        return {}

    async def pass_(self) -> dict[str, Any]:
        """Decline control: the platform offers the call to another consumer."""
        return await self._command("calling.pass")

    # play

    async def play(
        self,
        media: Sequence[Mapping[str, Any]],
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> PlayAction:
        """Play media (tts, audio, silence, ringtone), flat or wire-shaped items."""
        params = {
            "play": normalize_media(media),
            **_drop_none(volume=volume, direction=direction, loop=loop),
            **kwargs,
        }
        action = PlayAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.play", params)

    async def play_tts(
        self,
        text: str,
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        item = {"type": "tts", "params": _drop_none(text=text, language=language, gender=gender,
                                                     voice=voice)}
        return await self.play([item], volume=volume, control_id=control_id,
                               on_completed=on_completed)

    async def play_audio(
        self,
        url: str,
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        return await self.play([{"type": "audio", "params": {"url": url}}], volume=volume,
                               control_id=control_id, on_completed=on_completed)

    async def play_silence(
        self,
        duration: float,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        return await self.play([{"type": "silence", "params": {"duration": duration}}],
                               control_id=control_id, on_completed=on_completed)

    async def play_ringtone(
        self,
        name: str,
        *,
        duration: float | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        item = {"type": "ringtone", "params": _drop_none(name=name, duration=duration)}
        return await self.play([item], volume=volume, control_id=control_id,
                               on_completed=on_completed)

    # record

    async def record(
        self,
        audio: Mapping[str, Any] | None = None,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> RecordAction:
        """Record the call; ``audio`` is the audio spec (format, direction, beep...)."""
        params = {"record": {"audio": dict(audio or {})}, **kwargs}
        action = RecordAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.record", params)

    # input

    async def play_and_collect(
        self,
        media: Sequence[Mapping[str, Any]],
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> CollectAction:
        """Play a prompt and collect digits or speech; ``wait()`` gives the final result."""
        params = {
            "play": normalize_media(media),
            "collect": dict(collect),
            **_drop_none(volume=volume),
            **kwargs,
        }
        action = CollectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.play_and_collect", params)

    async def prompt_tts(
        self,
        text: str,
        collect: Mapping[str, Any],
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> CollectAction:
        item = {"type": "tts", "params": _drop_none(text=text, language=language, gender=gender,
                                                     voice=voice)}
        return await self.play_and_collect([item], collect, volume=volume,
                                           control_id=control_id, on_completed=on_completed)

    async def prompt_audio(
        self,
        url: str,
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> CollectAction:
        return await self.play_and_collect([{"type": "audio", "params": {"url": url}}], collect,
                                           volume=volume, control_id=control_id,
                                           on_completed=on_completed)

    async def collect(
        self,
        *,
        digits: Mapping[str, Any] | None = None,
        speech: Mapping[str, Any] | None = None,
        initial_timeout: float | None = None,
        partial_results: bool | None = None,
        continuous: bool | None = None,
        send_start_of_input: bool | None = None,
        start_input_timers: bool | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> StandaloneCollectAction:
        """Collect digits and/or speech without a prompt."""
        if digits is None and speech is None:
            raise ValueError("collect() needs digits=, speech= or both")
        params = {
            **_drop_none(
                digits=dict(digits) if digits is not None else None,
                speech=dict(speech) if speech is not None else None,
                initial_timeout=initial_timeout,
                partial_results=partial_results,
                continuous=continuous,
                send_start_of_input=send_start_of_input,
                start_input_timers=start_input_timers,
            ),
            **kwargs,
        }
        action = StandaloneCollectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.collect", params)

    # detect

    async def detect(
        self,
        detect: Mapping[str, Any],
        *,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> DetectAction:
        """Start a detector (machine, fax, digit); ``wait()`` gives the first result."""
        params = {"detect": dict(detect), **_drop_none(timeout=timeout), **kwargs}
        action = DetectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.detect", params)

    async def detect_answering_machine(
        self,
        *,
        initial_timeout: float | None = None,
        end_silence_timeout: float | None = None,
        machine_ready_timeout: float | None = None,
        machine_voice_threshold: float | None = None,
        machine_words_threshold: int | None = None,
        detect_interruptions: bool | None = None,
        detect_message_end: bool | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        params = _drop_none(
            initial_timeout=initial_timeout,
            end_silence_timeout=end_silence_timeout,
            machine_ready_timeout=machine_ready_timeout,
            machine_voice_threshold=machine_voice_threshold,
            machine_words_threshold=machine_words_threshold,
            detect_interruptions=detect_interruptions,
            detect_message_end=detect_message_end,
        )
        return await self.detect({"type": "machine", "params": params}, timeout=timeout,
                                 control_id=control_id, on_completed=on_completed)

    async def detect_fax(
        self,
        *,
        tone: str | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        return await self.detect({"type": "fax", "params": _drop_none(tone=tone)},
                                 timeout=timeout, control_id=control_id,
                                 on_completed=on_completed)

    async def detect_digit(
        self,
        *,
        digits: str | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        return await self.detect({"type": "digit", "params": _drop_none(digits=digits)},
                                 timeout=timeout, control_id=control_id,
                                 on_completed=on_completed)

    # bridging

    async def connect(
        self,
        devices: Sequence[Sequence[Mapping[str, Any]]],
        *,
        ringback: Sequence[Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Bridge this call to devices (outer list: in series; inner list: in parallel).

        Returns the RPC result; progress arrives as ``calling.call.connect`` events.
        """
        params = {
            "devices": [[dict(d) for d in group] for group in devices],
            **_drop_none(
                ringback=normalize_media(ringback) if ringback is not None else None,
                tag=tag,
                max_duration=max_duration,
                max_price_per_minute=max_price_per_minute,
                status_url=status_url,
            ),
            **kwargs,
        }
        return await self._command("calling.connect", params)

    async def disconnect(self) -> dict[str, Any]:
        """Unbridge without hanging up either leg."""
        return await self._command("calling.disconnect")

    # the rest of the surface: simple commands and action starters

    async def send_digits(self, digits: str, *, control_id: str | None = None) -> dict[str, Any]:
        return await self._command(
            "calling.send_digits", {"control_id": self._control_id(control_id), "digits": digits}
        )

    async def hold(self) -> dict[str, Any]:
        return await self._command("calling.hold")

    async def unhold(self) -> dict[str, Any]:
        return await self._command("calling.unhold")

    async def denoise(self) -> dict[str, Any]:
        return await self._command("calling.denoise")

    async def denoise_stop(self) -> dict[str, Any]:
        return await self._command("calling.denoise.stop")

    async def transfer(self, dest: str, **kwargs: Any) -> dict[str, Any]:
        return await self._command("calling.transfer", {"dest": dest, **kwargs})

    async def tap(
        self,
        tap: Mapping[str, Any],
        device: Mapping[str, Any],
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> TapAction:
        params = {"tap": dict(tap), "device": dict(device), **kwargs}
        return await self._start(
            TapAction(self, self._control_id(control_id), on_completed), "calling.tap", params
        )

    async def stream(
        self,
        url: str,
        *,
        name: str | None = None,
        codec: str | None = None,
        track: str | None = None,
        status_url: str | None = None,
        status_url_method: str | None = None,
        authorization_bearer_token: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> StreamAction:
        params = {
            "url": url,
            **_drop_none(
                name=name,
                codec=codec,
                track=track,
                status_url=status_url,
                status_url_method=status_url_method,
                authorization_bearer_token=authorization_bearer_token,
                custom_parameters=dict(custom_parameters) if custom_parameters else None,
            ),
            **kwargs,
        }
        return await self._start(
            StreamAction(self, self._control_id(control_id), on_completed), "calling.stream",
            params,
        )

    async def transcribe(
        self,
        *,
        status_url: str | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> TranscribeAction:
        params = {**_drop_none(status_url=status_url), **kwargs}
        return await self._start(
            TranscribeAction(self, self._control_id(control_id), on_completed),
            "calling.transcribe",
            params,
        )

    async def send_fax(
        self,
        document: str,
        *,
        identity: str | None = None,
        header_info: str | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        params = {
            "document": document,
            **_drop_none(identity=identity, header_info=header_info),
            **kwargs,
        }
        action = FaxAction(self, self._control_id(control_id), on_completed,
                           method_prefix="calling.send_fax")
        return await self._start(action, "calling.send_fax", params)

    async def receive_fax(
        self,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        action = FaxAction(self, self._control_id(control_id), on_completed,
                           method_prefix="calling.receive_fax")
        return await self._start(action, "calling.receive_fax", dict(kwargs))

    async def pay(
        self,
        payment_connector_url: str,
        *,
        control_id: str | None = None,
        input_method: str | None = None,
        status_url: str | None = None,
        payment_method: str | None = None,
        timeout: str | int | None = None,
        max_attempts: str | int | None = None,
        security_code: str | bool | None = None,
        postal_code: str | bool | None = None,
        min_postal_code_length: str | int | None = None,
        token_type: str | None = None,
        charge_amount: str | None = None,
        currency: str | None = None,
        language: str | None = None,
        voice: str | None = None,
        description: str | None = None,
        valid_card_types: str | None = None,
        parameters: Sequence[Mapping[str, Any]] | None = None,
        prompts: Sequence[Mapping[str, Any]] | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> PayAction:
        """Collect a payment over DTMF; ``wait()`` gives the ``finished``/``error`` event.

        The keywords are the official client's; values go out as given (the official
        client types most of them as strings, the guide as numbers and booleans, and
        which the server prefers is unconfirmed). ``input_method`` is sent as ``input``.
        """
        params = {
            "payment_connector_url": payment_connector_url,
            **_drop_none(
                input=input_method,
                status_url=status_url,
                payment_method=payment_method,
                timeout=timeout,
                max_attempts=max_attempts,
                security_code=security_code,
                postal_code=postal_code,
                min_postal_code_length=min_postal_code_length,
                token_type=token_type,
                charge_amount=charge_amount,
                currency=currency,
                language=language,
                voice=voice,
                description=description,
                valid_card_types=valid_card_types,
                parameters=[dict(p) for p in parameters] if parameters is not None else None,
                prompts=[dict(p) for p in prompts] if prompts is not None else None,
            ),
            **kwargs,
        }
        return await self._start(
            PayAction(self, self._control_id(control_id), on_completed), "calling.pay", params
        )

    async def ai(
        self,
        *,
        control_id: str | None = None,
        agent: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        post_prompt: Mapping[str, Any] | None = None,
        post_prompt_url: str | None = None,
        post_prompt_auth_user: str | None = None,
        post_prompt_auth_password: str | None = None,
        global_data: Mapping[str, Any] | None = None,
        pronounce: Sequence[Mapping[str, Any]] | None = None,
        hints: Sequence[str] | None = None,
        languages: Sequence[Mapping[str, Any]] | None = None,
        SWAIG: Mapping[str, Any] | None = None,  # the wire spells it so
        ai_params: Mapping[str, Any] | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> AIAction:
        """Start an AI agent on the call; ``wait()`` returns when the session ends.

        The session ends on its ``calling.call.ai`` ``finished``/``error`` event, on
        ``stop()``, or with the call (the server may never send an AI event, so the
        call's end always finishes the wait). ``ai_params`` is sent as ``params``.
        """
        params = {
            **_drop_none(
                agent=agent,
                prompt=dict(prompt) if prompt is not None else None,
                post_prompt=dict(post_prompt) if post_prompt is not None else None,
                post_prompt_url=post_prompt_url,
                post_prompt_auth_user=post_prompt_auth_user,
                post_prompt_auth_password=post_prompt_auth_password,
                global_data=dict(global_data) if global_data is not None else None,
                pronounce=[dict(p) for p in pronounce] if pronounce is not None else None,
                hints=list(hints) if hints is not None else None,
                languages=[dict(lang) for lang in languages] if languages is not None else None,
                SWAIG=dict(SWAIG) if SWAIG is not None else None,
                params=dict(ai_params) if ai_params is not None else None,
            ),
            **kwargs,
        }
        return await self._start(
            AIAction(self, self._control_id(control_id), on_completed), "calling.ai", params
        )

    async def refer(
        self, device: Mapping[str, Any], *, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """SIP REFER this call to another endpoint; progress in ``calling.call.refer``."""
        return await self._command(
            "calling.refer", {"device": dict(device), **_drop_none(status_url=status_url), **kwargs}
        )

    async def echo(
        self, *, timeout: float | None = None, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Echo the caller's audio back (``timeout`` 0: until the call ends)."""
        return await self._command(
            "calling.echo", {**_drop_none(timeout=timeout, status_url=status_url), **kwargs}
        )

    async def bind_digit(
        self,
        digits: str,
        bind_method: str,
        *,
        bind_params: Mapping[str, Any] | None = None,
        realm: str | None = None,
        max_triggers: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run ``bind_method`` (e.g. ``"calling.play"``) whenever the caller keys ``digits``."""
        params = {
            "digits": digits,
            "bind_method": bind_method,
            **_drop_none(
                params=dict(bind_params) if bind_params is not None else None,
                realm=realm,
                max_triggers=max_triggers,
            ),
            **kwargs,
        }
        return await self._command("calling.bind_digit", params)

    async def clear_digit_bindings(
        self, *, realm: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await self._command(
            "calling.clear_digit_bindings", {**_drop_none(realm=realm), **kwargs}
        )

    async def live_transcribe(self, action: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``action`` is ``{"start": {...}}``, ``{"stop": {}}`` or ``{"summarize": {...}}``."""
        return await self._command("calling.live_transcribe", {"action": dict(action), **kwargs})

    async def live_translate(
        self, action: Mapping[str, Any], *, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = {"action": dict(action), **_drop_none(status_url=status_url), **kwargs}
        return await self._command("calling.live_translate", params)

    async def join_room(
        self, name: str, *, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = {"name": name, **_drop_none(status_url=status_url), **kwargs}
        return await self._command("calling.join_room", params)

    async def leave_room(self, **kwargs: Any) -> dict[str, Any]:
        return await self._command("calling.leave_room", kwargs)

    async def amazon_bedrock(
        self,
        *,
        prompt: Any = None,
        SWAIG: Mapping[str, Any] | None = None,  # the wire spells it so
        ai_params: Mapping[str, Any] | None = None,
        global_data: Mapping[str, Any] | None = None,
        post_prompt: Mapping[str, Any] | None = None,
        post_prompt_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Start an Amazon Bedrock agent; no action handle (the official API has none)."""
        params = {
            **_drop_none(
                prompt=prompt,
                SWAIG=dict(SWAIG) if SWAIG is not None else None,
                params=dict(ai_params) if ai_params is not None else None,
                global_data=dict(global_data) if global_data is not None else None,
                post_prompt=dict(post_prompt) if post_prompt is not None else None,
                post_prompt_url=post_prompt_url,
            ),
            **kwargs,
        }
        return await self._command("calling.amazon_bedrock", params)

    async def ai_message(
        self,
        *,
        message_text: str | None = None,
        role: str | None = None,
        reset: Mapping[str, Any] | None = None,
        global_data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Inject a message into the running AI session."""
        params = _drop_none(
            message_text=message_text,
            role=role,
            reset=dict(reset) if reset is not None else None,
            global_data=dict(global_data) if global_data is not None else None,
        )
        return await self._command("calling.ai_message", {**params, **kwargs})

    async def ai_hold(
        self, *, timeout: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = {**_drop_none(timeout=timeout, prompt=prompt), **kwargs}
        return await self._command("calling.ai_hold", params)

    async def ai_unhold(self, *, prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return await self._command("calling.ai_unhold", {**_drop_none(prompt=prompt), **kwargs})

    async def user_event(self, *, event: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Send an application event (any JSON) to the call's other consumers."""
        return await self._command("calling.user_event", {**_drop_none(event=event), **kwargs})

    async def queue_enter(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Put the call in a queue; progress arrives as ``calling.call.queue`` events."""
        params = {
            "control_id": self._control_id(control_id),
            "queue_name": queue_name,
            **_drop_none(status_url=status_url),
            **kwargs,
        }
        return await self._command("calling.queue.enter", params)

    async def queue_leave(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        queue_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        params = {
            "control_id": self._control_id(control_id),
            "queue_name": queue_name,
            **_drop_none(queue_id=queue_id, status_url=status_url),
            **kwargs,
        }
        return await self._command("calling.queue.leave", params)

    async def join_conference(
        self,
        name: str,
        *,
        muted: bool | None = None,
        beep: str | None = None,
        start_on_enter: bool | None = None,
        end_on_exit: bool | None = None,
        wait_url: str | None = None,
        max_participants: int | None = None,
        record: str | None = None,
        region: str | None = None,
        trim: str | None = None,
        coach: str | None = None,
        status_callback: str | None = None,
        status_callback_event: str | None = None,
        status_callback_event_type: str | None = None,
        status_callback_method: str | None = None,
        recording_status_callback: str | None = None,
        recording_status_callback_event: str | None = None,
        recording_status_callback_event_type: str | None = None,
        recording_status_callback_method: str | None = None,
        stream_obj: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Join (or start) the named conference.

        The result may carry the ``conference_id`` that ``leave_conference`` needs;
        conference progress arrives as ``calling.conference`` events (the ones without
        a ``call_id`` reach ``client.on(EVENT_CONFERENCE, ...)``). ``stream_obj`` is
        sent as ``stream``.
        """
        params = {
            "name": name,
            **_drop_none(
                muted=muted,
                beep=beep,
                start_on_enter=start_on_enter,
                end_on_exit=end_on_exit,
                wait_url=wait_url,
                max_participants=max_participants,
                record=record,
                region=region,
                trim=trim,
                coach=coach,
                status_callback=status_callback,
                status_callback_event=status_callback_event,
                status_callback_event_type=status_callback_event_type,
                status_callback_method=status_callback_method,
                recording_status_callback=recording_status_callback,
                recording_status_callback_event=recording_status_callback_event,
                recording_status_callback_event_type=recording_status_callback_event_type,
                recording_status_callback_method=recording_status_callback_method,
                stream=dict(stream_obj) if stream_obj is not None else None,
            ),
            **kwargs,
        }
        return await self._command("calling.join_conference", params)

    async def leave_conference(self, conference_id: str, **kwargs: Any) -> dict[str, Any]:
        return await self._command(
            "calling.leave_conference", {"conference_id": conference_id, **kwargs}
        )

