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
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar, Unpack

import anyio
import anyio.abc

from ._call import CallHandler
from ._config import ClientConfig, ClientOptions, max_connections
from ._errors import RelayError
from ._health import Health
from ._listeners import EventListener, ListenerHandle
from ._outbound import Outbound
from ._router import ConnectionStateCallback, Router
from ._scopes import StackOwned, owned_task_group
from ._session import ConnectionState, Session
from ._telemetry import Telemetry, otel_installed

__all__ = ["CallHandler", "RelayClient"]

logger = logging.getLogger("relay_anyio.client")

_H = TypeVar("_H", bound=Callable[..., Any])

_active_clients: weakref.WeakSet[RelayClient] = weakref.WeakSet()


class RelayClient(Outbound, StackOwned):
    """A connection to SignalWire RELAY that receives and places calls, messages and tasks.

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

    The other keyword options (timeouts, buffers, transport, TLS context) are those of
    ``ClientOptions``, each with its default there.
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
        telemetry: Telemetry | bool | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.config: ClientConfig = ClientConfig.resolve(
            project, token, jwt_token, host, contexts, max_active_calls, **options
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
        if not isinstance(telemetry, Telemetry | bool | None):
            raise TypeError(
                f"telemetry must be a relay_anyio.Telemetry, True, False or None, "
                f"got {type(telemetry).__name__}"
            )
        self._telemetry_setting = telemetry

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

    @property
    def telemetry(self) -> Telemetry:
        """Where this client reports calls, requests and the link (chosen on entry)."""
        return self._router.telemetry

    def health(self) -> Health:
        """A snapshot of the link and the load, for a readiness probe (``to_dict()``)."""
        session = self._session
        return Health.capture(
            state=session.state.value,
            state_since=session.state_since,
            state_since_wall=session.state_since_wall,
            last_frame_at=session.last_frame_at,
            ping_rtt=session.ping_rtt,
            reconnects=session.reconnects,
            requests_in_flight=session.requests_in_flight,
            active_calls=len(self._router.calls),
            listener_overflows=self._router.overflows,
        )

    def on_call(self, handler: _H) -> _H:
        """Decorator: run ``handler(call)`` for every inbound call, in the call's task group."""
        self._router.call_handler = handler
        return handler

    def on_message(self, handler: _H) -> _H:
        """Decorator: run ``handler(message)`` for every inbound SMS/MMS."""
        self._router.message_handler = handler
        return handler

    def on_task(self, handler: _H) -> _H:
        """Decorator: run ``handler(task)`` for every task RELAY hands this client.

        ``task`` is a ``TaskEvent`` (its ``context`` and ``message``), sent with
        ``send_task`` to a context this client receives on; RELAY gives each task to
        one listening session only. Each handler runs in its own task in the
        client's task group; an exception it raises is logged, never propagated.
        Register it before entering the client: a task that arrives without a
        handler is dropped (logged), and no other consumer gets it.
        """
        self._router.task_handler = handler
        return handler

    def on_connection_state(self, callback: ConnectionStateCallback) -> None:
        """Call ``callback(state)`` on every connection state change (from the reader)."""
        self._router.state_callbacks.append(callback)

    def on(self, event_type: str, listener: EventListener) -> ListenerHandle:
        """Listen to events no call owns (conference-level, ``calling.error``, unknown).

        Returns a ``ListenerHandle``: ``remove()`` it, or use it as a ``with`` block.
        """
        return self._router.listeners.add(event_type, listener)

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
        self._observe(_resolve_telemetry(self._telemetry_setting))
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

    def _observe(self, telemetry: Telemetry) -> None:
        self._router.telemetry = telemetry
        self._session.observe(telemetry)

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
        """Connect and serve until interrupted (Ctrl+C shuts down cleanly).

        ``SIGNALWIRE_LOG_LEVEL`` / ``SIGNALWIRE_LOG_FORMAT`` (``json`` for one JSON
        object per line), when set, configure logging first (``configure_logging``).
        """
        from ._logsetup import configure_logging, logging_requested

        if logging_requested():
            configure_logging()

        async def main() -> None:
            async with self:
                await anyio.sleep_forever()

        try:
            anyio.run(main, backend=backend)
        except BaseException as exc:
            # On trio, Ctrl+C lands in whichever task runs (the reader, writing a log
            # line): then it leaves the client's task group inside an exception group.
            if not _only_interrupts(exc):
                raise
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


def _resolve_telemetry(setting: Telemetry | bool | None) -> Telemetry:
    """The client's telemetry: the one given, OpenTelemetry, or the no-op default.

    ``None`` (the default) uses OpenTelemetry when the ``otel`` extra is installed and
    the application configured a tracer or meter provider (and ``OTEL_SDK_DISABLED``
    is not true); ``True`` insists on OpenTelemetry's global providers; ``False`` is
    off. Off costs nothing on the request and event paths (see ``_telemetry``).
    """
    if isinstance(setting, Telemetry):
        return setting
    if setting is False or (setting is None and not otel_installed()):
        return Telemetry()
    from ._otel import OpenTelemetry, providers_configured

    if setting is None and not providers_configured():
        return Telemetry()
    return OpenTelemetry()


def _only_interrupts(exc: BaseException) -> bool:
    """A ``KeyboardInterrupt``, or an exception group holding nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)
