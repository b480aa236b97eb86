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
import os
import ssl
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ._call import Call, EventListener, run_listeners, run_plain
from ._constants import (
    CALL_STATE_ENDED,
    DEFAULT_RELAY_HOST,
    EVENT_CALL_DIAL,
    EVENT_CALL_RECEIVE,
    EVENT_CALL_STATE,
    EVENT_MESSAGING_RECEIVE,
    EVENT_MESSAGING_STATE,
)
from ._errors import ConnectionLost, RelayError
from ._events import RelayEvent, make_event
from ._messaging import Message, MessageListener, MessageRegistry
from ._session import ConnectionState, Session, SessionOptions
from ._transport import TransportName, build_ssl_context

__all__ = ["CallHandler", "RelayClient"]

logger = logging.getLogger("relay_anyio.client")

CallHandler = Callable[[Call], Awaitable[object]]
MessageHandler = Callable[[Message], Awaitable[object]]
ConnectionStateCallback = Callable[[ConnectionState], object]
_H = TypeVar("_H", bound=Callable[..., Any])

_FORBIDDEN_HOST_CHARS = frozenset("@/?\r\n \\")
_active_clients: weakref.WeakSet[RelayClient] = weakref.WeakSet()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return max(1, int(raw))
    except ValueError:
        logger.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default


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
    :class:`relay_anyio.testing.FakeRelayServer`.
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
        transport: TransportName = "wsproto",
        request_timeout: float = 10.0,
        ping_interval: float = 30.0,
        ping_timeout: float | None = None,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        call_event_buffer: int = 1000,
        shutdown_timeout: float = 5.0,
        message_ttl: float = 3600.0,
    ) -> None:
        jwt_token = jwt_token or os.environ.get("SIGNALWIRE_JWT_TOKEN") or None
        authentication: dict[str, str]
        if jwt_token:
            authentication = {"jwt_token": jwt_token}
        else:
            project = project or os.environ.get("SIGNALWIRE_PROJECT_ID") or None
            token = token or os.environ.get("SIGNALWIRE_API_TOKEN") or None
            if not project:
                raise ValueError(
                    "project is required: pass project=... or set SIGNALWIRE_PROJECT_ID "
                    "(or use jwt_token=... / SIGNALWIRE_JWT_TOKEN)"
                )
            if not token:
                raise ValueError(
                    "token is required: pass token=... or set SIGNALWIRE_API_TOKEN "
                    "(or use jwt_token=... / SIGNALWIRE_JWT_TOKEN)"
                )
            authentication = {"project": project, "token": token}
        self.project: str = project or ""
        if url is None:
            host = host or os.environ.get("SIGNALWIRE_SPACE") or DEFAULT_RELAY_HOST
            if any(c in _FORBIDDEN_HOST_CHARS for c in host) or "://" in host:
                raise ValueError(
                    f"Invalid host {host!r}: must be a hostname like 'example.signalwire.com' "
                    "(optionally with ':port'), not a URL"
                )
            url = f"wss://{host}"
            if ssl_context is None:
                ssl_context = build_ssl_context()
        elif not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
        self.host: str = url.split("://", 1)[1].split("/", 1)[0]
        self.url = url
        if max_active_calls is None:
            max_active_calls = _env_int("RELAY_MAX_ACTIVE_CALLS", 1000)
        self.max_active_calls: int = max(1, int(max_active_calls))
        self.shutdown_timeout = shutdown_timeout
        self._call_event_buffer = call_event_buffer
        options = SessionOptions(
            url=url,
            authentication=authentication,
            transport=transport,
            ssl_context=ssl_context,
            request_timeout=request_timeout,
            ping_interval=ping_interval,
            ping_timeout=request_timeout if ping_timeout is None else ping_timeout,
            reconnect_min_delay=reconnect_min_delay,
            reconnect_max_delay=reconnect_max_delay,
        )
        self._session = Session(options, self, contexts or ())
        self._call_handler: CallHandler | None = None
        self._message_handler: MessageHandler | None = None
        self._messages = MessageRegistry(self, message_ttl)
        self._state_callbacks: list[ConnectionStateCallback] = []
        self._listeners: dict[str, tuple[EventListener, ...]] = {}
        self._calls: dict[str, Call] = {}
        self._handled: set[Call] = set()
        self._dials: dict[str, _PendingDial] = {}
        self._abandoned_dials: dict[str, None] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._fatal: RelayError | None = None
        self._session_scope: anyio.CancelScope | None = None
        self._pump_send: (
            MemoryObjectSendStream[tuple[tuple[EventListener, ...], RelayEvent]] | None
        ) = None

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
        self._listeners[event_type] = (*self._listeners.get(event_type, ()), listener)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> RelayClient:
        limit = _env_int("RELAY_MAX_CONNECTIONS", 1)
        others = [c for c in _active_clients if c is not self]
        if len(others) >= limit:
            raise RuntimeError(
                f"RelayClient connection limit reached ({limit}); raise RELAY_MAX_CONNECTIONS "
                "to run more clients in this process"
            )
        _active_clients.add(self)
        self._fatal = None
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await tg.start(self._run_session)
            # Connected: from now on the session's scope is shielded (see _run_session).
            # Not before start() has returned: a caller cancelled in between (say,
            # asyncio.Runner's Ctrl+C, a task.cancel() that beats the started value)
            # makes anyio's start() cancel the session and wait for it, which a
            # shielded session would never let end.
            assert self._session_scope is not None
            self._session_scope.shield = True
            tg.start_soon(self._messages.run_expiry, name="relay message expiry")
        except BaseException as exc:
            tg.cancel_scope.cancel()
            if self._session_scope is not None:
                self._session_scope.cancel()
            self._tg = None
            _active_clients.discard(self)
            await tg.__aexit__(None, None, None)
            if isinstance(exc, RelayError):
                raise exc from None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tg = self._tg
        if tg is None:
            return False
        try:
            await self._hang_up_handled_calls()
        finally:
            tg.cancel_scope.cancel()
            if self._session_scope is not None:
                self._session_scope.cancel()
            self._tg = None
            _active_clients.discard(self)
            self._session.close()
            if self._pump_send is not None:
                self._pump_send.close()
                self._pump_send = None
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            await tg.__aexit__(None, None, None)
            return False  # the caller's own exception propagates unchanged
        suppressed = await tg.__aexit__(exc_type, exc, tb)
        if self._fatal is not None:
            raise self._fatal
        return bool(suppressed)

    async def connect(self) -> None:
        """Connect without ``async with`` (the official client's API); pair with disconnect()."""
        await self.__aenter__()

    async def disconnect(self) -> None:
        await self.__aexit__(None, None, None)

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
        # The session's scope is shielded once connected (by __aenter__, as soon as
        # start() returns): when the scope around the client is cancelled, the
        # connection must outlive the handlers long enough to stop their actions and
        # hang up their calls (__aexit__ cancels it after that). Before that it is
        # not, so cancelling the task entering the client stops the session.
        scope = self._session_scope = anyio.CancelScope()
        connected = False

        class _Status:
            def started(self, value: None = None) -> None:
                nonlocal connected
                connected = True
                task_status.started()

        try:
            with scope:
                await self._session.run(task_status=_Status())
        except RelayError as exc:
            if not connected:  # never connected: __aenter__ raises it
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

        Returns the answered leg. Raises :class:`RelayError` if every leg fails, and
        ``TimeoutError`` (a RelayError too) after ``timeout`` seconds (default
        ``dial_timeout``, 120). On a timeout or cancellation the legs still ringing are
        ended and a leg answered late is hung up: no call is left orphaned.
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
                raise _DialTimeout(tag, limit)
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
        if call is None and event_type == EVENT_CALL_STATE:
            call = self._maybe_dial_leg(params)
        if call is not None:
            call._deliver(event_type, params, timestamp)
            return
        listeners = self._listeners.get(event_type)
        if listeners:
            self._run_client_listeners(listeners, make_event(event_type, params, timestamp))
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
            for call in list(self._calls.values()):
                call._fail(lost)
            self._calls.clear()
            # A dial of the old session will never hear back, legs announced or not.
            for dial in self._dials.values():
                if not dial.done.is_set():
                    dial.error = dial.error or lost
                    dial.done.set()
        for callback in list(self._state_callbacks):
            try:
                callback(state)
            except Exception:
                logger.exception("connection state callback %r failed", callback)

    def _call_finished(self, call: Call) -> None:
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

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
            "event_buffer": self._call_event_buffer,
        }
        fields.update(overrides)
        return Call(self, **fields)

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
        finished = False
        try:
            async with anyio.create_task_group() as tg:
                call._task_group = tg
                try:
                    await handler(call)
                except Exception:
                    logger.exception("on_call handler failed for call %s", call.call_id)
                finally:
                    await call._close_scope()
            finished = True
        finally:
            call._task_group = None
            if finished:
                # A handler that was cancelled (client shutdown) stays "being handled"
                # so that __aexit__ hangs its call up.
                self._handled.discard(call)

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

        def session_lost(leg: Call) -> None:
            # A fresh session took the legs away: the dial's outcome can never come.
            if leg._failure is not None and not dial.done.is_set():  # not a normal end
                dial.error = leg._failure
                dial.done.set()

        leg._end_callbacks.append(session_lost)
        return leg

    def _register_outbound(self, call: Call) -> None:
        """Make an outbound leg the client's: routed, listened to, hung up at exit.

        Its listener task runs in the client's task group, and until it ends it is
        among the calls the client hangs up when it exits, so a dialled call can
        outlive neither the client nor a dial nobody waits for any more.
        """
        call._task_group = self._tg
        self._calls[call.call_id] = call
        self._handled.add(call)
        call._end_callbacks.append(self._handled.discard)

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
            self,
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
        self._messages.track(message)
        return message

    def _on_message_received(self, params: dict[str, Any]) -> None:
        message = Message(self, params, state="received", direction="inbound")
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

    # -- client-level listeners ----------------------------------------------------------

    def _run_client_listeners(
        self, listeners: tuple[EventListener, ...], event: RelayEvent
    ) -> None:
        if self._pump_send is None:
            listeners = run_plain(listeners, event, "the client")
            if not listeners:
                return
            assert self._tg is not None
            send, receive = anyio.create_memory_object_stream[
                tuple[tuple[EventListener, ...], RelayEvent]
            ](self._call_event_buffer)
            self._pump_send = send
            self._tg.start_soon(run_listeners, receive, "the client", name="relay client listeners")
        try:
            self._pump_send.send_nowait((listeners, event))
        except anyio.WouldBlock:
            logger.error(
                "client listeners are more than %d events behind; dropped a %s event",
                self._call_event_buffer,
                event.event_type,
            )


class _DialTimeout(RelayError, TimeoutError):
    def __init__(self, tag: str, timeout: float) -> None:
        super().__init__(-1, f"Dial timed out waiting for answer after {timeout:g} s (tag={tag})")
