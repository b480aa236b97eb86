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

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._config import SessionOptions
from ._constants import PROTOCOL_VERSION
from ._errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    RelayError,
    RequestTimeout,
    TransportError,
)
from ._reconnect import Backoff, GiveUp
from ._rpc import Inbox, NotSent, RoutedEvent, RpcConnection, check_result, short
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


class ConnectionState(enum.Enum):
    """Where the client's link to RELAY stands; see ``RelayClient.on_connection_state``."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class SessionListener(Protocol):
    """What the session tells the client. Called from the reader: never block."""

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        """One event, acked already and seen for the first time in this session."""
        ...

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        """The link's state changed; ``fresh_session``: the server forgot the old one."""
        ...


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

        def on_ready() -> None:
            backoff.reset()
            give_up.on_ready()
            if not self.established:
                self.established = True
                task_status.started()

        try:
            while True:
                try:
                    async with self._open_link() as ws:
                        await self._serve(ws, on_ready)
                except AuthenticationError as exc:
                    give_up.on_rejected(exc)
                except TransportError as exc:
                    give_up.on_transport_error(exc)
                except (ConnectionLost, ProtocolError, RequestTimeout) as exc:
                    give_up.on_lost(exc.message)
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
    async def _close_when_done(conn: RpcConnection) -> None:
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
            except NotSent:
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
        try:
            while True:
                replies, events = self._inbox.take_batch(conn, await ws.receive_batch())
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
                logger.exception("failed to route a %s event; it was dropped", short(event_type))

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
        opts = self.options
        while True:
            await anyio.sleep(opts.ping_interval)
            with anyio.move_on_after(opts.ping_timeout) as scope:
                try:
                    await conn.request("signalwire.ping", {})
                except (RelayError, NotSent):
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
