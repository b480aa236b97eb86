"""Event streams: the events of one action, or of a call, read like an anyio object stream.

``async for event in action:`` and ``async for event in call.events(...)`` read an
``EventStream``. A stream is a listener of its owner: its callback, run by the call's
``Dispatcher`` like any plain listener (so in event order with the call's other
listeners), puts each event into a bounded memory object stream that the consumer
reads. Nothing of this exists before the first iteration: an action or a call that
nobody iterates has no stream, no buffer and no callback, and its events take the
path they always took.

From when. A stream yields the events routed once its iteration started (or its
``async with`` block was entered); its owner keeps nothing for it beyond what it
keeps anyway. So an action already finished yields its result (the terminal event
``action.result`` holds) and ends, and a call already ended yields its ``ended``
state event, when state events were asked for, and ends.

Until when. An action's stream ends after its terminal event (the synthetic "call
ended" result included); a call's after the call's end (after the ``ended`` state
event, when it asked for state events). When the session is lost, so the outcome is
unknown, the stream raises ``ConnectionLost`` once its buffered events are read, as
``wait()`` does.

Overflow: the listener rule (``_listeners``). A stream buffers at most the call's
``call_event_buffer`` events; under the call's ``"fail"`` policy, one more fails that
stream: its consumer reads what is buffered, then gets ``EventOverflow``, while the
call's other listeners and streams carry on. When the call's listeners themselves
overflow, its streams fail with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import ClassVar, Final, Protocol, final

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._constants import CALL_STATE_ENDED, EVENT_CALL_RECEIVE, EVENT_CALL_STATE
from ._errors import RelayError
from ._events import EVENT_CLASSES, RelayEvent
from ._listeners import (
    Callbacks,
    Dispatcher,
    EventListener,
    ListenerHandle,
    ListenerSet,
    pick_listener,
    without,
)
from ._sync import LazyEvent

__all__ = [
    "ALL_CALL_EVENTS",
    "ActionEvents",
    "CallEvents",
    "EventStream",
    "StreamHost",
    "StreamSource",
]


#: What ``call.events()`` with no types yields: every event type this package knows
#: that RELAY routes to a call (any other type must be named).
ALL_CALL_EVENTS: Final[tuple[str, ...]] = tuple(
    t for t in EVENT_CLASSES if t.startswith("calling.") and t != EVENT_CALL_RECEIVE
)


class StreamSource(Protocol):
    """The owner of a stream (an action, a call).

    ``_stream_opened`` subscribes the stream (its ``_put`` gets the events, and the
    owner ends it) and returns True, or, when the owner is over, gives the stream
    what it keeps (a result) and ends it, returning False.
    """

    def _stream_opened(self, stream: EventStream) -> bool: ...

    def _stream_closed(self, stream: EventStream) -> None: ...


class StreamHost(Protocol):
    """What an action's streams need of its call (a ``Call``)."""

    _dispatcher: Dispatcher

    def _track_stream(self, stream: EventStream) -> None: ...

    def _untrack_stream(self, stream: EventStream) -> None: ...


