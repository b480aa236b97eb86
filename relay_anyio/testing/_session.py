"""A RELAY session and the WebSocket connection it is attached to, as the fake keeps them.

A ``FakeSession`` outlives connections: it holds the events not yet acknowledged, so a
client that resumes it gets them again. A ``Connection`` is one accepted WebSocket:
its send order (one lock), its pause (a half-open link) and its fate (close, abort).
They refer to each other (a session sends through its connection, a connection knows
its session), hence one module.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import anyio
import anyio.abc
import attrs

from .._constants import METHOD_SIGNALWIRE_EVENT
from .._errors import ConnectionLost
from .._websocket import WebSocket
from ._wire import EVENT_SEQ_KEY, Direction, Frame, JSONObject, parse_frame

__all__ = ["Connection", "FakeSession"]

logger = logging.getLogger("relay_anyio.testing")


@attrs.define(eq=False)
class FakeSession:
    """A RELAY session: what survives a dropped connection when the client resumes.

    Keyed by its ``protocol`` string. Events are tracked here rather than on a
    connection because an event that was sent but not acknowledged, or produced while
    no connection was attached, must be delivered again on the next connection that
    resumes the session, with the same id and in the original order (unless
    ``FakeRelayServer.redeliver_on_resume`` is False: then the resume drops them).
    """

    protocol: str
    sessionid: str
    identity: str
    contexts: list[str] = attrs.field(factory=list)
    #: The latest blob sent in ``signalwire.authorization.state``.
    authorization_state: str = ""
    #: Returns the next stamp for an event's params, or None for no stamp (see
    #: ``FakeRelayServer.stamp_events``).
    stamp: Callable[[], int | None] | None = attrs.field(default=None, kw_only=True, repr=False)
    _unacked: dict[str, JSONObject] = attrs.field(factory=dict, init=False, repr=False)
    #: Ids of events dropped unacknowledged (``redeliver_on_resume = False``): a late
    #: ack of one is no violation.
    _dropped: set[str] = attrs.field(factory=set, init=False, repr=False)
    _connection: Connection | None = attrs.field(default=None, init=False, repr=False)

    @property
    def connection(self) -> int | None:
        """Number of the connection attached to the session, None while detached."""
        return None if self._connection is None else self._connection.number

    def subscribe(self, contexts: Iterable[str]) -> None:
        """Add ``contexts`` (``signalwire.receive``, or those of the connect)."""
        self.contexts.extend(c for c in dict.fromkeys(contexts) if c not in self.contexts)

    def unsubscribe(self, contexts: Iterable[str]) -> None:
        """Drop ``contexts`` (``signalwire.unreceive``)."""
        dropped = set(contexts)
        self.contexts[:] = [c for c in self.contexts if c not in dropped]

    def unacked_events(self) -> list[JSONObject]:
        """Events sent or queued and not acknowledged yet, oldest first."""
        return list(self._unacked.values())

    async def emit(self, event_type: str, params: JSONObject) -> JSONObject:
        """Send a ``signalwire.event`` now, or queue it until the session is resumed."""
        frame = self.queue_event(event_type, params)
        if self._connection is not None:
            await self._connection.send([frame])
        return frame

    async def emit_many(self, events: Iterable[tuple[str, JSONObject]]) -> list[JSONObject]:
        """Queue several events and send them in one write (a burst, a flood)."""
        frames = [self.queue_event(event_type, params) for event_type, params in events]
        if self._connection is not None:
            await self._connection.send(frames)
        return frames

    def queue_event(self, event_type: str, params: JSONObject) -> JSONObject:
        """Register an event as unacknowledged without sending it."""
        if self.stamp is not None and (seq := self.stamp()) is not None:
            params = {**params, EVENT_SEQ_KEY: seq}
        frame: JSONObject = {
            "jsonrpc": "2.0",
            "id": str(uuid.uuid4()),
            "method": METHOD_SIGNALWIRE_EVENT,
            "params": {"event_type": event_type, "timestamp": time.time(), "params": params},
        }
        self._unacked[frame["id"]] = frame
        return frame

    def _ack(self, event_id: str) -> bool:
        """Mark an event acknowledged; False if it is unknown or was acked already."""
        return self._unacked.pop(event_id, None) is not None

    def _drop_unacked(self) -> list[JSONObject]:
        """Forget every unacknowledged event (a server that does not replay them)."""
        dropped, self._unacked = list(self._unacked.values()), {}
        self._dropped.update(frame["id"] for frame in dropped)
        return dropped

    def _attach(self, connection: Connection) -> Connection | None:
        """Make ``connection`` the session's; return the one it replaces, if any."""
        previous, self._connection = self._connection, connection
        connection.session = self
        return previous if previous is not connection else None

    def _detach(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None


class Connection:
    """One accepted WebSocket: its reader state, its send order, its fate."""

    def __init__(
        self,
        number: int,
        ws: WebSocket,
        record: Callable[[Direction, int, Frame], None],
        chaos: Callable[[], bool] = lambda: False,
    ) -> None:
        self.number = number
        self.ws = ws
        self.session: FakeSession | None = None
        #: Cancelled to end the connection's tasks from outside (drop, takeover).
        self.cancel_scope = anyio.CancelScope()
        self.task_group: anyio.abc.TaskGroup | None = None
        self.done = anyio.Event()
        #: Held across a sequence of writes that must not interleave with others
        #: (the connect response and the replay of a resumed session).
        self.lock = anyio.Lock()
        self._resumed: anyio.Event | None = None
        self._record = record
        self._chaos = chaos
        #: Aborted by the server (a drop, a takeover): frames still in the read batch
        #: are not processed, as they would not be on a dead link.
        self.dropped = False

    @property
    def paused(self) -> bool:
        return self._resumed is not None

    def pause(self) -> None:
        if self._resumed is None:
            self._resumed = anyio.Event()

    def resume(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.set()

    async def wait_until_reading(self) -> None:
        while (resumed := self._resumed) is not None:
            await resumed.wait()

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self.task_group is None:
            raise RuntimeError(f"connection {self.number} is not running")
        self.task_group.start_soon(func)

    async def send(self, frames: list[JSONObject]) -> None:
        async with self.lock:
            await self.write(frames)

    async def write(self, frames: list[JSONObject]) -> None:
        """Send frames in one write; the caller holds ``lock``.

        While reading is stopped nothing is written either (a half-open link carries
        nothing); the events stay unacknowledged on the session and a resume delivers
        them. A connection that died meanwhile is not an error: its reader notices.
        """
        if not frames or self.paused or self.ws.closed:
            return
        cut = next((i for i in range(len(frames)) if self._chaos()), None)
        for frame in frames[:cut]:
            self._record("out", self.number, frame)
        texts = [json.dumps(frame, separators=(",", ":")) for frame in frames[:cut]]
        try:
            if texts:
                await self.ws.send_texts(texts)
        except ConnectionLost:
            logger.debug("connection %d: lost while sending", self.number)
        if cut is not None:
            logger.debug("connection %d: random drop before an outgoing frame", self.number)
            await self.abort()

    async def send_raw(self, data: str | bytes) -> None:
        async with self.lock:
            if self.paused or self.ws.closed:
                return
            self._record("out", self.number, parse_frame(data))
            try:
                if isinstance(data, str):
                    await self.ws.send_text(data)
                else:
                    await self.ws.send_bytes(data)
            except ConnectionLost:
                logger.debug("connection %d: lost while sending raw data", self.number)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.aclose(code, reason)
        self.cancel_scope.cancel()

    async def abort(self) -> None:
        self.dropped = True
        await self.ws.abort()
        self.cancel_scope.cancel()
