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
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc

from ._call import Call, CallHandler
from ._config import ClientConfig, max_connections
from ._constants import (
    CALL_STATE_ENDED,
    EVENT_CALL_DIAL,
    EVENT_CALL_RECEIVE,
    EVENT_CALL_STATE,
    EVENT_MESSAGING_RECEIVE,
    EVENT_MESSAGING_STATE,
)
from ._errors import ConnectionLost, DialTimeout, RelayError
from ._events import make_event
from ._listeners import Dispatcher, EventListener, ListenerSet
from ._messaging import Message, MessageListener, MessageRegistry
from ._scopes import owned_task_group
from ._session import ConnectionState, Session
from ._transport import TransportName

__all__ = ["CallHandler", "RelayClient"]

logger = logging.getLogger("relay_anyio.client")

MessageHandler = Callable[[Message], Awaitable[object]]
ConnectionStateCallback = Callable[[ConnectionState], object]
_H = TypeVar("_H", bound=Callable[..., Any])

#: The probe that asks the server whether a call still exists after a resume: a
#: command without effect (no binding lives in this realm) that RELAY answers 404/410
#: for a call it no longer knows.
_PROBE_METHOD = "calling.clear_digit_bindings"
_PROBE_REALM = "relay-anyio-probe"
_PROBES_IN_FLIGHT = 16
_active_clients: weakref.WeakSet[RelayClient] = weakref.WeakSet()


class _PendingDial:
    __slots__ = ("done", "error", "legs", "tag", "winner")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.legs: dict[str, Call] = {}
        self.done = anyio.Event()
        self.winner: Call | None = None
        self.error: RelayError | None = None