@final
class EventStream:
    """The events of one action (``async for event in action``) or of a call
    (``call.events(...)``), in the order they arrived.

    Read like an anyio object receive stream (a memory object stream's receiving
    end): ``async for`` reads it to its end, ``receive()`` reads one event
    (``anyio.EndOfStream`` at the end), and ``async with`` (or ``aclose()``) closes
    it, which stops it at once, however the block is left: the form to use when a
    loop may stop early (``break``, an exception, a cancel scope). A loop that runs
    to the end needs no block: the stream ends with its owner.

    It starts on first use (iteration, ``receive()`` or entering the block) and
    yields what is routed from then on; an action already finished yields its result,
    a call already ended its ``ended`` event (if asked for). It ends after the
    action's terminal event or the call's end. It raises ``ConnectionLost`` after its
    events when the session was lost, and ``EventOverflow`` when its consumer fell
    more than ``call_event_buffer`` events behind (or the call's listeners did).
    A stream is read once; iterate the action again for a new one.
    """

    __slots__ = (
        "_closed",
        "_dispatcher",
        "_error",
        "_last",
        "_receive",
        "_send",
        "_source",
        "_subscribed",
        "event_types",
    )

    def __init__(
        self,
        source: StreamSource,
        dispatcher: Dispatcher,
        event_types: Sequence[str] = (),
        last: Callable[[RelayEvent], bool] | None = None,
    ) -> None:
        self._source = source
        self._dispatcher = dispatcher
        #: The event types a call's stream yields (empty for an action's: all of its own).
        self.event_types: tuple[str, ...] = tuple(dict.fromkeys(event_types))
        self._last = last
        self._send: MemoryObjectSendStream[RelayEvent] | None = None
        self._receive: MemoryObjectReceiveStream[RelayEvent] | None = None
        self._subscribed = False
        self._closed = False
        self._error: RelayError | None = None

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._subscribed:
            state = "open"
        else:
            state = "ended" if self._send is not None else "not started"
        return f"<EventStream of {self._source!r} {state}>"

    def __del__(self) -> None:
        # Left without closing (a loop that broke out): once its owner dropped it,
        # nothing refers to it; close the buffer quietly rather than warn.
        receive, send = getattr(self, "_receive", None), getattr(self, "_send", None)
        if receive is not None and send is not None:
            receive.close()
            send.close()

    # -- the consumer's side -----------------------------------------------------------

    def __aiter__(self) -> EventStream:
        self._open()
        return self

    async def __anext__(self) -> RelayEvent:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> EventStream:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def receive(self) -> RelayEvent:
        """The next event; ``EndOfStream`` once the stream has ended.

        Raises ``ConnectionLost`` or ``EventOverflow`` instead of ``EndOfStream`` when
        the stream ended for that reason (see the class docstring), and anyio's
        ``ClosedResourceError`` once closed.
        """
        self._open()
        if self._receive is None:  # closed before it started
            raise anyio.ClosedResourceError
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            if self._error is not None:
                raise self._error from None
            raise

    def close(self) -> None:
        """Stop now: no more events reach this stream, what is buffered is dropped."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        if self._receive is not None:
            assert self._send is not None
            self._send.close()
            self._receive.close()

    async def aclose(self) -> None:
        """``close()``, as an anyio resource (what leaving ``async with`` calls)."""
        self.close()
        await anyio.lowlevel.checkpoint()

    # -- the owner's side --------------------------------------------------------------

    def _open(self) -> None:
        if self._send is not None or self._closed:
            return
        self._send, self._receive = anyio.create_memory_object_stream[RelayEvent](
            self._dispatcher.buffer
        )
        self._subscribed = self._source._stream_opened(self)

    def _put(self, event: RelayEvent) -> None:
        """The listener callback: buffer one event; never blocks (the reader's side)."""
        send = self._send
        assert send is not None
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            self._overflow(event)
            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # closed by its consumer, or already ended: nothing more goes in
        if self._last is not None and self._last(event):
            self._end()

    def _end(self, event: RelayEvent | None = None, error: RelayError | None = None) -> None:
        """No more events: the consumer reads what is buffered, then the end (or ``error``)."""
        if error is not None and self._error is None:
            self._error = error
        self._unsubscribe()
        if self._send is not None:
            self._send.close()

    def _unsubscribe(self) -> None:
        if self._subscribed:
            self._subscribed = False
            self._source._stream_closed(self)

    def _overflow(self, event: RelayEvent) -> None:
        error = self._dispatcher.report_overflow("an event stream", "is", event, "that stream ends")
        if error is not None:
            self._end(error=error)


class ActionEvents:
    """An action's own listeners (``on()``) and streams (``async for``): a mixin of ``Action``.

    Both are callbacks in ``_listeners``, which the action dispatches through its
    call's ``Dispatcher`` with each of its events (empty for most actions: then an
    event costs what it cost before).
    """

    call: StreamHost
    event_type: ClassVar[str]
    result: RelayEvent | None
    _done: LazyEvent
    _error: RelayError | None
    #: ``on()`` listeners and stream callbacks, run with each event of this action.
    _listeners: Callbacks = ()

    def on(
        self, listener: EventListener | None = None, *, handler: EventListener | None = None
    ) -> ListenerHandle:
        """Call ``listener(event)`` for every event of this action, its terminal one included.

        Every event with this action's ``control_id`` (a collect's partial results,
        a detector's updates, a recording's state changes...), in the order events
        arrived and through the call's listeners' queue, so in order with the call's
        own listeners (before them, for the same event) and under the same overflow
        rule; plain or async, as ``call.on``. Returns a ``ListenerHandle``. On an
        action already done nothing more will come: the handle is inert. Raises
        ``EventOverflow`` once the call's listeners were dropped for falling behind.
        """
        listener = pick_listener(listener, handler)
        if self._done.is_set():
            return ListenerHandle(None, self.event_type, listener)
        failed = self.call._dispatcher.failed
        if failed is not None:
            raise failed
        self._listeners = (*self._listeners, listener)
        return ListenerHandle(self, self.event_type, listener)

    def events(self) -> EventStream:
        """This action's events as an ``EventStream`` (what ``async for`` reads).

        For ``async with action.events() as events:``, which stops the stream when the
        block is left, early or not.
        """
        return EventStream(self, self.call._dispatcher, last=self._is_result)

    def __aiter__(self) -> EventStream:
        return self.events().__aiter__()

    def _is_result(self, event: RelayEvent) -> bool:
        return event is self.result

    def _remove_listener(self, event_type: str, listener: EventListener) -> None:
        self._listeners = without(self._listeners, listener)

    def _stream_opened(self, stream: EventStream) -> bool:
        if self._done.is_set():
            if self._error is not None:
                stream._end(error=self._error)
            else:
                assert self.result is not None
                stream._put(self.result)
            return False
        failed = self.call._dispatcher.failed
        if failed is not None:
            stream._end(error=failed)
            return False
        self._listeners = (*self._listeners, stream._put)
        self.call._track_stream(stream)
        return True

    def _stream_closed(self, stream: EventStream) -> None:
        self._listeners = without(self._listeners, stream._put)
        self.call._untrack_stream(stream)


class CallEvents:
    """A call's streams (``call.events(...)``), and the streams of its actions: for ``Call``.

    A call stream's callback is a plain listener of the call for each of its event
    types. Every open stream, the actions' too, is in ``_streams`` (``None`` until the
    first), so that the call's end and its listeners' overflow reach them.
    """

    _dispatcher: Dispatcher
    _listeners: ListenerSet
    _ended: LazyEvent
    _failure: RelayError | None
    _state_events: dict[str, RelayEvent]
    _streams: list[EventStream] | None = None

    def _synthetic_state_event(self) -> RelayEvent:
        raise NotImplementedError  # the call's

    def events(self, *event_types: str) -> EventStream:
        """The call's events of ``event_types`` (all it knows, if none) as an ``EventStream``.

        ``async for event in call.events(EVENT_CALL_STATE):`` yields from when the
        iteration starts until the call has ended (its ``ended`` state event
        included, when state events are asked for); ``async with call.events(...) as
        events:`` stops it when the block is left. With no types it yields every type
        in ``ALL_CALL_EVENTS`` (each call event type this package knows); name any
        other type explicitly.
        """
        return EventStream(self, self._dispatcher, event_types or ALL_CALL_EVENTS)

    def _stream_opened(self, stream: EventStream) -> bool:
        if self._ended.is_set():
            if self._failure is not None:
                stream._end(error=self._failure)
                return False
            ended = self._state_events.get(CALL_STATE_ENDED)
            if ended is not None and EVENT_CALL_STATE in stream.event_types:
                stream._put(ended)
            stream._end()
            return False
        failed = self._dispatcher.failed
        if failed is not None:
            stream._end(error=failed)
            return False
        for event_type in stream.event_types:
            self._listeners.add(event_type, stream._put)
        self._track_stream(stream)
        return True

    def _stream_closed(self, stream: EventStream) -> None:
        for event_type in stream.event_types:
            self._listeners.remove(event_type, stream._put)
        self._untrack_stream(stream)

    def _track_stream(self, stream: EventStream) -> None:
        if self._streams is None:
            self._streams = []
        self._streams.append(stream)

    def _untrack_stream(self, stream: EventStream) -> None:
        if self._streams is not None and stream in self._streams:
            self._streams.remove(stream)

    def _end_streams(self, error: RelayError | None) -> None:
        """The call is over: its streams end after the events already given to them.

        With ``error`` (the session is gone) every stream ends raising it, the
        actions' too; else an action's stream ends with its action's own result.
        """
        assert self._streams is not None
        last = self._state_events.get(CALL_STATE_ENDED) or self._synthetic_state_event()
        for stream in list(self._streams):
            if error is None and stream._source is not self:
                continue
            if error is not None and stream._error is None:
                stream._error = error
            self._dispatcher.after_queued(last, stream._end)

    def _listeners_overflowed(self) -> None:
        """The call's listeners fell too far behind: all go, its streams fail at once."""
        self._listeners.clear()
        error = self._dispatcher.failed
        assert error is not None
        for stream in list(self._streams or ()):
            stream._end(error=error)
