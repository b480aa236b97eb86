"""The JSON-RPC session: one connection at a time, reconnected and resumed forever.

Structure (see ``docs/concepts.md``)::

    Session.run()                       -- reconnect loop, backoff, give-up rules
      └─ per connection task group
           ├─ reader task               -- the only reader: responses, events, pings
           ├─ keepalive task            -- client signalwire.ping, dead-link detection
           ├─ closer                    -- closes the link when the group ends
           └─ (drain task)              -- after signalwire.disconnect

The reader never awaits user code: it resolves request waiters, acknowledges events
(all acks of one socket read in one write, before any of those events is routed) and
hands events to ``SessionListener``, whose methods are synchronous and must not
block. It also applies the connect result before reading the next frame, so the
server's first events land in the right session.

Requests wait (bounded by their timeout) until a connection is authenticated, so
nothing but ``signalwire.connect`` goes out before authentication succeeds. A request
in flight when the link dies fails with ``ConnectionLost``; one that had not
gone out waits for the next connection. A lost connection is detached at once, so a
caller retrying on ConnectionLost never finds it again.

Delivery is exactly-once per session: the server redelivers unacked events on resume
with their original ids; a bounded window of recently seen ids drops the repeats.
The guarantees and the tests that prove them: ``docs/reliability.md``.
"""

from __future__ import annotations

import enum
import itertools
import logging
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from . import _json as json_codec
from ._config import SessionOptions
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
from ._sync import LazyEvent
from ._transport import MessageTransport, open_transport

__all__ = [
    "Backoff",
    "ConnectionState",
    "Session",
    "SessionListener",
    "SessionOptions",
    "check_result",
]

logger = logging.getLogger("relay_anyio.session")
frame_logger = logging.getLogger("relay_anyio.frames")

_dumps = json_codec.dumps
_loads = json_codec.loads
_SEEN_WINDOW = 10_000


