"""SMS/MMS: ``Message`` objects and the registry that routes their state events.

Outbound messages are tracked by ``message_id`` until a terminal state (delivered,
undelivered, failed). Two things the official client gets wrong are handled here:

* State events can overtake the ``messaging.send`` response (the server emits them as
  soon as it has the id). They are held, for a bounded number of ids, until the
  response names the message, then applied in order: nothing is lost.
* A message that never reaches a terminal state is not tracked forever: after
  ``message_ttl`` seconds it is forgotten and its waiters get ``MessageExpired``.
  Memory stays bounded however the carrier behaves.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from ._constants import EVENT_MESSAGING_STATE, MESSAGE_TERMINAL_STATES
from ._errors import MessageExpired, RelayError
from ._events import MessageStateEvent, RelayEvent, make_event
from ._listeners import Callbacks, Dispatcher, ListenerHandle, pick_listener, without
from ._sync import LazyEvent

__all__ = ["Message", "MessageListener", "MessageRegistry"]

logger = logging.getLogger("relay_anyio.messaging")

MessageListener = Callable[[RelayEvent], Any]
MessageHandler = Callable[["Message"], Awaitable[object]]

#: Message ids whose state events may wait for their send response (oldest dropped),
#: and how many events each may hold: a message has at most a handful of states.
EARLY_EVENT_IDS = 1000
EARLY_EVENTS_PER_ID = 16


def _text(params: Mapping[str, Any], key: str, default: str = "") -> str:
    value = params.get(key)
    return value if isinstance(value, str) else default


def _strings(params: Mapping[str, Any], key: str) -> list[str]:
    value = params.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class Message:
    """One SMS/MMS, inbound (from ``@client.on_message``) or outbound (``send_message``)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        params: Mapping[str, Any],
        *,
        state: str,
        direction: str,
        on_completed: MessageListener | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self.message_id: str = _text(params, "message_id")
        self.context: str = _text(params, "context")
        self.from_number: str = _text(params, "from_number")
        self.to_number: str = _text(params, "to_number")
        self.body: str = _text(params, "body")
        self.media: list[str] = _strings(params, "media")
        self.tags: list[str] = _strings(params, "tags")
        segments = params.get("segments")
        self.segments: int = segments if isinstance(segments, int) else 0
        self.state: str = _text(params, "message_state") or state
        self.direction: str = _text(params, "direction") or direction
        self.reason: str = _text(params, "reason")
        self.result: RelayEvent | None = None
        self._error: RelayError | None = None
        self._done = LazyEvent()
        self._listeners: Callbacks = ()
        self._on_completed = on_completed

    def __repr__(self) -> str:
        return f"<Message {self.message_id} {self.direction} {self.state}>"

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def on(
        self, listener: MessageListener | None = None, *, handler: MessageListener | None = None
    ) -> ListenerHandle:
        """Call ``listener(event)`` on every state change (plain or async function).

        ``handler=`` is the same as ``listener`` (SignalWire's client spells it so).
        Returns a ``ListenerHandle`` (``remove()``, or a ``with`` block).
        """
        listener = pick_listener(listener, handler)
        self._listeners = (*self._listeners, listener)
        return ListenerHandle(self, EVENT_MESSAGING_STATE, listener)

    def _remove_listener(self, event_type: str, listener: MessageListener) -> None:
        self._listeners = without(self._listeners, listener)

    async def wait(self, timeout: float | None = None) -> RelayEvent:
        """Wait for the terminal state event (delivered, undelivered or failed).

        Raises ``TimeoutError`` after ``timeout`` (the message stays tracked) and
        ``MessageExpired`` if the client gave up tracking it.
        """
        if not self._done.is_set():
            await self._done.wait(timeout)
        if self._error is not None:
            raise self._error
        assert self.result is not None
        return self.result

    def _apply(self, event: MessageStateEvent) -> bool:
        """Apply a state event (from the reader); return True once terminal."""
        if self._done.is_set():
            return True
        params = event.raw_params
        state = _text(params, "message_state")
        if state:
            self.state = state
        if "reason" in params:
            self.reason = _text(params, "reason")
        segments = params.get("segments")
        if isinstance(segments, int) and segments:
            self.segments = segments
        callbacks = self._listeners
        terminal = state in MESSAGE_TERMINAL_STATES
        if terminal:
            self.result = event
            self._done.set()
            if self._on_completed is not None:
                callbacks = (*callbacks, self._on_completed)
        if callbacks:
            self._dispatcher.dispatch(callbacks, event)
        return terminal

    def _expire(self, error: RelayError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()


class MessageRegistry:
    """Outbound messages by id, early events, and expiry (see the module docstring)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._tracked: OrderedDict[str, tuple[Message, float]] = OrderedDict()
        self._early: OrderedDict[str, list[MessageStateEvent]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracked)

    def route_state(self, params: dict[str, Any], timestamp: float) -> None:
        """A ``messaging.state`` event, from the reader."""
        event = make_event(EVENT_MESSAGING_STATE, params, timestamp)
        assert isinstance(event, MessageStateEvent)
        message_id = params.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            logger.warning("ignored a messaging.state event without message_id")
            return
        entry = self._tracked.get(message_id)
        if entry is not None:
            if entry[0]._apply(event):
                del self._tracked[message_id]
            return
        early = self._early.get(message_id)
        if early is None:
            early = self._early[message_id] = []
            while len(self._early) > EARLY_EVENT_IDS:
                dropped, _ = self._early.popitem(last=False)
                logger.debug("forgot early state events of unknown message %s", dropped)
        if len(early) < EARLY_EVENTS_PER_ID:
            early.append(event)

    def track(self, message: Message) -> None:
        """Start tracking a sent message and apply any state events that came first."""
        for event in self._early.pop(message.message_id, ()):
            if message._apply(event):
                return
        self._tracked[message.message_id] = (message, anyio.current_time() + self.ttl)

    def expire(self) -> float:
        """Forget messages past their deadline; return seconds until the next deadline."""
        now = anyio.current_time()
        while self._tracked:
            message_id, (message, deadline) = next(iter(self._tracked.items()))
            if deadline > now:
                return deadline - now
            del self._tracked[message_id]
            logger.warning(
                "message %s expired in state %s",
                message_id,
                message.state,
                extra={"message_id": message_id},
            )
            message._expire(MessageExpired(message_id, self.ttl))
        return self.ttl

    async def run_expiry(self) -> None:
        """Sweep expired messages forever (one task per client)."""
        while True:
            delay = self.expire()
            await anyio.sleep(max(delay, 0.001))
