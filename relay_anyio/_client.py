"""``RelayClient``: the guide's API on a structured core.

``async with RelayClient(...) as client`` opens the client's task group: the session
(reader, keepalive, reconnect loop), one task group per inbound call running its
handler, and the listener tasks. Leaving the block hangs up the calls still being
handled (shielded, bounded), then cancels everything; nothing outlives it.
``client.run()`` is the same block around ``sleep_forever`` for scripts, on asyncio or
trio, exiting cleanly on Ctrl+C.
"""

from __future__ import annotations

import logging
import ssl
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc

from ._call import Call, CallHandler
from ._config import ClientConfig, max_connections
from ._errors import DialTimeout, RelayError
from ._listeners import EventListener
from ._messaging import Message, MessageListener
from ._proxy import ProxySetting
from ._router import ConnectionStateCallback, PendingDial, Router
from ._scopes import StackOwned, owned_task_group
from ._session import ConnectionState, Session
from ._transport import TransportName

__all__ = ["CallHandler", "RelayClient"]

logger = logging.getLogger("relay_anyio.client")

_H = TypeVar("_H", bound=Callable[..., Any])

_active_clients: weakref.WeakSet[RelayClient] = weakref.WeakSet()


class RelayClient(StackOwned):
    """A connection to SignalWire RELAY that receives and places calls and messages.

    Credentials come from the arguments or the ``SIGNALWIRE_*`` environment variables
    (``SIGNALWIRE_PROJECT_ID`` + ``SIGNALWIRE_API_TOKEN``, or ``SIGNALWIRE_JWT_TOKEN``);
    the host from ``host`` or ``SIGNALWIRE_SPACE`` (default ``relay.signalwire.com``),
    always over ``wss``. ``url="ws://..."`` is for local testing against
    ``relay_anyio.testing.FakeRelayServer``.

    ``proxy``: by default the connection goes through the HTTP proxy that
    ``HTTPS_PROXY``/``ALL_PROXY`` name (unless ``NO_PROXY`` lists the host), read once
    here; a URL (``"http://user:password@proxy:3128"``) uses that proxy whatever the
    environment says, ``None`` connects directly. The tunnel is HTTP ``CONNECT``; TLS
    to RELAY runs inside it, verified as without a proxy.
    """

    def __init__(
        self,
        project: str | None = None,
        token: str | None = None,
        jwt_token: str | None = None,
        host: str | None = None,
        contexts: Iterable[str] | None = None,
        max_active_calls: int | None = None,
        *,
        url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        transport: TransportName = "native",
        proxy: ProxySetting = True,
        request_timeout: float = 10.0,
        ping_interval: float = 30.0,
        ping_timeout: float | None = None,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        call_event_buffer: int = 1000,
        shutdown_timeout: float = 5.0,
        message_ttl: float = 3600.0,
        late_result_grace: float = 2.0,
    ) -> None:
        self.config: ClientConfig = ClientConfig.resolve(
            project,
            token,
            jwt_token,
            host,
            contexts,
            max_active_calls,
            url=url,
            ssl_context=ssl_context,
            transport=transport,
            proxy=proxy,
            request_timeout=request_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            reconnect_min_delay=reconnect_min_delay,
            reconnect_max_delay=reconnect_max_delay,
            call_event_buffer=call_event_buffer,
            shutdown_timeout=shutdown_timeout,
            message_ttl=message_ttl,
            late_result_grace=late_result_grace,
        )
        config = self.config
        self.project: str = config.project
        self.host: str = config.host
        self.url: str = config.url
        self.max_active_calls: int = config.max_active_calls
        self.shutdown_timeout: float = config.shutdown_timeout
        self._router = Router(config)
        self._session = Session(config.session, self._router, config.contexts)
        self._router.bind(self._session)
        self._tg: anyio.abc.TaskGroup | None = None
        self._fatal: RelayError | None = None
        self._session_scope: anyio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<RelayClient {self.host} {self._session.state.value}>"

    # -- configuration -------------------------------------------------------------------

    @property
    def contexts(self) -> list[str]:
        """The contexts this client receives calls and messages on."""
        return list(self._session.contexts)

    @property
    def relay_protocol(self) -> str:
        """The session's protocol string (empty before the first connect)."""
        return self._session.protocol or ""

    @property
    def connection_state(self) -> ConnectionState:
        return self._session.state

    @property
    def active_calls(self) -> int:
        return len(self._router.calls)

    def on_call(self, handler: _H) -> _H:
        """Decorator: run ``handler(call)`` for every inbound call, in the call's task group."""
        self._router.call_handler = handler
        return handler

    def on_message(self, handler: _H) -> _H:
        """Decorator: run ``handler(message)`` for every inbound SMS/MMS."""
        self._router.message_handler = handler
        return handler

    def on_connection_state(self, callback: ConnectionStateCallback) -> None:
        """Call ``callback(state)`` on every connection state change (from the reader)."""
        self._router.state_callbacks.append(callback)

    def on(self, event_type: str, listener: EventListener) -> None:
        """Listen to events no call owns (conference-level, ``calling.error``, unknown)."""
        self._router.listeners.add(event_type, listener)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RelayClient:
        await self.connect()
        return self

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """The client's scope: its task group, the session, the handlers' scopes.

        Leaving it hangs up the calls whose handlers still run (shielded, bounded),
        then cancels everything. The caller's own exception leaves unchanged (not
        wrapped in an exception group); a fatal session error (credentials rejected
        for good) cancels the body and is raised in its place.
        """
        limit = max_connections()
        others = [c for c in _active_clients if c is not self]
        if len(others) >= limit:
            raise RuntimeError(
                f"RelayClient connection limit reached ({limit}); raise RELAY_MAX_CONNECTIONS "
                "to run more clients in this process"
            )
        _active_clients.add(self)
        self._fatal = None
        try:
            async with owned_task_group() as tg:
                self._tg = tg
                self._router.enter(tg)
                try:
                    await tg.start(self._run_session)
                except BaseException:
                    self._cancel(tg)
                    raise
                # Connected: from now on the session's scope is shielded (see
                # _run_session). Not before start() has returned: a caller cancelled in
                # between (asyncio.Runner's Ctrl+C, a task.cancel() that beats the
                # started value) makes anyio's start() cancel the session and wait for
                # it, which a shielded session would never let end.
                assert self._session_scope is not None
                self._session_scope.shield = True
                tg.start_soon(self._router.messages.run_expiry, name="relay message expiry")
                try:
                    yield
                finally:
                    try:
                        await self._router.hang_up_handled_calls()
                    finally:
                        self._cancel(tg)
        finally:
            self._tg = None
            _active_clients.discard(self)
        if self._fatal is not None:
            raise self._fatal

    def _cancel(self, tg: anyio.abc.TaskGroup) -> None:
        """End everything the client runs; nothing more goes out."""
        tg.cancel_scope.cancel()
        if self._session_scope is not None:
            self._session_scope.cancel()
        self._session.close()
        self._router.close()

    async def connect(self) -> None:
        """Connect without ``async with`` (the official client's API); pair with disconnect()."""
        await self._enter(self._running())

    async def disconnect(self) -> None:
        """Close what ``connect()`` opened: hang up handled calls, end every task."""
        await self._leave()

    def run(self, *, backend: Literal["asyncio", "trio"] = "asyncio") -> None:
        """Connect and serve until interrupted (Ctrl+C shuts down cleanly)."""

        async def main() -> None:
            async with self:
                await anyio.sleep_forever()

        try:
            anyio.run(main, backend=backend)
        except KeyboardInterrupt:
            logger.info("interrupted: client shut down")

    async def _run_session(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # The session's scope is shielded once connected (by _running, as soon as
        # start() returns): when the scope around the client is cancelled, the
        # connection must outlive the handlers long enough to stop their actions and
        # hang up their calls (leaving the client cancels it after that). Before that
        # it is not, so cancelling the task entering the client stops the session.
        scope = self._session_scope = anyio.CancelScope()
        try:
            with scope:
                await self._session.run(task_status=task_status)
        except RelayError as exc:
            if not self._session.established:  # never connected: entering the client raises it
                raise
            logger.error("RELAY client stopped: %s", exc)
            self._fatal = exc
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    # -- requests ------------------------------------------------------------------------

    async def execute(
        self, method: str, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send any RELAY method and return its result; non-2xx codes raise RelayError."""
        return await self._session.request(method, params, timeout=timeout)

    @property
    def _call_request(self) -> Callable[..., Awaitable[dict[str, Any]]]:
        # The session's own method: one coroutine layer less on every call command.
        return self._session.request

    async def receive(self, contexts: Sequence[str]) -> None:
        """Start receiving calls and messages on more contexts (kept across reconnects)."""
        if not contexts:
            return
        await self._session.request("signalwire.receive", {"contexts": list(contexts)})
        for context in contexts:
            if context not in self._session.contexts:
                self._session.contexts.append(context)

    async def unreceive(self, contexts: Sequence[str]) -> None:
        """Stop receiving on contexts (also after a reconnect)."""
        if not contexts:
            return
        await self._session.request("signalwire.unreceive", {"contexts": list(contexts)})
        self._session.contexts[:] = [c for c in self._session.contexts if c not in contexts]

    # -- outbound calls ------------------------------------------------------------------

    async def dial(
        self,
        devices: Sequence[Sequence[Mapping[str, Any]]],
        *,
        tag: str | None = None,
        max_duration: int | None = None,
        timeout: float | None = None,
        dial_timeout: float = 120.0,
        region: str | None = None,
        max_price_per_minute: float | None = None,
    ) -> Call:
        """Place a call (outer list: tried in series; inner list: rung in parallel).

        Returns the answered leg. Raises ``RelayError`` if every leg fails, and
        ``DialTimeout`` (a ``TimeoutError`` too) after ``timeout`` seconds
        (default ``dial_timeout``, 120). On a timeout or cancellation the legs still
        ringing are ended and a leg answered late is hung up: no call is left orphaned.
        """
        if self._tg is None:
            raise RuntimeError("dial() needs a connected client: use 'async with client:'")
        tag = tag or str(uuid.uuid4())
        if tag in self._router.dials:
            raise ValueError(f"a dial with tag {tag!r} is already in progress")
        limit = dial_timeout if timeout is None else timeout
        params: dict[str, Any] = {"tag": tag, "devices": [[dict(d) for d in g] for g in devices]}
        if max_duration:
            params["max_duration"] = max_duration
        if region is not None:
            params["region"] = region
        if max_price_per_minute is not None:
            params["max_price_per_minute"] = max_price_per_minute
        dial = PendingDial(tag)
        self._router.dials[tag] = dial
        succeeded = False
        try:
            with anyio.move_on_after(limit) as scope:
                await self._session.request("calling.dial", params)
                await dial.done.wait()
            if scope.cancelled_caught:
                raise DialTimeout(tag, limit)
            if dial.error is not None:
                raise dial.error
            assert dial.winner is not None
            succeeded = True
            return dial.winner
        finally:
            del self._router.dials[tag]
            if not succeeded:
                await self._router.abandon_dial(dial)

    # -- messaging ---------------------------------------------------------------------

    async def send_message(
        self,
        *,
        to_number: str,
        from_number: str,
        body: str | None = None,
        media: Sequence[str] | None = None,
        context: str | None = None,
        tags: Sequence[str] | None = None,
        region: str | None = None,
        on_completed: MessageListener | None = None,
    ) -> Message:
        """Send an SMS (``body``) or MMS (``media`` URLs); returns the tracked Message.

        ``await message.wait()`` then gives the final state event. ``context``
        defaults to the session's protocol, as in the official client.
        """
        if not body and not media:
            raise ValueError("At least one of body or media is required")
        if self._tg is None:
            raise RuntimeError("send_message() needs a connected client: use 'async with client:'")
        params: dict[str, Any] = {
            "context": context or self._session.protocol or "default",
            "to_number": to_number,
            "from_number": from_number,
        }
        if body:
            params["body"] = body
        if media:
            params["media"] = list(media)
        if tags:
            params["tags"] = list(tags)
        if region is not None:
            params["region"] = region
        result = await self._session.request("messaging.send", params)
        message_id = result.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise RelayError(-1, "messaging.send answered without a message_id", result)
        message = Message(
            self._router.dispatcher,
            {
                **params,
                "message_id": message_id,
                "media": list(media or ()),
                "tags": list(tags or ()),
            },
            state="queued",
            direction="outbound",
            on_completed=on_completed,
        )
        self._router.messages.track(message)
        return message