class ConnectionState(enum.Enum):
    """Where the client's link to RELAY stands; see ``RelayClient.on_connection_state``."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@attrs.define
class Backoff:
    """Delays between reconnect attempts: ``base`` doubling up to ``cap``, ±20 % jitter.

    ``reset()`` after a successful authentication starts over at ``base``. ``rng``
    is injectable so that the schedule can be asserted exactly.
    """

    base: float
    cap: float
    rng: random.Random = attrs.field(factory=random.Random)
    _next: float = attrs.field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        self._next = self.base

    def reset(self) -> None:
        """Start over at ``base`` (a connection authenticated)."""
        self._next = self.base

    def pause(self) -> float:
        """The delay before the next attempt; doubles the one after it."""
        pause = min(self._next * self.rng.uniform(0.8, 1.2), self.cap)
        self._next = min(self._next * 2, self.cap)
        return pause


class SessionListener(Protocol):
    """What the session tells the client. Called from the reader: never block."""

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None: ...

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
    __slots__ = ("error", "event", "on_result", "result")

    def __init__(self, on_result: Callable[[Any], None] | None = None) -> None:
        self.event = LazyEvent()
        self.result: Any = None
        self.error: RelayError | None = None
        #: Run by the reader when the result arrives, before it reads the next frame.
        self.on_result = on_result


class _NotSent(Exception):
    """The connection was already lost when the request was about to go out."""


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

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        on_result: Callable[[Any], None] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a request and wait for its response; returns ``result`` or raises.

        Raises ``_NotSent`` if the link is already known to be lost (the request
        never left, so the session may send it on the next connection),
        ``ConnectionLost`` if the link dies while it is in flight, and
        ``TimeoutError`` after ``timeout`` seconds without a response.
        """
        if self.lost is not None:
            raise _NotSent
        rid = f"{self._prefix}{next(self._ids)}"
        waiter = _Waiter(on_result)
        self.pending[rid] = waiter
        try:
            if frame_logger.isEnabledFor(logging.DEBUG):
                frame_logger.debug("send request %s id=%s", method, rid)
            await self.ws.send_text(
                _dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            )
            await waiter.event.wait(timeout)
        except ConnectionLost as exc:  # the send failed: the link died under it
            waiter.error = exc
            # Mark the link lost now, not when the reader gets to it: a send can
            # fail without yielding, and a caller retrying at once must wait for
            # the next connection instead of spinning on this one.
            if self.lost is None:
                self.lost = exc
        finally:
            del self.pending[rid]
            if self.idle is not None and not self.pending:
                self.idle.set()
        error = waiter.error
        if isinstance(error, ConnectionLost):
            # Name the request, and say what the caller cannot know.
            raise ConnectionLost(
                f"{method}: connection lost before its response ({error.message}); "
                "it may or may not have taken effect",
                close_code=error.close_code,
            )
        if error is not None:
            raise error
        return waiter.result

    def fail_all(self, error: RelayError) -> None:
        if self.lost is None:
            self.lost = error
        for waiter in self.pending.values():
            if not waiter.event.is_set():
                waiter.error = self.lost
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
        self.backoff = Backoff(options.reconnect_min_delay, options.reconnect_max_delay)
        #: How the reconnect loop waits out a backoff delay (injectable for tests).
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

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
        only (``RequestTimeout``); a link that dies while the request is in flight
        fails it with ``ConnectionLost`` (it may or may not have taken effect).
        A request that had not gone out yet waits for the next connection instead.
        """
        limit = self.options.request_timeout if timeout is None else timeout
        conn = self._conn
        if conn is not None and conn.lost is None:
            # The common case, connected: the timeout bounds the wait for the
            # response, with no cancel scope (see LazyEvent.wait). The send before it
            # does not block unless the peer stopped reading, which the keepalive
            # turns into ConnectionLost.
            try:
                result = await conn.request(method, params, timeout=limit)
            except TimeoutError:
                raise RequestTimeout(method, limit) from None
            except _NotSent:
                self._detach(conn)
            else:
                return check_result(method, result) if check else result
        with anyio.move_on_after(limit) as scope:
            while True:
                conn = await self._wait_ready()
                try:
                    result = await conn.request(method, params)
                except _NotSent:
                    self._detach(conn)
                    continue
                break
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
        Raises ``AuthenticationError`` at once when the first connect is
        rejected (the server's answer is definitive: retrying the same credentials
        cannot help), and once a session was established, when a reconnect is still
        rejected after ``auth_retries`` retries (auth services fail transiently). A
        fatal ``TransportError`` after ``max_unresolved`` host names in a row
        that do not resolve before any success, and one at once for what retrying
        cannot fix (a certificate that does not verify). Everything else (refused,
        reset, timed out) is retried forever with ``Backoff``.
        """
        opts = self.options
        backoff = self.backoff
        rejections = 0
        unresolved = 0
        started = False
        open_timeout = opts.request_timeout if opts.open_timeout is None else opts.open_timeout

        def on_ready() -> None:
            nonlocal started, rejections, unresolved
            backoff.reset()
            rejections = unresolved = 0
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
                        open_timeout=open_timeout,
                        proxy=opts.proxy,
                    ) as ws:
                        await self._serve(ws, on_ready)
                except AuthenticationError as exc:
                    unresolved = 0
                    rejections += 1
                    if not self._ever_authenticated:
                        logger.error("authentication rejected: %s", exc.message)
                        raise
                    if rejections > opts.auth_retries:
                        logger.error(
                            "reconnect rejected %d times in a row, giving up: %s",
                            rejections,
                            exc.message,
                        )
                        raise
                    logger.warning("reconnect rejected (will retry): %s", exc.message)
                except TransportError as exc:
                    if exc.fatal:
                        logger.error("cannot connect to RELAY: %s", exc.message)
                        raise
                    unresolved = unresolved + 1 if exc.unresolved else 0
                    if unresolved >= opts.max_unresolved and not self._ever_authenticated:
                        logger.error(
                            "host name did not resolve %d times in a row, giving up: %s",
                            unresolved,
                            exc.message,
                        )
                        raise TransportError(exc.message, fatal=True, unresolved=True) from None
                    logger.warning("connection failed: %s", exc.message)
                except (ConnectionLost, ProtocolError, RequestTimeout) as exc:
                    unresolved = 0
                    logger.warning("connection lost: %s", exc.message)
                self._set_state(ConnectionState.RECONNECTING)
                if self._reconnect_now:
                    self._reconnect_now = False
                    await anyio.lowlevel.checkpoint()
                    continue
                pause = backoff.pause()
                logger.info("reconnecting in %.2f s", pause)
                await self.sleep(pause)
        finally:
            self.close()
            self._set_state(ConnectionState.CLOSED)

    async def _serve(self, ws: MessageTransport, on_ready: Callable[[], None]) -> None:
        self.connection_count += 1
        conn = _Connection(ws, self.connection_count)
        failure: RelayError | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._close_when_done, conn)
                tg.start_soon(self._read, conn, tg)
                try:
                    await self._authenticate(conn)
                except RelayError as exc:
                    failure = exc
                    tg.cancel_scope.cancel()
                else:
                    on_ready()
                    tg.start_soon(self._keepalive, conn)
        finally:
            self._connection_gone(conn)
        if failure is not None:
            raise failure
        if conn.lost is not None:
            raise conn.lost

    @staticmethod
    async def _close_when_done(conn: _Connection) -> None:
        """Close the link as soon as its task group ends, for whatever reason.

        Writes are shielded (a partial frame would corrupt the link), so a reader or
        a request blocked writing to a peer that stopped reading would keep the task
        group open; closing the transport from here ends those writes. The close is
        polite when it can be (a close frame), bounded when it cannot.
        """
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await conn.ws.aclose(1000, "")

    def _connection_gone(self, conn: _Connection) -> None:
        conn.fail_all(conn.lost or ConnectionLost())
        self._detach(conn)

    def _lose(self, conn: _Connection, error: RelayError) -> None:
        """The link is gone: fail what is in flight, stop handing it to new requests.

        Synchronous on purpose: a request issued right after this (say, a handler
        retrying on ConnectionLost) must wait for the next connection rather than
        find this one and fail again without ever yielding.
        """
        conn.fail_all(error)
        self._detach(conn)

    def _detach(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None
            if not self._closed:
                self._ready = anyio.Event()

    async def _wait_ready(self) -> _Connection:
        while True:
            if self._closed:
                # A checkpoint first, so that a caller retrying in a loop cannot spin.
                await anyio.lowlevel.checkpoint()
                raise ConnectionLost("client is closed")
            conn = self._conn
            if conn is not None:
                if conn.lost is None:
                    return conn
                self._detach(conn)
                continue
            await self._ready.wait()

    async def _authenticate(self, conn: _Connection) -> None:
        """Send ``signalwire.connect``; the reader applies its result (see ``_connected``)."""
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

        def on_result(result: Any) -> None:
            self._connected(conn, result, sent_protocol)

        with anyio.move_on_after(opts.request_timeout) as scope:
            try:
                await conn.request("signalwire.connect", params, on_result)
            except _NotSent:
                raise ConnectionLost("connection lost before signalwire.connect") from None
            except RelayError as exc:
                if isinstance(exc, ConnectionLost):
                    raise
                raise AuthenticationError(
                    exc.code, f"{exc.message} ({self._credentials_hint()})", exc.data
                ) from None
        if scope.cancelled_caught:
            raise RequestTimeout("signalwire.connect", opts.request_timeout)

    def _credentials_hint(self) -> str:
        if "jwt_token" in self.options.authentication:
            return "check the JWT: jwt_token= or SIGNALWIRE_JWT_TOKEN"
        return (
            "check the project ID and API token: project=/token= or "
            "SIGNALWIRE_PROJECT_ID/SIGNALWIRE_API_TOKEN"
        )

    def _connected(self, conn: _Connection, result: Any, sent_protocol: str | None) -> None:
        """Apply a successful connect result. Runs in the reader, before the next frame.

        A connect that sent the stored ``protocol`` and got the same one back resumed
        the session (calls and subscriptions survive). Anything else after an earlier
        success is a fresh session: the server has forgotten the old calls. Deciding
        this here, rather than in the task that sent the connect, matters: the
        server's first events follow the response in the same read, and they must be
        remembered in the right seen-window and routed after the old calls are failed,
        or a new call in that read would be failed with the old ones.
        """
        if not isinstance(result, dict):
            result = {}
        protocol = result.get("protocol")
        if isinstance(protocol, str) and protocol:
            self.protocol = protocol
        resumed = bool(sent_protocol) and self.protocol == sent_protocol
        if not resumed:
            self._seen.clear()
            self._seen_order.clear()
        restarted = self._ever_authenticated and not resumed
        self._ever_authenticated = True
        logger.info(
            "connected and authenticated (connection %d, %s session)",
            conn.number,
            "resumed" if resumed else "new",
        )
        self._conn = conn
        self._ready.set()
        self._set_state(ConnectionState.CONNECTED, fresh_session=restarted)

    # -- reader ----------------------------------------------------------------------

    async def _read(self, conn: _Connection, tg: anyio.abc.TaskGroup) -> None:
        ws = conn.ws
        try:
            while True:
                replies, events = self._take_batch(conn, await ws.receive_batch())
                try:
                    if replies:
                        await ws.send_texts(replies)
                finally:
                    # Acked (or the ack is lost with the link, and the server will
                    # redeliver: the seen-window drops the repeat) -- now route.
                    self._route_all(events)
                if conn.draining and conn.idle is None:
                    self._start_drain(conn, tg)
        except (ConnectionLost, ProtocolError) as exc:
            self._lose(conn, exc)
            tg.cancel_scope.cancel()

    def _take_batch(
        self, conn: _Connection, batch: Iterable[str | bytes]
    ) -> tuple[list[str], list[tuple[str, dict[str, Any], float]]]:
        """Handle the frames of one read: the replies to send, the events to route."""
        replies: list[str] = []
        events: list[tuple[str, dict[str, Any], float]] = []
        log_frames = frame_logger.isEnabledFor(logging.DEBUG)
        for raw in batch:
            try:
                if log_frames:
                    frame_logger.debug("recv %s", redact_frame(raw, self._live_secrets()))
                self._classify(conn, raw, replies, events)
            except Exception:  # a bug here must cost one frame, not the link
                logger.exception("failed to handle an incoming frame; it was dropped")
        return replies, events

    def _route_all(self, events: list[tuple[str, dict[str, Any], float]]) -> None:
        session_event = self._listener.session_event
        for event_type, params, timestamp in events:
            # One event that trips a bug in routing must not take the connection
            # down with every other call on it: log it loudly, go on with the next.
            try:
                session_event(event_type, params, timestamp)
            except Exception:
                logger.exception("failed to route a %s event; it was dropped", _short(event_type))

    def _classify(
        self,
        conn: _Connection,
        raw: str | bytes,
        replies: list[str],
        events: list[tuple[str, dict[str, Any], float]],
    ) -> None:
        """Handle one inbound frame; queue replies and events (never awaits)."""
        if isinstance(raw, bytes):
            logger.warning("ignored a binary frame of %d bytes (RELAY sends text)", len(raw))
            return
        try:
            frame = _loads(raw)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "not valid JSON"
            logger.warning("ignored a frame that is %s (%d chars)", reason, len(raw))
            return
        if type(frame) is not dict:
            logger.warning("ignored a frame that is not a JSON object (%s)", type(frame).__name__)
            return
        method = frame.get("method")
        if method == "signalwire.event" and self._take_plain_event(frame, replies, events):
            return
        fid = frame.get("id")
        if method is None:
            self._resolve(conn, frame, fid)
            return
        if not isinstance(method, str):
            logger.warning("ignored a request whose method is not a string")
            if isinstance(fid, str | int) and not isinstance(fid, bool):
                replies.append(_error_reply(fid, -32600, "Invalid Request: method"))
            return
        if isinstance(fid, bool) or not isinstance(fid, str | int | None):
            logger.warning("ignored a %r request with an invalid id", _short(method))
            return
        params = frame.get("params", {})
        if not isinstance(params, dict):
            logger.warning("ignored a %r request whose params are not an object", _short(method))
            if fid is not None:
                replies.append(_error_reply(fid, -32602, "params must be an object"))
            return
        if method == "signalwire.event":
            if fid is None or self._acknowledge(fid, replies):
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
            name = _short(method)
            logger.warning("server sent unknown method %r; answered method-not-found", name)
            if fid is not None:
                replies.append(_error_reply(fid, -32601, f"Method not found: {name}"))

    def _take_plain_event(
        self,
        frame: dict[str, Any],
        replies: list[str],
        events: list[tuple[str, dict[str, Any], float]],
    ) -> bool:
        """The hot path: a well-formed ``signalwire.event``. False: the general path.

        Nearly every frame is one of these, so this checks exactly what routing
        needs, with exact type tests, and leaves every odd case (and its log line) to
        the rest of ``_classify``: nothing here has a side effect before the frame
        is known to be plain.
        """
        fid = frame.get("id")
        params = frame.get("params")
        if type(fid) is not str or type(params) is not dict:
            return False
        event_type = params.get("event_type")
        inner = params.get("params")
        if (
            type(event_type) is not str
            or not event_type
            or type(inner) is not dict
            or event_type == EVENT_AUTHORIZATION_STATE
        ):
            return False
        timestamp = params.get("timestamp")
        if timestamp is None:
            timestamp = inner.get("timestamp", 0.0)
        if type(timestamp) is not float:
            if type(timestamp) is not int:
                return False
            timestamp = float(timestamp)
        if self._acknowledge(fid, replies):
            events.append((event_type, inner, timestamp))
        return True

    def _take_event(
        self, params: dict[str, Any], events: list[tuple[str, dict[str, Any], float]]
    ) -> None:
        event_type = params.get("event_type")
        inner = params.get("params", {})
        if not isinstance(event_type, str) or not event_type:
            logger.warning("ignored an event without event_type")
            return
        if not isinstance(inner, dict):
            logger.warning("ignored a %s event whose params are not an object", _short(event_type))
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
        if "result" not in frame and "error" not in frame:
            logger.warning(
                "ignored a frame that is neither a request nor a response (keys: %s)",
                _short(", ".join(sorted(map(str, frame)))),
            )
            return
        waiter = conn.pending.get(fid) if isinstance(fid, str) else None
        if waiter is None or waiter.event.is_set():
            logger.debug("ignored a response to unknown request id %r", _short(fid))
            return
        if "error" in frame:
            waiter.error = _error_from(frame["error"])
        else:
            waiter.result = frame["result"]
            if waiter.on_result is not None:
                try:
                    waiter.on_result(waiter.result)
                except Exception:  # a listener's bug must not leave the waiter hanging
                    logger.exception("failed to apply the result of request %s", fid)
        waiter.event.set()

    def _acknowledge(self, fid: str | int, replies: list[str]) -> bool:
        """Ack an event; True the first time its id is seen (exactly-once delivery).

        The server redelivers unacked events on resume with their ids; a bounded
        window of the last ids drops the repeats (they are acked again all the same).
        """
        replies.append(_ack(fid))
        seen = self._seen
        if fid in seen:
            logger.debug("dropped a redelivered event id=%s", fid)
            return False
        seen.add(fid)
        order = self._seen_order
        order.append(fid)
        if len(order) > _SEEN_WINDOW:
            seen.discard(order.popleft())
        return True

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
                except (RelayError, _NotSent):
                    return  # the reader has seen the loss, or will
            if scope.cancelled_caught:
                logger.warning(
                    "no reply to signalwire.ping within %g s: the link is dead, reconnecting",
                    opts.ping_timeout,
                )
                self._lose(
                    conn,
                    ConnectionLost(
                        f"keepalive: no reply to signalwire.ping within {opts.ping_timeout:g} s",
                        close_code=1006,
                    ),
                )
                await conn.ws.abort()
                return

    def _start_drain(self, conn: _Connection, tg: anyio.abc.TaskGroup) -> None:
        """After ``signalwire.disconnect``: stop using this link, reconnect promptly.

        New requests wait for the next connection at once; requests in flight get
        ``disconnect_grace`` seconds to be answered before the link is closed (unless
        the server closes it first), then the session reconnects without backoff.
        """
        self._detach(conn)
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


def _short(value: Any, limit: int = 80) -> str:
    """A bounded rendering of a peer-chosen value for a log line or an error reply."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _ack(fid: str | int) -> str:
    # One ack per event: when the id has nothing to escape, skip the encoder.
    if type(fid) is str and fid.isascii() and fid.isprintable() and '"' not in fid:
        if "\\" not in fid:
            return '{"jsonrpc":"2.0","id":"' + fid + '","result":{}}'
    return f'{{"jsonrpc":"2.0","id":{_dumps(fid)},"result":{{}}}}'


def _error_reply(fid: Any, code: int, message: str) -> str:
    return _dumps({"jsonrpc": "2.0", "id": fid, "error": {"code": code, "message": message}})
