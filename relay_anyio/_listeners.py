"""The one listener mechanism: calls, client-level listeners and messages use it.

Two pieces. ``ListenerSet`` keeps listeners by event type as tuples that are
replaced on change, so the reader iterates them without copying. ``Dispatcher``
runs callbacks for one owner: plain functions inline, as the event is routed (a task
switch per event would cost more than most listeners), until one returns an
awaitable; from then on everything goes through the owner's listener task, fed by a
bounded memory object stream, so a plain listener never overtakes an async one and a
slow listener delays only its owner.

When that stream is full the owner's overflow policy decides: ``"fail"`` (a call)
drops the owner's listeners and remembers an ``EventOverflow`` that adding a
listener raises from then on; ``"drop"`` (the client, messages) logs and drops that
one event. Either way the reader, the connection and every other owner carry on.

Every ``on()`` returns a ``ListenerHandle``, made here for all owners: ``remove()``
or a ``with`` block ends that one registration (``_streams`` builds event streams on
the same listeners).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar, final

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import EventOverflow
from ._events import RelayEvent

__all__ = [
    "Callbacks",
    "Dispatcher",
    "EventListener",
    "ListenerHandle",
    "ListenerOwner",
    "ListenerSet",
    "OverflowPolicy",
    "pick_listener",
    "without",
]

logger = logging.getLogger("relay_anyio.listeners")

EventListener = Callable[[RelayEvent], Any]
Callbacks = tuple[EventListener, ...]
OverflowPolicy = Literal["fail", "drop"]
_Item = tuple[Callbacks, RelayEvent]
_L = TypeVar("_L", bound=Callable[..., Any])


def pick_listener(listener: _L | None, handler: _L | None) -> _L:
    """The callback of ``on(..., listener)`` or ``on(..., handler=...)``.

    SignalWire's client names the parameter ``handler``, this package ``listener``;
    either works, positionally or by keyword, but not both at once.
    """
    if listener is not None and handler is not None:
        raise TypeError("on() takes a listener or handler=, not both")
    chosen = listener if listener is not None else handler
    if chosen is None:
        raise TypeError("on() needs a listener: on(event_type, listener) or handler=...")
    if not callable(chosen):
        raise TypeError(f"a listener must be callable, not {chosen!r}")
    return chosen


def without(callbacks: Callbacks, listener: EventListener) -> Callbacks:
    """``callbacks`` without the first registration of ``listener`` (a new tuple)."""
    if listener not in callbacks:
        return callbacks
    index = callbacks.index(listener)
    return callbacks[:index] + callbacks[index + 1 :]


class ListenerOwner(Protocol):
    """Whatever keeps listeners a ``ListenerHandle`` can remove one of."""

    def _remove_listener(self, event_type: str, listener: EventListener) -> None: ...


@final
class ListenerHandle:
    """What ``on()`` returns: the way to stop that listener, now or at the end of a block.

    ``handle.remove()`` stops it (once; calling it again does nothing, nor does
    removing a listener its owner already dropped, as a call does at its end).
    ``with call.on(EVENT_CALL_PLAY, show):`` scopes it to the block: however the
    block is left, no event routed after that reaches the listener. An event routed
    before may still be on its way to an async listener (queued on the call's
    listener task): removal stops what comes next, it does not take back what is
    already delivered. ``call.off(...)`` keeps working beside it.
    """

    __slots__ = ("_event_type", "_listener", "_owner")

    def __init__(
        self, owner: ListenerOwner | None, event_type: str, listener: EventListener
    ) -> None:
        self._owner = owner
        self._event_type = event_type
        self._listener = listener

    def __repr__(self) -> str:
        state = "active" if self._owner is not None else "removed"
        return f"<ListenerHandle {self._event_type} {self._listener!r} {state}>"

    @property
    def listener(self) -> EventListener:
        """The callback this handle registered."""
        return self._listener

    def remove(self) -> None:
        """Stop the listener: no further event reaches it. Idempotent."""
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._remove_listener(self._event_type, self._listener)

    def __enter__(self) -> ListenerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


class ListenerSet(dict[str, Callbacks]):
    """Listeners by event type; iteration order is registration order.

    A dict, so that the reader's lookup per event (``get``) is the C method itself.
    """

    __slots__ = ()

    def add(self, event_type: str, listener: EventListener) -> ListenerHandle:
        self[event_type] = (*self.get(event_type, ()), listener)
        return ListenerHandle(self, event_type, listener)

    def remove(self, event_type: str, listener: EventListener | None = None) -> None:
        """Remove one listener (its first registration), or all of ``event_type``."""
        if listener is None:
            self.pop(event_type, None)
            return
        listeners = self.get(event_type, ())
        rest = without(listeners, listener)
        if rest is listeners:
            return
        if rest:
            self[event_type] = rest
        else:
            del self[event_type]

    def _remove_listener(self, event_type: str, listener: EventListener) -> None:
        self.remove(event_type, listener)


class Dispatcher:
    """Runs the callbacks of one owner in event order (see the module docstring).

    ``task_group`` is where the listener task starts, the first time a callback
    returns an awaitable; the owner sets it when it has a scope and clears it when
    that scope is gone.
    """

    __slots__ = (
        "_call_id",
        "_kind",
        "_on_fail",
        "_send",
        "buffer",
        "closed",
        "failed",
        "on_overflow",
        "policy",
        "task_group",
    )

    def __init__(
        self,
        kind: str,
        buffer: int,
        policy: OverflowPolicy,
        *,
        on_fail: Callable[[], object] | None = None,
        call_id: str | None = None,
    ) -> None:
        # The owner's name and log fields are built when a line is logged, not per
        # owner: a call that nobody listens to allocates nothing for them.
        self._kind = kind
        self._call_id = call_id
        self.buffer: int = buffer
        self.policy: OverflowPolicy = policy
        self.task_group: TaskGroup | None = None
        #: Set once a ``"fail"`` owner overflowed: nothing runs for it any more.
        self.failed: EventOverflow | None = None
        self.closed: bool = False
        self._on_fail = on_fail
        #: Told ``(owner, policy)`` on every overflow (the client counts them).
        self.on_overflow: Callable[[str, str], object] | None = None
        self._send: MemoryObjectSendStream[_Item] | None = None

    @property
    def owner(self) -> str:
        """Whose callbacks these are, for log lines ("call <id>", "the client")."""
        return self._kind if self._call_id is None else f"{self._kind} {self._call_id}"

    @property
    def extra(self) -> Mapping[str, str] | None:
        """The structured fields of this owner's log lines (a call's ``call_id``)."""
        return None if self._call_id is None else {"call_id": self._call_id}

    def dispatch(self, callbacks: Callbacks, event: RelayEvent) -> None:
        """Run ``callbacks`` on ``event`` now, or queue them; never blocks (the reader)."""
        if self._send is None:
            callbacks = _run_plain(callbacks, event, self)
            if not callbacks:
                return
            if not self._start():
                for callback in callbacks:
                    _discard(callback)
                return
        assert self._send is not None
        try:
            self._send.send_nowait((callbacks, event))
        except anyio.WouldBlock:
            self._overflow(event)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            for callback in callbacks:
                _discard(callback)
            logger.debug(
                "dropped a %s event for %s: it stopped listening",
                event.event_type,
                self.owner,
                extra=self.extra,
            )

    def after_queued(self, event: RelayEvent, callback: EventListener) -> None:
        """Run ``callback(event)`` after every callback dispatched so far, never before.

        At once when nothing can be pending (no listener task, or it is gone), else
        queued behind them: how an event stream ends after the last event it was
        given. A full queue is this owner's overflow, then ``callback`` runs at once.
        """
        send = self._send
        if send is not None:
            try:
                send.send_nowait(((callback,), event))
                return
            except anyio.WouldBlock:
                self._overflow(event)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        callback(event)

    def close(self) -> None:
        """The owner's scope ends: its listener task runs what is queued, then ends.

        For good: a callback that would need the task after this is dropped.
        """
        self.closed = True
        if self._send is not None:
            self._send.close()

    def _start(self) -> bool:
        if self.failed is not None:
            return False
        if self.task_group is None or self.closed:
            logger.warning(
                "dropped callbacks for %s: its scope has ended", self.owner, extra=self.extra
            )
            return False
        send, receive = anyio.create_memory_object_stream[_Item](self.buffer)
        self._send = send
        self.task_group.start_soon(
            run_queued, receive, self, name=f"relay listeners of {self.owner}"
        )
        return True

    def report_overflow(
        self, what: str, are: str, event: RelayEvent, consequence: str
    ) -> EventOverflow | None:
        """A queue of this owner's (``what``: its listeners, a stream) was full.

        The one overflow rule: counted, then by the owner's policy either ``event`` is
        dropped and logged (``"drop"``: returns None) or the ``EventOverflow`` to end
        that queue with is logged with ``consequence`` and returned (``"fail"``).
        """
        if self.on_overflow is not None:
            self.on_overflow(self.owner, self.policy)
        if self.policy == "drop":
            logger.error(
                "%s of %s %s more than %d events behind; dropped a %s event",
                what,
                self.owner,
                are,
                self.buffer,
                event.event_type,
                extra=self.extra,
            )
            return None
        error = EventOverflow(f"{what} of {self.owner}", self.buffer)
        logger.error("%s; %s", error.message, consequence, extra=self.extra)
        return error

    def _overflow(self, event: RelayEvent) -> None:
        error = self.report_overflow("listeners", "are", event, "its listeners are dropped")
        if error is None:
            return
        self.failed = error
        assert self._send is not None
        self._send.close()
        if self._on_fail is not None:
            self._on_fail()


async def run_queued(receive: MemoryObjectReceiveStream[_Item], owner: Dispatcher) -> None:
    """A listener task: run queued callbacks in order until the queue closes.

    An exception is logged with the owner's name (and its fields) and the next
    callback still runs.
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
                        "listener %r failed on %s for %s",
                        callback,
                        event.event_type,
                        owner.owner,
                        extra=owner.extra,
                    )


def _run_plain(callbacks: Callbacks, event: RelayEvent, owner: Dispatcher) -> Callbacks:
    """Run callbacks now, in order, until one returns an awaitable; return the rest.

    What is returned (that awaitable, then the callbacks after it) must run on the
    owner's listener task, and every later event must go there too.
    """
    for index, callback in enumerate(callbacks):
        try:
            result = callback(event)
        except Exception:
            logger.exception(
                "listener %r failed on %s for %s",
                callback,
                event.event_type,
                owner.owner,
                extra=owner.extra,
            )
            continue
        if result is not None and inspect.isawaitable(result):
            return (_Returning(result), *callbacks[index + 1 :])
    return ()


class _Returning:
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
    if isinstance(callback, _Returning) and inspect.iscoroutine(callback.awaitable):
        callback.awaitable.close()
