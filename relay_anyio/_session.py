"""The JSON-RPC session: one connection at a time, reconnected and resumed forever.

Structure (see ``docs/concepts.md``)::

    Session.run()                       -- reconnect loop, backoff, auth give-up rule
      └─ per connection task group
           ├─ reader task               -- the only reader: responses, events, pings
           ├─ keepalive task            -- client signalwire.ping, dead-link detection
           └─ (drain task)              -- after signalwire.disconnect

The reader never awaits user code: it resolves request waiters, acknowledges events
(all acks of one socket read in one write, before any of those events is routed) and
hands events to :class:`SessionListener`, whose methods are synchronous and must not
block. Requests wait (bounded by their timeout) until a connection is authenticated,
so nothing but ``signalwire.connect`` ever goes out before authentication succeeds.

Delivery is exactly-once per session: the server redelivers unacked events on resume
with their original ids; a bounded window of recently seen ids drops the repeats.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import random
import ssl
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from ._constants import EVENT_AUTHORIZATION_STATE, PROTOCOL_VERSION
from ._errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    RelayError,
    RequestTimeout,
    TransportError,
)
from ._redact import redact_frame
from ._transport import MessageTransport, TransportName, open_transport
from ._version import __version__

__all__ = ["ConnectionState", "Session", "SessionListener", "SessionOptions", "check_result"]

logger = logging.getLogger("relay_anyio.session")
frame_logger = logging.getLogger("relay_anyio.frames")

AGENT = f"relay-anyio/{__version__}"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
_SEEN_WINDOW = 10_000


class ConnectionState(enum.Enum):
    """Where the client's link to RELAY stands; see :meth:`RelayClient.on_connection_state`."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@attrs.frozen
class SessionOptions:
    """Everything a session needs to open, authenticate and keep a connection."""

    url: str
    authentication: Mapping[str, str]
    agent: str = AGENT
    transport: TransportName = "wsproto"
    ssl_context: ssl.SSLContext | None = None
    request_timeout: float = 10.0
    #: Bound on TCP connect + TLS + WebSocket handshake; None: ``request_timeout``.
    open_timeout: float | None = None
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    max_auth_failures: int = 3
    disconnect_grace: float = 5.0


class SessionListener(Protocol):
    """What the session tells the client. Called from the reader: never block."""

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        ...

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None: ...


def check_result(method: str, result: Any) -> dict[str, Any]:
    """Apply RELAY's result-code rule (reference §2.4) to a successful response."""
    if not isinstance(result, dict):
        return {"raw": result}
    code = result.get("code")
    if code is None:
        return result
    text = str(code)
    if len(text) == 3 and text[0] == "2" and text.isdigit():
        return result
    try:
        numeric = int(text)
    except ValueError:
        numeric = -1
    message = result.get("message")
    raise RelayError(numeric, str(message) if message else "Unknown error", result)


def _error_from(error: Any) -> RelayError:
    if not isinstance(error, dict):
        return RelayError(-1, str(error))
    code = error.get("code", -1)
    if not isinstance(code, int) or isinstance(code, bool):
        try:
            code = int(code)
        except (TypeError, ValueError):
            code = -1
    message = error.get("message")
    return RelayError(code, str(message) if message else "Unknown error", error.get("data"))


class _Waiter:
    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: Any = None
        self.error: RelayError | None = None


class _Connection:
    """One WebSocket connection and the requests in flight on it."""

    _ids = itertools.count(1)

    def __init__(self, ws: MessageTransport, number: int) -> None:
        self.ws = ws
        self.number = number
        self.pending: dict[str, _Waiter] = {}
        self.lost: RelayError | None = None
        #: Set by signalwire.disconnect; ``idle`` then fires when nothing is in flight.
        self.draining = False
        self.idle: anyio.Event | None = None
        self._prefix = uuid.uuid4().hex[:12] + "-"

    async def request(self, method: str, params: Mapping[str, Any]) -> Any:
        """Send a request and wait for its response; returns ``result`` or raises."""
        if self.lost is not None:
            raise self.lost
        rid = f"{self._prefix}{next(self._ids)}"
        waiter = _Waiter()
        self.pending[rid] = waiter
        try:
            if frame_logger.isEnabledFor(logging.DEBUG):
                frame_logger.debug("send request %s id=%s", method, rid)
            await self.ws.send_text(
                _dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            )
            await waiter.event.wait()
        finally:
            del self.pending[rid]
            if self.idle is not None and not self.pending:
                self.idle.set()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def fail_all(self, error: RelayError) -> None:
        self.lost = error
        for waiter in self.pending.values():
            if not waiter.event.is_set():
                waiter.error = error
                waiter.event.set()


