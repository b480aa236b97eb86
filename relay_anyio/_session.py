"""The JSON-RPC session: one connection at a time, reconnected and resumed forever.

Structure (see ``docs/architecture.md``)::

    Session.run()                       -- reconnect loop (policy: _reconnect)
      └─ per connection task group
           ├─ reader task               -- the only reader (frame handling: _rpc.Inbox)
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

Delivery is exactly-once per session (``_rpc.Inbox``). The guarantees and the tests
that prove them: ``docs/reliability.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._config import SessionOptions
from ._errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    RelayError,
    RequestTimeout,
    TransportError,
)
from ._link_state import ConnectionState, SessionListener
from ._liveness import close_when_done, drain, keep_alive
from ._reconnect import Backoff, GiveUp, connect_params, credentials_hint
from ._rpc import Inbox, NotSent, RoutedEvent, RpcConnection, check_result, short
from ._telemetry import NOOP, Telemetry, reconnect_cause
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

_monotonic = time.monotonic


class Session:
    """A self-healing JSON-RPC session with RELAY (see the module docstring)."""

    def __init__(
        self,
        options: SessionOptions,
        listener: SessionListener,
        contexts: Iterable[str] = (),
        *,
        connect: Callable[[], AbstractAsyncContextManager[MessageTransport]] | None = None,
    ) -> None:
        self.options = options
        #: Opens one link per attempt; by default ``open_transport`` on the options'
        #: URL and transport. ``relay_anyio.lowlevel`` users (and tests) pass their own,
        #: say one end of ``memory_transport_pair``.
        self._open_link = connect or self._open_transport
        self._listener = listener
        #: Contexts to receive on: constructor + receive() - unreceive(). Sent in full
        #: with every connect, so a fresh session gets all of them back.
        self.contexts: list[str] = list(dict.fromkeys(contexts))
        self.protocol: str | None = None
        self.authorization_state: str | None = None
        self.state: ConnectionState = ConnectionState.CONNECTING
        self.connection_count: int = 0
        #: True from the first successful authentication on (``run`` has reported
        #: ``task_status.started()``): errors after that are the running client's.
        self.established: bool = False
        #: Health (``RelayClient.health``): when ``state`` was entered (monotonic and
        #: wall clock), when a socket read last brought frames, the last ping's round
        #: trip, how many times the link was replaced.
        self.state_since: float = _monotonic()
        self.state_since_wall: float = time.time()
        self.last_frame_at: float | None = None
        self.ping_rtt: float | None = None
        self.reconnects: int = 0
        #: Where requests, reads, reconnects and pings are reported (see ``observe``).
        self.telemetry: Telemetry = NOOP
        self._conn: RpcConnection | None = None
        self._ready = anyio.Event()
        self._closed = False
        self._inbox = Inbox(self)
        self._reconnect_now = False
        self._secrets = [v for v in options.authentication.values() if v]
        self.backoff: Backoff = Backoff(options.reconnect_min_delay, options.reconnect_max_delay)
        self.give_up: GiveUp = GiveUp(options.auth_retries, options.max_unresolved)
        #: How the reconnect loop waits out a backoff delay (injectable for tests).
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    # -- public API ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def requests_in_flight(self) -> int:
        """Requests sent on the live connection and not answered yet."""
        conn = self._conn
        return len(conn.pending) if conn is not None else 0

    def observe(self, telemetry: Telemetry) -> None:
        """Report to ``telemetry`` from now on (call it before the session runs).

        An active telemetry's ``request`` hook wraps every request: this instance's
        ``request`` is then shadowed by ``_observed_request``, so that without one
        requests pay nothing, not even a coroutine layer.
        """
        self.telemetry = telemetry
        if telemetry.active:
            vars(self)["request"] = self._observed_request
        else:
            vars(self).pop("request", None)

    async def _observed_request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        pending = Session.request(self, method, params, timeout=timeout)
        return await self.telemetry.request(method, params, pending)

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
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
            except NotSent:
                self._detach(conn)
            else:
                return check_result(method, result)
        with anyio.move_on_after(limit) as scope:
            while True:
                conn = await self._wait_ready()
                try:
                    result = await conn.request(method, params)
                except NotSent:
                    self._detach(conn)
                    continue
                break
        if scope.cancelled_caught:
            raise RequestTimeout(method, limit)
        return check_result(method, result)

    def close(self) -> None:
        """Make every current and future request fail; used when the client exits."""
        self._closed = True
        self._ready.set()
        if self._conn is not None:
            self._conn.fail_all(ConnectionLost("client is closing"))

    # -- the reconnect loop --------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect, until cancelled or a fatal error.

        ``task_status.started()`` fires after the first successful authentication.
        Raises ``AuthenticationError`` or a fatal ``TransportError`` when the
        ``GiveUp`` rules say retrying cannot help; everything else (refused, reset,
        timed out) is retried forever, spaced by ``Backoff``.
        """
        backoff = self.backoff
        give_up = self.give_up
        self.established = False
        telemetry = self.telemetry

        def on_ready() -> None:
            backoff.reset()
            give_up.on_ready()
            if not self.established:
                self.established = True
                task_status.started()

        try:
            while True:
                cause = "closed"
                try:
                    async with self._open_link() as ws:
                        await self._serve(ws, on_ready)
                except AuthenticationError as exc:
                    give_up.on_rejected(exc)
                    cause = reconnect_cause(exc)
                except TransportError as exc:
                    give_up.on_transport_error(exc)
                    cause = reconnect_cause(exc)
                except (ConnectionLost, ProtocolError, RequestTimeout) as exc:
                    give_up.on_lost(exc.message)
                    cause = reconnect_cause(exc, server_asked=self._reconnect_now)
                self.reconnects += 1
                telemetry.reconnect(cause)
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

    def _open_transport(self) -> AbstractAsyncContextManager[MessageTransport]:
        opts = self.options
        return open_transport(
            opts.url,
            transport=opts.transport,
            ssl_context=opts.ssl_context,
            open_timeout=opts.request_timeout if opts.open_timeout is None else opts.open_timeout,
            proxy=opts.proxy,
        )

    async def _serve(self, ws: MessageTransport, on_ready: Callable[[], None]) -> None:
        self.connection_count += 1
        conn = RpcConnection(ws, self.connection_count)
        failure: RelayError | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(close_when_done, conn)
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

    def _connection_gone(self, conn: RpcConnection) -> None:
        conn.fail_all(conn.lost or ConnectionLost())
        self._detach(conn)

    def _lose(self, conn: RpcConnection, error: RelayError) -> None:
        """The link is gone: fail what is in flight, stop handing it to new requests.

        Synchronous on purpose: a request issued right after this (say, a handler
        retrying on ConnectionLost) must wait for the next connection rather than
        find this one and fail again without ever yielding.
        """
        conn.fail_all(error)
        self._detach(conn)

    def _detach(self, conn: RpcConnection) -> None:
        if self._conn is conn:
            self._conn = None
            if not self._closed:
                self._ready = anyio.Event()

    async def _wait_ready(self) -> RpcConnection:
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

    async def _authenticate(self, conn: RpcConnection) -> None:
        """Send ``signalwire.connect``; the reader applies its result (see ``_connected``)."""
        opts = self.options
        sent_protocol = self.protocol
        params = connect_params(opts, self.contexts, sent_protocol, self.authorization_state)

        def on_result(result: Any) -> None:
            self._connected(conn, result, sent_protocol)

        with anyio.move_on_after(opts.request_timeout) as scope:
            try:
                await conn.request("signalwire.connect", params, on_result)
            except NotSent:
                raise ConnectionLost("connection lost before signalwire.connect") from None
            except RelayError as exc:
                if isinstance(exc, ConnectionLost):
                    raise
                raise AuthenticationError(
                    exc.code,
                    f"{exc.message} ({credentials_hint(self.options.authentication)})",
                    exc.data,
                ) from None
        if scope.cancelled_caught:
            raise RequestTimeout("signalwire.connect", opts.request_timeout)

    def _connected(self, conn: RpcConnection, result: Any, sent_protocol: str | None) -> None:
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
            self._inbox.forget()
        restarted = self.give_up.ever_authenticated and not resumed
        self.give_up.ever_authenticated = True
        logger.info(
            "connected and authenticated (connection %d, %s session)",
            conn.number,
            "resumed" if resumed else "new",
        )
        self._conn = conn
        self._ready.set()
        self._set_state(ConnectionState.CONNECTED, fresh_session=restarted)

    # -- reader ----------------------------------------------------------------------

    async def _read(self, conn: RpcConnection, tg: anyio.abc.TaskGroup) -> None:
        ws = conn.ws
        telemetry = self.telemetry
        try:
            while True:
                batch = await ws.receive_batch()
                self.last_frame_at = _monotonic()
                replies, events = self._inbox.take_batch(conn, batch)
                if telemetry.active:
                    telemetry.received(events, len(replies))
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

    def _route_all(self, events: list[RoutedEvent]) -> None:
        session_event = self._listener.session_event
        for event_type, params, timestamp in events:
            # One event that trips a bug in routing must not take the connection
            # down with every other call on it: log it loudly, go on with the next.
            try:
                session_event(event_type, params, timestamp)
            except Exception:
                call_id = params.get("call_id")
                logger.exception(
                    "failed to route a %s event; it was dropped",
                    short(event_type),
                    extra={"call_id": call_id} if type(call_id) is str else None,
                )

    def secrets(self) -> list[str]:
        """What a logged frame must not show: credentials and the authorization blob."""
        return [*self._secrets, *(s for s in (self.authorization_state,) if s)]

    def server_disconnect(self, conn: RpcConnection, *, restart: bool) -> None:
        """``signalwire.disconnect``: drain this link; ``restart`` forgets the session."""
        logger.info("server asked to disconnect (restart=%s)", restart)
        if restart:
            self.protocol = None
            self.authorization_state = None
        conn.draining = True

    # -- keepalive and server-requested disconnect ---------------------------------------

    async def _keepalive(self, conn: RpcConnection) -> None:
        def on_rtt(rtt: float) -> None:
            self.ping_rtt = rtt
            self.telemetry.ping(rtt)

        opts = self.options
        await keep_alive(
            conn,
            opts.ping_interval,
            opts.ping_timeout,
            on_rtt=on_rtt,
            on_dead=lambda error: self._lose(conn, error),
        )

    def _start_drain(self, conn: RpcConnection, tg: anyio.abc.TaskGroup) -> None:
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

        tg.start_soon(drain, conn, self.options.disconnect_grace, tg)

    # -- state -----------------------------------------------------------------------

    def _set_state(self, state: ConnectionState, *, fresh_session: bool = False) -> None:
        if state is self.state and not fresh_session:
            return
        self.state = state
        self.state_since = _monotonic()
        self.state_since_wall = time.time()
        logger.info("connection state: %s", state.value)
        self._listener.session_state(state, fresh_session=fresh_session)