class RelayClient:
    """A connection to SignalWire RELAY that receives and places calls and messages.

    Credentials come from the arguments or the ``SIGNALWIRE_*`` environment variables
    (``SIGNALWIRE_PROJECT_ID`` + ``SIGNALWIRE_API_TOKEN``, or ``SIGNALWIRE_JWT_TOKEN``);
    the host from ``host`` or ``SIGNALWIRE_SPACE`` (default ``relay.signalwire.com``),
    always over ``wss``. ``url="ws://..."`` is for local testing against
    ``relay_anyio.testing.FakeRelayServer``.
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
        self._session = Session(config.session, self, config.contexts)
        self._call_handler: CallHandler | None = None
        self._message_handler: MessageHandler | None = None
        self._state_callbacks: list[ConnectionStateCallback] = []
        self._listeners = ListenerSet()
        self._dispatcher = Dispatcher("the client", config.call_event_buffer, "drop")
        self._messages = MessageRegistry(config.message_ttl)
        self._calls: dict[str, Call] = {}
        #: Ended calls still waiting for a late action result (see Call._end).
        self._lingering: dict[str, Call] = {}
        self._handled: set[Call] = set()
        self._dials: dict[str, _PendingDial] = {}
        self._abandoned_dials: dict[str, None] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._fatal: RelayError | None = None
        self._session_scope: anyio.CancelScope | None = None
        self._stack: AsyncExitStack | None = None

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
        return len(self._calls)

    def on_call(self, handler: _H) -> _H:
        """Decorator: run ``handler(call)`` for every inbound call, in the call's task group."""
        self._call_handler = handler
        return handler

    def on_message(self, handler: _H) -> _H:
        """Decorator: run ``handler(message)`` for every inbound SMS/MMS."""
        self._message_handler = handler
        return handler

    def on_connection_state(self, callback: ConnectionStateCallback) -> None:
        """Call ``callback(state)`` on every connection state change (from the reader)."""
        self._state_callbacks.append(callback)

    def on(self, event_type: str, listener: EventListener) -> None:
        """Listen to events no call owns (conference-level, ``calling.error``, unknown)."""
        self._listeners.add(event_type, listener)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RelayClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))

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
                # Client-level listeners and messages: a listener task per entry.
                self._dispatcher = Dispatcher("the client", self._dispatcher.buffer, "drop")
                self._dispatcher.task_group = tg
                try:
                    await tg.start(self._run_session)
                except BaseException:
                    self._cancel(tg)
                    raise
                tg.start_soon(self._messages.run_expiry, name="relay message expiry")
                try:
                    yield
                finally:
                    try:
                        await self._hang_up_handled_calls()
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
        self._dispatcher.close()
        for call in [*self._calls.values(), *self._lingering.values()]:
            call._dispatcher.close()

    async def connect(self) -> None:
        """Connect without ``async with`` (the official client's API); pair with disconnect()."""
        stack = AsyncExitStack()
        await stack.enter_async_context(self._running())
        self._stack = stack

    async def disconnect(self) -> None:
        """Close what ``connect()`` opened: hang up handled calls, end every task."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

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
        # The session's scope is shielded once connected: when the scope around the
        # client is cancelled, the connection must outlive the handlers long enough to
        # stop their actions and hang up their calls (__aexit__ cancels it after that).
        # Before that it is not, so cancelling the task entering the client stops a
        # session that is still trying to connect.
        scope = self._session_scope = anyio.CancelScope()

        class _Status:
            def started(self, value: None = None) -> None:
                scope.shield = True
                task_status.started()

        try:
            with scope:
                await self._session.run(task_status=_Status())
        except RelayError as exc:
            if not scope.shield:  # never connected: __aenter__ raises it
                raise
            logger.error("RELAY client stopped: %s", exc)
            self._fatal = exc
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    async def _hang_up_handled_calls(self) -> None:
        calls = [c for c in self._handled if c.state != CALL_STATE_ENDED]
        if not calls or not self._session.connected:
            return
        logger.info("shutting down: hanging up %d call(s) still being handled", len(calls))
        with anyio.move_on_after(self.shutdown_timeout, shield=True):
            async with anyio.create_task_group() as tg:
                for call in calls:
                    tg.start_soon(self._quiet_hangup, call)

    @staticmethod
    async def _quiet_hangup(call: Call) -> None:
        try:
            await call.hangup()
        except RelayError as exc:
            logger.warning("could not hang up %s at shutdown: %s", call.call_id, exc)

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
        if tag in self._dials:
            raise ValueError(f"a dial with tag {tag!r} is already in progress")
        limit = dial_timeout if timeout is None else timeout
        params: dict[str, Any] = {"tag": tag, "devices": [[dict(d) for d in g] for g in devices]}
        if max_duration:
            params["max_duration"] = max_duration
        if region is not None:
            params["region"] = region
        if max_price_per_minute is not None:
            params["max_price_per_minute"] = max_price_per_minute
        dial = _PendingDial(tag)
        self._dials[tag] = dial
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
            del self._dials[tag]
            if not succeeded:
                await self._abandon_dial(dial)

    async def _abandon_dial(self, dial: _PendingDial) -> None:
        """End every leg of a dial nobody will get (timeout, cancel, failure)."""
        self._abandoned_dials[dial.tag] = None
        while len(self._abandoned_dials) > 1000:
            del self._abandoned_dials[next(iter(self._abandoned_dials))]
        legs = [leg for leg in dial.legs.values() if leg.state != CALL_STATE_ENDED]
        if dial.winner is not None and dial.winner not in legs:
            legs.append(dial.winner)
        if not legs:
            return
        with anyio.move_on_after(self.shutdown_timeout, shield=True):
            async with anyio.create_task_group() as tg:
                for leg in legs:
                    tg.start_soon(self._end_leg, leg)

    async def _end_leg(self, leg: Call) -> None:
        try:
            await leg.hangup("cancel")
        except RelayError as exc:
            logger.warning("could not end dial leg %s: %s", leg.call_id, exc)

    # -- routing (the session's listener: called from the reader, never blocks) ----------

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        if event_type == EVENT_CALL_RECEIVE:
            self._on_call_received(params, timestamp)
            return
        if event_type == EVENT_MESSAGING_STATE:
            self._messages.route_state(params, timestamp)
            return
        if event_type == EVENT_MESSAGING_RECEIVE:
            self._on_message_received(params)
            return
        if event_type == EVENT_CALL_DIAL:
            if self._on_dial_event(params, timestamp):
                return
        call_id = params.get("call_id")
        call = self._calls.get(call_id) if type(call_id) is str else None
        if call is None:
            if event_type == EVENT_CALL_STATE:
                call = self._maybe_dial_leg(params)
            elif self._lingering and type(call_id) is str:
                call = self._lingering.get(call_id)
        if call is not None:
            call._deliver(event_type, params, timestamp)
            return
        listeners = self._listeners.get(event_type)
        if listeners:
            self._dispatcher.dispatch(listeners, make_event(event_type, params, timestamp))
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("no receiver for %s event (call_id=%r)", event_type, call_id)

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        if fresh_session and (self._calls or self._dials):
            lost = ConnectionLost(
                "the RELAY session was restarted: calls of the previous session are gone"
            )
            logger.warning(
                "session restarted: ending waits of %d call(s) and %d dial(s)",
                len(self._calls),
                len(self._dials),
            )
            for call in [*self._calls.values(), *self._lingering.values()]:
                call._finish(lost)
            self._calls.clear()
            self._lingering.clear()
            # A dial of the old session will never hear back, legs announced or not.
            for dial in self._dials.values():
                if not dial.done.is_set():
                    dial.error = dial.error or lost
                    dial.done.set()
        elif state is ConnectionState.CONNECTED and self._calls and self._tg is not None:
            self._tg.start_soon(self._recheck_calls, list(self._calls.values()))
        for callback in list(self._state_callbacks):
            try:
                callback(state)
            except Exception:
                logger.exception("connection state callback %r failed", callback)

    async def _recheck_calls(self, calls: list[Call]) -> None:
        """After a resume, end the calls the server no longer knows.

        A server need not redeliver the events it sent while the link was down
        (reference §8.2: unconfirmed), so a call may have ended unseen and every
        wait on it would hang. Each call still live here is probed once (bounded
        concurrency, the request timeout each); one the server answers 404/410 for
        gets a synthetic ``ended`` (``end_reason`` "gone"), which ends its waits and
        reaches its listeners as any end would.
        """
        limiter = anyio.CapacityLimiter(_PROBES_IN_FLIGHT)
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(self._recheck_call, call, limiter)

    async def _recheck_call(self, call: Call, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            if call.state == CALL_STATE_ENDED:
                return
            params = {"node_id": call.node_id, "call_id": call.call_id, "realm": _PROBE_REALM}
            try:
                await self._session.request(_PROBE_METHOD, params)
            except RelayError as exc:
                if exc.code not in (404, 410) or call.state == CALL_STATE_ENDED:
                    return  # alive, or cannot tell (the link dropped again, ...)
                logger.warning(
                    "call %s is gone after the reconnect; its end was never delivered",
                    call.call_id,
                    extra={"call_id": call.call_id},
                )
                call._deliver(EVENT_CALL_STATE, call._state_params(CALL_STATE_ENDED, "gone"), 0.0)

    def _call_finished(self, call: Call, lingering: bool) -> None:
        """A call ended: stop routing to it (``lingering``: only its late results)."""
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
        self._handled.discard(call)
        if lingering:
            self._lingering[call.call_id] = call
        elif self._lingering.get(call.call_id) is call:
            del self._lingering[call.call_id]

    def _new_call(self, params: Mapping[str, Any], **overrides: Any) -> Call | None:
        call_id, node_id = params.get("call_id"), params.get("node_id")
        if not isinstance(call_id, str) or not call_id or not isinstance(node_id, str):
            logger.warning("ignored a call event without call_id/node_id")
            return None

        def text(key: str, default: str = "") -> str:
            value = params.get(key)
            return value if isinstance(value, str) else default

        device = params.get("device")
        fields: dict[str, Any] = {
            "call_id": call_id,
            "node_id": node_id,
            "context": text("context") or text("protocol"),
            "direction": text("direction", "inbound"),
            "device": device if isinstance(device, dict) else {},
            "state": text("call_state", "created"),
            "tag": text("tag"),
            "segment_id": text("segment_id"),
            "project_id": text("project_id", self.project),
            "event_buffer": self.config.call_event_buffer,
            "late_result_grace": self.config.late_result_grace,
        }
        fields.update(overrides)
        return Call(self._session.request, self._call_finished, **fields)

    def _on_call_received(self, params: dict[str, Any], timestamp: float) -> None:
        call = self._new_call(params)
        if call is None or call.call_id in self._calls:
            return
        assert self._tg is not None
        if self._call_handler is None or len(self._calls) >= self.max_active_calls:
            why = (
                "no on_call handler is registered"
                if self._call_handler is None
                else f"max_active_calls ({self.max_active_calls}) reached"
            )
            logger.warning("passing call %s back to RELAY: %s", call.call_id, why)
            self._tg.start_soon(self._pass_call, call)
            return
        self._calls[call.call_id] = call
        self._tg.start_soon(self._handle_call, call, name=f"relay call {call.call_id}")

    async def _pass_call(self, call: Call) -> None:
        try:
            await call.pass_()
        except RelayError as exc:
            logger.warning("calling.pass for %s failed: %s", call.call_id, exc)

    async def _handle_call(self, call: Call) -> None:
        handler = self._call_handler
        assert handler is not None
        self._handled.add(call)
        # Only a handler that was cancelled (client shutdown) stays "being handled",
        # so that __aexit__ hangs its call up.
        await call._serve(handler, lambda: self._handled.discard(call))

    def _on_dial_event(self, params: dict[str, Any], timestamp: float) -> bool:
        """Resolve a pending dial; return True if the event was consumed by one."""
        tag = params.get("tag")
        dial = self._dials.get(tag) if isinstance(tag, str) else None
        info = params.get("call")
        info = info if isinstance(info, dict) else {}
        state = params.get("dial_state")
        if dial is None:
            call_id = info.get("call_id")
            call = self._calls.get(call_id) if isinstance(call_id, str) else None
            if call is not None:
                call._deliver(EVENT_CALL_DIAL, params, timestamp)
                return True
            return False
        if state == "answered":
            call_id = info.get("call_id")
            winner = dial.legs.get(call_id) if isinstance(call_id, str) else None
            if winner is None:
                winner = self._new_call(
                    {**info, "tag": dial.tag, "call_state": "answered"}, direction="outbound"
                )
                if winner is None:
                    dial.error = RelayError(-1, f"Dial answered without a call id (tag={tag})")
                    dial.done.set()
                    return True
                self._register_outbound(winner)
            elif not winner.node_id and isinstance(info.get("node_id"), str):
                winner.node_id = info["node_id"]
            dial.winner = winner
            dial.done.set()
        elif state == "failed":
            # The dial event says only "failed"; why is in the legs' end reasons.
            reasons = [leg.end_reason for leg in dial.legs.values() if leg.end_reason]
            why = ", ".join(dict.fromkeys(reasons)) or "no leg answered"
            dial.error = RelayError(-1, f"Dial failed (tag={tag}): {why}", params)
            dial.done.set()
        return True

    def _maybe_dial_leg(self, params: dict[str, Any]) -> Call | None:
        tag = params.get("tag")
        if not isinstance(tag, str):
            return None
        dial = self._dials.get(tag)
        if dial is None:
            if tag in self._abandoned_dials and params.get("call_state") != CALL_STATE_ENDED:
                leg = self._new_call(params, direction="outbound")
                if leg is not None:
                    logger.warning("hanging up leg %s of an abandoned dial", leg.call_id)
                    self._register_outbound(leg)
                    assert self._tg is not None
                    self._tg.start_soon(self._end_leg, leg)
            return None
        leg = self._new_call(params, direction="outbound")
        if leg is None:
            return None
        dial.legs[leg.call_id] = leg
        self._register_outbound(leg)
        return leg

    def _register_outbound(self, call: Call) -> None:
        """Make an outbound leg the client's: routed, listened to, hung up at exit.

        Its listener task runs in the client's task group, and until it ends it is
        among the calls the client hangs up when it exits, so a dialled call can
        outlive neither the client nor a dial nobody waits for any more.
        """
        call._set_scope(self._tg)
        self._calls[call.call_id] = call
        self._handled.add(call)  # until it ends (see _call_finished)

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
            self._dispatcher,
            {**params, "message_id": message_id, "media": list(media or ()),
             "tags": list(tags or ())},
            state="queued",
            direction="outbound",
            on_completed=on_completed,
        )
        self._messages.track(message)
        return message

    def _on_message_received(self, params: dict[str, Any]) -> None:
        message = Message(self._dispatcher, params, state="received", direction="inbound")
        handler = self._message_handler
        if handler is None:
            logger.warning("inbound message %s dropped: no on_message handler", message.message_id)
            return
        assert self._tg is not None
        self._tg.start_soon(self._handle_message, handler, message)

    @staticmethod
    async def _handle_message(handler: MessageHandler, message: Message) -> None:
        try:
            await handler(message)
        except Exception:
            logger.exception("on_message handler failed for message %s", message.message_id)