class Session:
    """A self-healing JSON-RPC session with RELAY (see the module docstring)."""

    def __init__(
        self,
        options: SessionOptions,
        listener: SessionListener,
        contexts: Iterable[str] = (),
    ) -> None:
        self.options = options
        self._listener = listener
        #: Contexts to receive on: constructor + receive() - unreceive(). Sent in full
        #: with every connect, so a fresh session gets all of them back.
        self.contexts: list[str] = list(dict.fromkeys(contexts))
        self.protocol: str | None = None
        self.authorization_state: str | None = None
        self.state = ConnectionState.CONNECTING
        self.connection_count = 0
        self._conn: _Connection | None = None
        self._ready = anyio.Event()
        self._closed = False
        self._ever_authenticated = False
        self._seen: set[Any] = set()
        self._seen_order: deque[Any] = deque()
        self._reconnect_now = False
        self._secrets = [v for v in options.authentication.values() if v]

    # -- public API ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Send ``method`` once authenticated; return its (code-checked) result.

        Waits for an authenticated connection first; ``timeout`` (default: the
        session's request timeout) bounds the whole wait. A timeout fails this request
        only (:class:`RequestTimeout`); a link that dies meanwhile fails it with
        :class:`ConnectionLost`.
        """
        limit = self.options.request_timeout if timeout is None else timeout
        with anyio.move_on_after(limit) as scope:
            conn = await self._wait_ready()
            result = await conn.request(method, params)
        if scope.cancelled_caught:
            raise RequestTimeout(method, limit)
        return check_result(method, result) if check else result

    def close(self) -> None:
        """Make every current and future request fail; used when the client exits."""
        self._closed = True
        self._ready.set()
        if self._conn is not None:
            self._conn.fail_all(ConnectionLost("client is closing"))

    # -- the reconnect loop --------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, serve, reconnect, until cancelled or a fatal error.

        ``task_status.started()`` fires after the first successful authentication.
        Raises :class:`AuthenticationError` after ``max_auth_failures`` rejections
        before any success, and a fatal :class:`TransportError` (e.g. a certificate
        that does not verify) at once. Everything else is retried with capped,
        jittered exponential backoff.
        """
        opts = self.options
        delay = opts.reconnect_min_delay
        rejections = 0
        started = False

        def on_ready() -> None:
            nonlocal delay, started, rejections
            delay = opts.reconnect_min_delay
            rejections = 0
            if not started:
                started = True
                task_status.started()

        try:
            while True:
                try:
                    async with open_transport(
                        opts.url,
                        transport=opts.transport,
                        ssl_context=opts.ssl_context,
                        open_timeout=(
                            opts.request_timeout
                            if opts.open_timeout is None
                            else opts.open_timeout
                        ),
                    ) as ws:
                        await self._serve(ws, on_ready)
                except AuthenticationError as exc:
                    if not self._ever_authenticated:
                        rejections += 1
                        if rejections >= opts.max_auth_failures:
                            logger.error(
                                "authentication rejected %d times, giving up: %s",
                                rejections,
                                exc.message,
                            )
                            raise
                    logger.warning("authentication rejected: %s", exc.message)
                except TransportError as exc:
                    if exc.fatal:
                        logger.error("cannot connect to RELAY: %s", exc.message)
                        raise
                    logger.warning("connection failed: %s", exc.message)
                except (ConnectionLost, ProtocolError, RequestTimeout) as exc:
                    logger.warning("connection lost: %s", exc.message)
                self._set_state(ConnectionState.RECONNECTING)
                if self._reconnect_now:
                    self._reconnect_now = False
                    await anyio.lowlevel.checkpoint()
                    continue
                pause = min(delay * random.uniform(0.8, 1.2), opts.reconnect_max_delay)
                logger.info("reconnecting in %.2f s", pause)
                await anyio.sleep(pause)
                delay = min(delay * 2, opts.reconnect_max_delay)
        finally:
            self.close()
            self._set_state(ConnectionState.CLOSED)

    async def _serve(self, ws: MessageTransport, on_ready: Callable[[], None]) -> None:
        self.connection_count += 1
        conn = _Connection(ws, self.connection_count)
        failure: RelayError | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, conn, tg)
                try:
                    restarted = await self._authenticate(conn)
                except RelayError as exc:
                    failure = exc
                    tg.cancel_scope.cancel()
                else:
                    self._conn = conn
                    self._ready.set()
                    on_ready()
                    self._set_state(ConnectionState.CONNECTED, fresh_session=restarted)
                    tg.start_soon(self._keepalive, conn)
        finally:
            self._connection_gone(conn)
        if failure is not None:
            raise failure
        if conn.lost is not None:
            raise conn.lost

    def _connection_gone(self, conn: _Connection) -> None:
        conn.fail_all(conn.lost or ConnectionLost())
        if self._conn is conn:
            self._conn = None
            if not self._closed:
                self._ready = anyio.Event()

    async def _wait_ready(self) -> _Connection:
        while True:
            if self._closed:
                raise ConnectionLost("client is closed")
            conn = self._conn
            if conn is not None:
                return conn
            await self._ready.wait()

    async def _authenticate(self, conn: _Connection) -> bool:
        """Send ``signalwire.connect``; return True when an earlier session was lost.

        A connect that sent the stored ``protocol`` and got the same one back resumed
        the session (calls and subscriptions survive). Anything else after an earlier
        success is a fresh session: the server has forgotten the old calls.
        """
        opts = self.options
        params: dict[str, Any] = {
            "version": PROTOCOL_VERSION,
            "agent": opts.agent,
            "event_acks": True,
            "authentication": dict(opts.authentication),
        }
        if self.contexts:
            params["contexts"] = list(self.contexts)
        sent_protocol = self.protocol
        if sent_protocol:
            params["protocol"] = sent_protocol
        if self.authorization_state:
            params["authorization_state"] = self.authorization_state
        with anyio.move_on_after(opts.request_timeout) as scope:
            try:
                result = await conn.request("signalwire.connect", params)
            except RelayError as exc:
                if isinstance(exc, ConnectionLost):
                    raise
                raise AuthenticationError(exc.code, exc.message, exc.data) from None
        if scope.cancelled_caught:
            raise RequestTimeout("signalwire.connect", opts.request_timeout)
        if not isinstance(result, dict):
            result = {}
        protocol = result.get("protocol")
        if isinstance(protocol, str) and protocol:
            self.protocol = protocol
        resumed = bool(sent_protocol) and self.protocol == sent_protocol
        if not resumed:
            self._seen.clear()
            self._seen_order.clear()
        logger.info(
            "connected and authenticated (connection %d, %s session)",
            conn.number,
            "resumed" if resumed else "new",
        )
        restarted = self._ever_authenticated and not resumed
        self._ever_authenticated = True
        return restarted

    # -- reader ----------------------------------------------------------------------

    async def _read(self, conn: _Connection, tg: anyio.abc.TaskGroup) -> None:
        ws = conn.ws
        try:
            while True:
                batch = await ws.receive_batch()
                replies: list[str] = []
                events: list[tuple[str, dict[str, Any], float]] = []
                for raw in batch:
                    self._classify(conn, raw, replies, events)
                try:
                    if replies:
                        await ws.send_texts(replies)
                finally:
                    # Acked (or the ack is lost with the link, and the server will
                    # redeliver: the seen-window drops the repeat) -- now route.
                    for event_type, params, timestamp in events:
                        self._route(event_type, params, timestamp)
                if conn.draining and conn.idle is None:
                    self._start_drain(conn, tg)
        except (ConnectionLost, ProtocolError) as exc:
            conn.lost = conn.lost or exc
            tg.cancel_scope.cancel()

    def _classify(
        self,
        conn: _Connection,
        raw: str | bytes,
        replies: list[str],
        events: list[tuple[str, dict[str, Any], float]],
    ) -> None:
        """Handle one inbound frame; queue replies and events (never awaits)."""
        debug = frame_logger.isEnabledFor(logging.DEBUG)
        if debug:
            frame_logger.debug("recv %s", redact_frame(raw, self._live_secrets()))
        if isinstance(raw, bytes):
            logger.warning("ignored a binary frame of %d bytes (RELAY sends text)", len(raw))
            return
        try:
            frame = _loads(raw)
        except ValueError:
            logger.warning("ignored a frame that is not valid JSON (%d chars)", len(raw))
            return
        if not isinstance(frame, dict):
            logger.warning("ignored a frame that is not a JSON object (%s)", type(frame).__name__)
            return
        method = frame.get("method")
        fid = frame.get("id")
        if method is None:
            self._resolve(conn, frame, fid)
            return
        if isinstance(fid, bool) or not isinstance(fid, str | int | None):
            logger.warning("ignored a %r request with an invalid id", method)
            return
        params = frame.get("params", {})
        if not isinstance(params, dict):
            logger.warning("ignored a %r request whose params are not an object", method)
            if fid is not None:
                replies.append(_error_reply(fid, -32602, "params must be an object"))
            return
        if method == "signalwire.event":
            if fid is not None:
                replies.append(_ack(fid))
                if fid in self._seen:
                    logger.debug("dropped a redelivered event id=%s", fid)
                    return
                self._remember(fid)
            self._take_event(params, events)
        elif method == "signalwire.ping":
            if fid is not None:
                replies.append(_ack(fid))
        elif method == "signalwire.disconnect":
            if fid is not None:
                replies.append(_ack(fid))
            restart = params.get("restart") is True
            logger.info("server asked to disconnect (restart=%s)", restart)
            if restart:
                self.protocol = None
                self.authorization_state = None
            conn.draining = True
        else:
            logger.warning("server sent unknown method %r; answered method-not-found", method)
            if fid is not None:
                replies.append(_error_reply(fid, -32601, f"Method not found: {method}"))

    def _route(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        # One event that trips a bug in routing must not take the connection down
        # with every other call on it: log it loudly and go on with the next frame.
        try:
            self._listener.session_event(event_type, params, timestamp)
        except Exception:
            logger.exception("failed to route a %s event; it was dropped", event_type)

    def _take_event(
        self, params: dict[str, Any], events: list[tuple[str, dict[str, Any], float]]
    ) -> None:
        event_type = params.get("event_type")
        inner = params.get("params", {})
        if not isinstance(event_type, str) or not event_type:
            logger.warning("ignored an event without event_type")
            return
        if not isinstance(inner, dict):
            logger.warning("ignored a %s event whose params are not an object", event_type)
            return
        if event_type == EVENT_AUTHORIZATION_STATE:
            blob = inner.get("authorization_state")
            if isinstance(blob, str) and blob:
                self.authorization_state = blob
            return
        timestamp = params.get("timestamp", inner.get("timestamp", 0.0))
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            timestamp = 0.0
        events.append((event_type, inner, float(timestamp)))

    def _resolve(self, conn: _Connection, frame: dict[str, Any], fid: Any) -> None:
        waiter = conn.pending.get(fid) if isinstance(fid, str) else None
        if waiter is None or waiter.event.is_set():
            logger.debug("ignored a response to unknown request id %r", fid)
            return
        if "error" in frame:
            waiter.error = _error_from(frame["error"])
        elif "result" in frame:
            waiter.result = frame["result"]
        else:
            waiter.error = ProtocolError("response without result or error")
        waiter.event.set()

    def _remember(self, fid: Any) -> None:
        self._seen.add(fid)
        self._seen_order.append(fid)
        if len(self._seen_order) > _SEEN_WINDOW:
            self._seen.discard(self._seen_order.popleft())

    def _live_secrets(self) -> list[str]:
        return [*self._secrets, *(s for s in (self.authorization_state,) if s)]

    # -- keepalive and server-requested disconnect ---------------------------------------

    async def _keepalive(self, conn: _Connection) -> None:
        opts = self.options
        while True:
            await anyio.sleep(opts.ping_interval)
            with anyio.move_on_after(opts.ping_timeout) as scope:
                try:
                    await conn.request("signalwire.ping", {})
                except RelayError:
                    return  # the reader has seen the loss, or will
            if scope.cancelled_caught:
                logger.warning(
                    "no reply to signalwire.ping within %g s: the link is dead, reconnecting",
                    opts.ping_timeout,
                )
                conn.fail_all(ConnectionLost("keepalive ping unanswered"))
                await conn.ws.abort()
                return

    def _start_drain(self, conn: _Connection, tg: anyio.abc.TaskGroup) -> None:
        """After ``signalwire.disconnect``: stop using this link, reconnect promptly.

        New requests wait for the next connection at once; requests in flight get
        ``disconnect_grace`` seconds to be answered before the link is closed (unless
        the server closes it first), then the session reconnects without backoff.
        """
        if self._conn is conn:
            self._conn = None
            self._ready = anyio.Event()
        self._reconnect_now = True
        conn.idle = anyio.Event()
        if not conn.pending:
            conn.idle.set()

        async def drain(idle: anyio.Event) -> None:
            with anyio.move_on_after(self.options.disconnect_grace):
                await idle.wait()
            conn.lost = conn.lost or ConnectionLost("server asked to disconnect")
            await conn.ws.aclose(1000, "server asked to disconnect")
            tg.cancel_scope.cancel()

        tg.start_soon(drain, conn.idle)

    # -- state -----------------------------------------------------------------------

    def _set_state(self, state: ConnectionState, *, fresh_session: bool = False) -> None:
        if state is self.state and not fresh_session:
            return
        self.state = state
        logger.info("connection state: %s", state.value)
        self._listener.session_state(state, fresh_session=fresh_session)


def _ack(fid: str | int) -> str:
    return f'{{"jsonrpc":"2.0","id":{_dumps(fid)},"result":{{}}}}'


def _error_reply(fid: Any, code: int, message: str) -> str:
    return _dumps({"jsonrpc": "2.0", "id": fid, "error": {"code": code, "message": message}})
