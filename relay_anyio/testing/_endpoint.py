"""The session layer of the fake server: JSON-RPC over each connection, in order.

``Endpoint`` serves every WebSocket the listener accepts: it numbers the connection,
reads its frames in one task (so responses and events do not depend on scheduler
whims), journals them, checks what a conformant client must do (``violations``),
routes requests to a pending fault or to the method's handler, matches responses to
events (acks) and to the server's own requests (pings, ``signalwire.disconnect``).
``signalwire.connect`` is the ``SessionRegistry``'s. Only delayed work (a delayed
answer, the ping loop) runs in other tasks of the connection.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio

from .._constants import (
    METHOD_SIGNALWIRE_CONNECT,
    METHOD_SIGNALWIRE_DISCONNECT,
    METHOD_SIGNALWIRE_EVENT,
    METHOD_SIGNALWIRE_PING,
)
from .._errors import ConnectionLost, ProtocolError
from .._websocket import WebSocket
from ._calls import CallHost
from ._connect import ConnectHost, SessionRegistry
from ._context import Handler, HandlerContext, JsonRpcError, ResultCodeError
from ._session import Connection
from ._switches import INVALID_REQUEST_REPLIES, InvalidRequestReply, choice
from ._validation import InvalidRequestError, check_request, refusal
from ._wire import (
    Direction,
    Frame,
    JournalEntry,
    JSONObject,
    describe,
    error_body,
    parse_frame,
    request_key,
    response,
)

__all__ = [
    "NOT_AUTHENTICATED_CODE",
    "NOT_AUTHENTICATED_MESSAGE",
    "Endpoint",
    "EndpointHost",
    "Fault",
    "FaultSource",
]

logger = logging.getLogger("relay_anyio.testing")

#: Answer to any request but ``signalwire.connect`` on a connection not yet
#: authenticated (UNCONFIRMED: the reference does not say what RELAY answers).
NOT_AUTHENTICATED_CODE: Final = -32001
NOT_AUTHENTICATED_MESSAGE: Final = "Not authenticated"
#: Server requests every client must answer with a result (reference §2.6).
_SERVED_BY_CLIENTS: Final = frozenset(
    {METHOD_SIGNALWIRE_EVENT, METHOD_SIGNALWIRE_PING, METHOD_SIGNALWIRE_DISCONNECT}
)

#: What a pending fault does with the request it takes instead of the handler.
Fault = Callable[["Endpoint", Connection, JSONObject], Awaitable[None]]


class FaultSource(Protocol):
    """The faults the endpoint consults (``_faults.Faults``)."""

    def take(self, method: str) -> Fault | None:
        """The fault pending for the next ``method`` request, if any (consumed)."""

    def tick(self) -> bool:
        """One frame passed; True when the connection must be dropped at it."""


class EndpointHost(CallHost, ConnectHost, Protocol):
    """What the session layer reads and records on its server (a ``FakeRelayServer``)."""

    keep_journal: bool
    journal: list[JournalEntry]
    violations: list[str]
    acked_count: int
    acked_event_ids: list[str]
    unknown_acks: list[Any]
    ping_interval: float | None
    ping_replies: list[JSONObject]
    invalid_request_reply: InvalidRequestReply
    close_codes: dict[int, int | None]


class Endpoint:
    """The connections of one server and the JSON-RPC spoken on them."""

    def __init__(
        self, host: EndpointHost, handlers: dict[str, Handler], faults: FaultSource
    ) -> None:
        self._host = host
        self.handlers = handlers
        self._faults = faults
        self.registry = SessionRegistry(host, self.violation)
        #: Open connections by number, in order of acceptance.
        self.open: dict[int, Connection] = {}
        #: Connections accepted so far.
        self.count = 0
        self._reads = 0
        #: Server requests awaiting a reply, by id: (method, whether only a result
        #: is a right reply).
        self._server_requests: dict[str | int, tuple[str, bool]] = {}

    def target(self, number: int | None) -> Connection:
        """Connection ``number``, or the newest open one; LookupError if there is none."""
        if number is None:
            if not self.open:
                raise LookupError("no client is connected")
            return self.open[max(self.open)]
        try:
            return self.open[number]
        except KeyError:
            raise LookupError(f"connection {number} is not open") from None

    # -- connections -----------------------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        """Serve one accepted WebSocket until it closes or the server drops it."""
        host = self._host
        self.count += 1
        conn = Connection(self.count, ws, self.record, self._faults.tick)
        self.open[conn.number] = conn
        host.notify()
        logger.debug("connection %d opened", conn.number)
        try:
            with conn.cancel_scope:
                async with anyio.create_task_group() as tg:
                    conn.task_group = tg
                    await self._read_loop(conn)
                    tg.cancel_scope.cancel()
        finally:
            del self.open[conn.number]
            host.close_codes[conn.number] = ws.peer_close_code
            if conn.session is not None:
                conn.session._detach(conn)
            await ws.abort()
            conn.done.set()
            host.notify()
            logger.debug("connection %d closed (code %s)", conn.number, ws.close_code)

    async def _read_loop(self, conn: Connection) -> None:
        while True:
            await conn.wait_until_reading()
            try:
                batch = await conn.ws.receive_batch()
            except (ConnectionLost, ProtocolError) as exc:
                logger.debug("connection %d: %s", conn.number, exc)
                return
            self._reads += 1
            read = self._reads
            for raw in batch:
                await conn.wait_until_reading()
                await self._on_frame(conn, raw, read)

    def record(self, direction: Direction, connection: int, frame: Frame, read: int = 0) -> None:
        """Journal a frame (unless ``keep_journal`` is off) and wake the waiters."""
        host = self._host
        if host.keep_journal:
            now = anyio.current_time()
            host.journal.append(JournalEntry(direction, connection, frame, now, read))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s #%d %s", direction, connection, describe(frame))
        host.notify()

    def violation(self, conn: Connection, problem: str) -> None:
        """Record something a conformant client never does."""
        message = f"connection {conn.number}: {problem}"
        logger.warning("client broke the protocol: %s", message)
        self._host.violations.append(message)

    # -- frames from clients ---------------------------------------------------------

    async def _on_frame(self, conn: Connection, raw: str | bytes, read: int = 0) -> None:
        if conn.dropped:
            return
        frame = parse_frame(raw)
        self.record("in", conn.number, frame, read)
        if self._faults.tick():
            logger.debug("connection %d: random drop after an incoming frame", conn.number)
            await conn.abort()  # the frame is lost with the link: it has no effect
            return
        if not isinstance(frame, dict):
            self.violation(conn, "sent a frame that is not a JSON object")
        elif "method" in frame:
            await self._on_request(conn, frame)
        elif "id" in frame and ("result" in frame or "error" in frame):
            self._on_response(conn, frame)
        else:
            self.violation(conn, "sent a frame that is neither a request nor a response")

    async def _on_request(self, conn: Connection, frame: JSONObject) -> None:
        method = frame["method"]
        if "id" not in frame:
            self.violation(conn, f"sent {method!r} without an id")
        if not isinstance(method, str) or not isinstance(frame.get("params", {}), dict):
            self.violation(conn, "sent a request with a bad method or params")
            await conn.send(response(frame, error=error_body(-32600, "Invalid Request")))
            return
        if method != METHOD_SIGNALWIRE_CONNECT and conn.session is None:
            self.violation(conn, f"sent {method} before authenticating")
            error = error_body(NOT_AUTHENTICATED_CODE, NOT_AUTHENTICATED_MESSAGE)
            await conn.send(response(frame, error=error))
            return
        fault = self._faults.take(method)
        if fault is not None:
            await fault(self, conn, frame)
        else:
            await self.answer(conn, frame)

    async def answer(
        self, conn: Connection, frame: JSONObject, *, lose_response: bool = False
    ) -> None:
        """Carry out a request and answer it (``lose_response``: drop the link instead)."""
        host = self._host
        method: str = frame["method"]
        params: JSONObject = frame.get("params", {})
        if method == METHOD_SIGNALWIRE_CONNECT:
            if await self.registry.connect(conn, frame, params):
                if host.ping_interval is not None:
                    conn.start_soon(functools.partial(self._ping_loop, conn))
                host.notify()
            return
        session = conn.session
        if session is None:  # checked before; guards delayed requests all the same
            return
        self._note_call_request(frame, params)
        handler = self.handlers.get(method)
        ctx = HandlerContext(host, session, conn.number, frame)
        try:
            if handler is None:
                raise InvalidRequestError(method, unknown_method=True)
            check_request(method, params)
            result = await handler(ctx, params)
        except InvalidRequestError as exc:
            await self._refuse(conn, frame, exc)
            return
        except ResultCodeError as exc:
            await conn.send(response(frame, result=exc.result))
            return
        except JsonRpcError as exc:
            error = error_body(exc.code, exc.message, exc.data)
            await conn.send(response(frame, error=error))
            return
        # The request has taken effect: its response and its events must not depend
        # on this connection surviving. A drop in between (drop_randomly, a test's
        # drop_connection) loses the response, as on a real network, but the events
        # are still produced, queued on the session and delivered on resume.
        with anyio.CancelScope(shield=True):
            if lose_response:
                logger.debug("connection %d: dropping before answering %s", conn.number, method)
                await conn.abort()
            else:
                await conn.send(response(frame, result=result))
            await ctx.run_follow_ups()

    async def _refuse(self, conn: Connection, frame: JSONObject, exc: InvalidRequestError) -> None:
        """Answer a request no server would accept, as ``invalid_request_reply`` says."""
        method = frame["method"]
        if exc.unknown_method:
            self.violation(conn, f"sent unknown method {method!r}")
        else:
            self.violation(conn, f"sent an invalid {method}: {exc.detail}")
        reply = choice(
            "invalid_request_reply", self._host.invalid_request_reply, INVALID_REQUEST_REPLIES
        )
        key, body = refusal(exc, reply)
        await conn.send(response(frame, **{key: body}))

    def _note_call_request(self, frame: JSONObject, params: JSONObject) -> None:
        call_id = params.get("call_id")
        call = self._host.calls.get(call_id) if isinstance(call_id, str) else None
        if call is not None:
            call.requests.append(frame)

    def _on_response(self, conn: Connection, frame: JSONObject) -> None:
        host = self._host
        response_id = frame["id"]
        key = request_key(response_id)
        request = self._server_requests.pop(key, None) if key is not None else None
        if request is not None:
            # A reply to a server request (a ping, a disconnect, a raw frame). An error
            # is the right answer to one no client must serve: an unknown method
            # (-32601, reference §2.6), bad params (-32602).
            method, must_succeed = request
            if "error" in frame and must_succeed:
                self.violation(conn, f"answered {method} {response_id!r} with an error")
            if method == METHOD_SIGNALWIRE_PING:
                host.ping_replies.append(frame)
            return
        if "error" in frame:
            self.violation(conn, f"answered {response_id!r} with an error")
        session = conn.session
        if session is not None and isinstance(key, str) and session._ack(key):
            host.acked_count += 1
            if host.keep_journal:
                host.acked_event_ids.append(key)
            host.notify()
        elif session is not None and isinstance(key, str) and key in session._dropped:
            pass  # a late ack of an event a resume dropped: nothing left to do
        else:
            host.unknown_acks.append(response_id)
            self.violation(conn, f"acknowledged unknown or already acked id {response_id!r}")

    # -- requests from the server ----------------------------------------------------

    async def _ping_loop(self, conn: Connection) -> None:
        while (interval := self._host.ping_interval) is not None:
            await anyio.sleep(interval)
            await self.send_request(conn, METHOD_SIGNALWIRE_PING, {})

    async def send_request(self, conn: Connection, method: str, params: JSONObject) -> None:
        """Send a server request whose reply must be a result."""
        request_id = str(uuid.uuid4())
        self._server_requests[request_id] = (method, True)
        await conn.send([{"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}])

    async def send_raw(self, conn: Connection, data: str | bytes) -> None:
        """Send a frame as given; a request in it expects a reply like any server request.

        A result, or an error if no client must serve it (a method other than
        ``signalwire.event``/``ping``/``disconnect``, params that are not an object).
        """
        frame = parse_frame(data)
        if isinstance(frame, dict) and "method" in frame:
            key = request_key(frame.get("id"))
            method = frame["method"]
            if key is not None:
                served = method in _SERVED_BY_CLIENTS and isinstance(frame.get("params"), dict)
                self._server_requests[key] = (str(method), served)
        await conn.send_raw(data)
