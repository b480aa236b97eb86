"""A RELAY server double over a real WebSocket on loopback: sessions, acks, faults.

Tests of a RELAY client need more than canned frames: reconnects, session resume with
re-delivery of unacknowledged events, half-open links and malformed frames only show
up against a peer that keeps state across connections. This module is that peer. It
speaks the wire protocol of ``shared/relay-protocol.md`` on an ephemeral port, keeps
a journal of every frame so tests can assert on what the client sent, and offers one
primitive per failure a real network or server can produce.

Layout: this module owns the transport and the session layer (connect, resume, acks,
pings, faults); what each RELAY method *does* lives in ``_calling.py`` as a registry
of handlers. Everything is plain anyio, so the same server runs under trio and asyncio.

Ordering: the frames of one connection are read and answered strictly in order by a
single reader task (as RELAY processes a connection), so the responses and events a
test sees do not depend on scheduler whims. Only delayed work (``delay_next``,
``play_duration``...) runs in other tasks.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import random
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import anyio
import anyio.abc
from anyio.abc import SocketAttribute, TaskStatus
from anyio.streams.tls import TLSStream

from .._constants import (
    CALL_STATE_CREATED,
    EVENT_AUTHORIZATION_STATE,
    EVENT_CALL_RECEIVE,
    EVENT_MESSAGING_RECEIVE,
    MESSAGE_STATE_RECEIVED,
    METHOD_SIGNALWIRE_CONNECT,
    METHOD_SIGNALWIRE_DISCONNECT,
    METHOD_SIGNALWIRE_EVENT,
    METHOD_SIGNALWIRE_PING,
)
from .._errors import ConnectionLost, ProtocolError
from .._scopes import owned_task_group
from .._websocket import accept_websocket
from ._calls import FakeCall, FakeConference, FollowUp
from ._context import Handler, HandlerContext, JsonRpcError, ResultCodeError
from ._handlers import DEFAULT_HANDLERS
from ._scripts import DIAL_OUTCOMES, DialScript, MessageScript
from ._session import Connection, FakeSession
from ._switches import (
    INVALID_REQUEST_REPLIES,
    ActionEnd,
    InvalidRequestReply,
    RecordUrlLocation,
    choice,
)
from ._validation import InvalidRequestError, check_request, refusal
from ._wire import (
    EVENT_SEQ_KEY,
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

if TYPE_CHECKING:
    import trustme

__all__ = [
    "AUTH_FAILED_CODE",
    "AUTH_FAILED_ERROR_CODE",
    "AUTH_FAILED_MESSAGE",
    "NOT_AUTHENTICATED_CODE",
    "NOT_AUTHENTICATED_MESSAGE",
    "FakeRelayServer",
    "FakeSession",
]

logger = logging.getLogger("relay_anyio.testing")

_T = TypeVar("_T")
_Fault = Callable[["Connection", JSONObject], Awaitable[None]]

# The reference only establishes ``error.data.signalwire_error_code == "AUTH_REQUIRED"``
# (from the schema-driven mock); the numeric code and the message are UNCONFIRMED
# guesses, kept here so tests assert on names rather than on made-up literals.
AUTH_FAILED_CODE: Final = -32002
AUTH_FAILED_MESSAGE: Final = "Authentication failed: invalid project or token"
AUTH_FAILED_ERROR_CODE: Final = "AUTH_REQUIRED"
#: Answer to any request but ``signalwire.connect`` on a connection not yet
#: authenticated (UNCONFIRMED: the reference does not say what RELAY answers).
NOT_AUTHENTICATED_CODE: Final = -32001
NOT_AUTHENTICATED_MESSAGE: Final = "Not authenticated"

_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "::1")
#: How often ``wait_until`` and friends re-check when the server's state is still.
_RECHECK_INTERVAL: Final = 0.01
_CA_FILE_NAME: Final = "fake-relay-ca.pem"
#: Server requests every client must answer with a result (reference §2.6).
_SERVED_BY_CLIENTS: Final = frozenset(
    {METHOD_SIGNALWIRE_EVENT, METHOD_SIGNALWIRE_PING, METHOD_SIGNALWIRE_DISCONNECT}
)


class FakeRelayServer:
    """A RELAY server on ``127.0.0.1``, on a free port, for tests of RELAY clients.

    Use ``async with FakeRelayServer() as server:`` (it owns a task group) or
    ``await task_group.start(server.serve)``. Then point the client at
    ``server.client_kwargs()``, drive calls with ``offer_call`` and
    ``script_dial``, break things with the fault primitives, and assert on
    ``journal``, ``violations`` and friends.

    Knobs, all plain attributes that may be changed at any time:
    ``play_duration`` and ``collect_delay`` (seconds before a play finishes and a
    collect reports; 0 = at once, in the same deterministic order as the handler's
    other events), ``record_duration`` (seconds before a recording ends by itself, as
    silence or a length limit would end it; None = only on stop or call end),
    ``ping_interval`` (server pings; None = off; read when a connection
    authenticates).

    Switches for unconfirmed behaviour: where the protocol reference only guesses
    what RELAY does, each plausible behaviour is one value of a plain attribute, so
    a client's tests can run against all of them (defaults first; each is read when
    the behaviour happens, so it may be set at any time):

    * ``redeliver_on_resume`` (§6.2, §8.2), ``True``: a resumed session gets every
      event still unacknowledged (sent on the lost connection or produced while it
      was away) again, same ids, in order. ``False``: those events are dropped, as
      by a server that does not replay; ``dropped_on_resume`` lists them.
    * ``action_end_on_call_end`` (§6.3), ``"before_ended"``: when a call ends, the
      terminal event of each running action (a record's ``finished`` with its URL,
      a play's ``finished``, a collect's ``no_input``...) comes between ``ending``
      and ``ended``. ``"after_ended"``: after ``ended``, ``late_action_delay``
      seconds later (default 0.0: right after it). ``"never"``: not at all.
    * ``record_url_location`` (§12.7), ``"both"``: a finished recording carries
      ``url``, ``duration`` and ``size`` at the top level of the event params and
      inside ``record``. ``"top"``: only at the top level. ``"record"``: only inside
      ``record`` (next to ``audio``).
    * ``record_result_url`` (§11.2, §11.7), ``True``: the ``calling.record`` result
      already carries the recording's ``url``; ``False``: it does not.
    * ``invalid_request_reply`` (§17.5), ``"jsonrpc_error"``: an unknown method, or a
      ``calling.*`` request missing a key the reference requires (``node_id`` and
      ``call_id`` of every call command, ``control_id`` of every action and its
      controls, the keys §11.2 marks "(req)"), gets a JSON-RPC error, ``-32601
      "Method not found: ..."`` or ``-32602 "Invalid params: ..."``.
      ``"result_400"``: a result ``{"code": "400", "message": <the same text>}``.
      Never a 200; either way the request has no effect and is recorded in
      ``violations``.
    * ``disconnect_close_delay`` (§7), ``0.05``: seconds after
      ``signalwire.disconnect`` (``send_disconnect``) the server closes the
      socket; ``None``: it never closes it (read when the disconnect is sent).

    ``violations`` lists what a conformant client never does. The pytest
    fixtures fail a test that leaves any there unless it opts out (the
    ``relay_violations_allowed`` marker, or ``expect_violations = True``).
    """

    #: The key ``stamp_events`` adds to the inner params of every event.
    EVENT_SEQ_KEY: Final = EVENT_SEQ_KEY

    def __init__(
        self,
        *,
        project: str = "test-project",
        token: str = "test-token",
        jwt_tokens: Iterable[str] = ("test-jwt",),
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.project = project
        self.token = token
        self.jwt_tokens: tuple[str, ...] = tuple(jwt_tokens)
        self.tls = tls
        self.host = host
        #: Port to listen on; 0 (the default, and what tests want) picks a free one.
        self.requested_port = port
        #: ``nodeid`` of the connect result and default ``node_id`` of calls.
        self.node_id: str = str(uuid.uuid4())
        self.ping_interval: float | None = None
        self.play_duration: float = 0.0
        self.collect_delay: float = 0.0
        self.record_duration: float | None = None
        self.disconnect_close_delay: float | None = 0.05
        #: ``error.code`` of a rejected ``signalwire.connect``: the production value
        #: is UNCONFIRMED (reference §2.3), so clients must not depend on it.
        self.auth_error_code: int = AUTH_FAILED_CODE
        # Switches for unconfirmed behaviour: see the class docstring.
        self.redeliver_on_resume: bool = True
        self.action_end_on_call_end: ActionEnd = "before_ended"
        self.late_action_delay: float = 0.0
        self.record_url_location: RecordUrlLocation = "both"
        self.record_result_url: bool = True
        self.invalid_request_reply: InvalidRequestReply = "jsonrpc_error"
        #: Events a resume dropped instead of redelivering (``redeliver_on_resume``).
        self.dropped_on_resume: list[JSONObject] = []
        #: True: the violations this server records are expected (the test provokes
        #: them); the pytest fixtures then do not fail the test for them.
        self.expect_violations: bool = False
        #: Every frame received and sent, in order.
        self.journal: list[JournalEntry] = []
        #: Every call the server knows, by ``call_id``: offers and dial legs.
        self.calls: dict[str, FakeCall] = {}
        #: Scripts for the next ``calling.dial`` requests, consumed in order.
        self.dial_scripts: deque[DialScript] = deque()
        #: Scripts for the next ``messaging.send`` requests (``script_message``).
        self.message_scripts: deque[MessageScript] = deque()
        #: Conferences running, by name; a conference ends with its last participant.
        self.conferences: dict[str, FakeConference] = {}
        #: Ids of acknowledged events, in the order the acks arrived.
        self.acked_event_ids: list[str] = []
        #: Ids of responses that matched no event or server request (not fatal).
        self.unknown_acks: list[Any] = []
        #: ``authorization_state`` values clients sent in ``signalwire.connect``.
        self.authorization_states_seen: list[str] = []
        #: Replies of clients to the server's ``signalwire.ping``.
        self.ping_replies: list[JSONObject] = []
        #: Close code each finished connection got from its client, by connection
        #: number; None when the client sent no close frame (an abort, a crash).
        self.close_codes: dict[int, int | None] = {}
        #: How many events have been acknowledged (counted even without a journal).
        self.acked_count: int = 0
        #: False: keep no journal and no ``acked_event_ids`` (floods, soak runs), so
        #: the server's memory does not grow with the traffic.
        self.keep_journal: bool = True
        #: True: every event's inner params get ``EVENT_SEQ_KEY: n``, a number that
        #: grows by one per event queued, so a test can check on the client side
        #: that each event arrived exactly once and in the order it was produced.
        self.stamp_events: bool = False
        #: Called as ``on_connect(session, restored)`` after a connect is accepted
        #: and before its response is written: events queued here with
        #: ``session.queue_event`` go out in the same write as the response.
        self.on_connect: Callable[[FakeSession, bool], None] | None = None
        #: Connections aborted by ``drop_randomly`` so far.
        self.random_drops: int = 0
        self._event_seq = 0
        self._reads = 0
        self._chaos_rng: random.Random | None = None
        self._chaos_left = 0
        self._chaos_countdown = 0
        self._chaos_mean_gap = 1.0
        #: Everything a conformant client never does, one line each; a client test can
        #: end with ``assert server.violations == []``.
        self.violations: list[str] = []
        self._handlers: dict[str, Handler] = dict(DEFAULT_HANDLERS)
        self._sessions: dict[str, FakeSession] = {}
        self._open: dict[int, Connection] = {}
        self._connection_count = 0
        self._faults: dict[str, deque[_Fault]] = {}
        #: Server requests awaiting a reply, by id: (method, whether only a result
        #: is a right reply).
        self._server_requests: dict[str | int, tuple[str, bool]] = {}
        self._changed = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._port: int | None = None
        self._ca: trustme.CA | None = None
        self._server_ssl: ssl.SSLContext | None = None
        if tls:
            self._ca, self._server_ssl = _make_tls(host)

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.enter_async_context(self._serving())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Never swallows the body's exception: the group absorbs only its own
        # cancellation, which never reaches the body.
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        async with owned_task_group() as owner:
            await owner.start(self.serve)
            try:
                yield
            finally:
                owner.cancel_scope.cancel()

    async def serve(
        self, *, task_status: TaskStatus[FakeRelayServer] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled; ``task_status.started(self)`` once listening."""
        if self._task_group is not None:
            raise RuntimeError("this FakeRelayServer is already serving")
        listener = await anyio.create_tcp_listener(
            local_host=self.host, local_port=self.requested_port
        )
        try:
            async with listener, anyio.create_task_group() as tg:
                self._task_group = tg
                self._port = listener.extra(SocketAttribute.local_port)
                tg.start_soon(listener.serve, self._serve_stream, tg)
                logger.debug("fake RELAY server listening on %s", self.url)
                task_status.started(self)
        finally:
            self._task_group = None

    # -- addresses and credentials ---------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not serving yet")
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``, or ``wss://localhost:PORT`` (the certificate's name)."""
        host = "localhost" if self.tls and self.host in _LOOPBACK_NAMES else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"

    @property
    def ca(self) -> trustme.CA:
        """The test CA that signed the server certificate (``tls=True`` only)."""
        if self._ca is None:
            raise RuntimeError("the server was created without tls=True")
        return self._ca

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA, hostname checks on."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ca.configure_trust(context)
        return context

    def ca_pem_path(self, directory: str | os.PathLike[str]) -> Path:
        """Write the CA certificate into ``directory`` (for ``SIGNALWIRE_RELAY_CA_FILE``)."""
        path = Path(directory) / _CA_FILE_NAME
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def client_kwargs(self) -> dict[str, Any]:
        """``project``, ``token``, ``url`` (and ``ssl_context`` with TLS) for a client."""
        kwargs: dict[str, Any] = {"project": self.project, "token": self.token, "url": self.url}
        if self.tls:
            kwargs["ssl_context"] = self.client_ssl_context()
        return kwargs

    # -- observing -------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many WebSocket connections were accepted so far."""
        return self._connection_count

    @property
    def active_connections(self) -> int:
        """How many WebSocket connections are open now."""
        return len(self._open)

    @property
    def sessions(self) -> list[FakeSession]:
        """Sessions a client can still resume, oldest first."""
        return list(self._sessions.values())

    def received(self, method: str | None = None) -> list[JSONObject]:
        """Request frames received from clients (with that ``method``), in order."""
        return [
            entry.frame
            for entry in self.journal
            if entry.direction == "in"
            and isinstance(entry.frame, dict)
            and "method" in entry.frame
            and (method is None or entry.frame["method"] == method)
        ]

    def sent_events(self, event_type: str | None = None) -> list[JSONObject]:
        """``signalwire.event`` frames written to clients, re-deliveries included."""
        return [
            entry.frame
            for entry in self.journal
            if entry.direction == "out"
            and isinstance(entry.frame, dict)
            and entry.frame.get("method") == METHOD_SIGNALWIRE_EVENT
            and (event_type is None or entry.frame["params"]["event_type"] == event_type)
        ]

    def subscribed_contexts(self, session: FakeSession | None = None) -> set[str]:
        """Contexts of one session, or of every resumable session when None."""
        sessions = self.sessions if session is None else [session]
        return {context for s in sessions for context in s.contexts}

    def unacked_events(self, session: FakeSession | None = None) -> list[JSONObject]:
        """Unacknowledged events of one session, or of every resumable session."""
        sessions = self.sessions if session is None else [session]
        return [frame for s in sessions for frame in s.unacked_events()]

    def notify(self) -> None:
        """Wake ``wait_until`` waiters: call after changing state they may watch."""
        self._changed.set()
        self._changed = anyio.Event()

    # The waits take a ``timeout`` (ASYNC109) on purpose: a test helper that blocks
    # forever by default turns a failing test into a hung run.
    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109, RUF100
        what: str = "a condition",
    ) -> None:
        """Wait until ``predicate()`` is true.

        Re-checked whenever the server's state changes, and every 10 ms: predicates
        often read the client's state too (``client.active_calls == 0``), which can
        change after the server's last change (a handler returning once its last
        response arrived).
        """
        await self._wait_for(lambda: True if predicate() else None, timeout, what)

    async def _wait_for(self, find: Callable[[], _T | None], seconds: float, what: str) -> _T:
        try:
            with anyio.fail_after(seconds):
                while (found := find()) is None:
                    with anyio.move_on_after(_RECHECK_INTERVAL):
                        await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"timed out after {seconds:g} s waiting for {what}") from None
        return found

    async def wait_for_request(
        self,
        method: str,
        predicate: Callable[[JSONObject], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109, RUF100
    ) -> JSONObject:
        """The first request with ``method`` (and matching ``predicate``), past or future."""

        def find() -> JSONObject | None:
            frames = self.received(method)
            return next((f for f in frames if predicate is None or predicate(f)), None)

        return await self._wait_for(find, timeout, f"a {method} request")

    async def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109, RUF100
        """Wait until ``count`` connections have been accepted in total."""
        await self.wait_until(
            lambda: self._connection_count >= count,
            timeout=timeout,
            what=f"{count} connection(s)",
        )

    async def wait_for_session(self, timeout: float = 5.0) -> FakeSession:  # noqa: ASYNC109, RUF100
        """The session of the newest authenticated open connection, once there is one."""

        def find() -> FakeSession | None:
            return next(
                (c.session for c in reversed(self._open.values()) if c.session is not None),
                None,
            )

        return await self._wait_for(find, timeout, "an authenticated connection")

    # -- driving ---------------------------------------------------------------------

    def set_handler(self, method: str, handler: Handler) -> None:
        """Replace what this server does for ``method`` (see ``_calling.py``)."""
        if method == METHOD_SIGNALWIRE_CONNECT:
            raise ValueError("signalwire.connect is part of the session layer, not a handler")
        self._handlers[method] = handler

    def forget_sessions(self) -> None:
        """Forget every session: the next connect starts a new one, whatever it sends."""
        self._sessions.clear()

    async def offer_call(
        self,
        context: str = "default",
        *,
        from_number: str = "+15551110000",
        to_number: str = "+15552220000",
        call_id: str | None = None,
        node_id: str | None = None,
    ) -> FakeCall:
        """Offer an inbound call (``calling.call.receive``) to a session on ``context``.

        Prefers a connected session; a disconnected one gets the offer on resume.
        Raises LookupError if no session is subscribed to ``context``.
        """
        session = self._subscriber(context)
        device = {"type": "phone", "params": {"from_number": from_number, "to_number": to_number}}
        call = FakeCall.register(
            self,
            session,
            direction="inbound",
            device=device,
            call_id=call_id,
            node_id=node_id,
            context=context,
        )
        extra = {"project_id": self.project, "context": context, "segment_id": str(uuid.uuid4())}
        await call.set_state(CALL_STATE_CREATED, event_type=EVENT_CALL_RECEIVE, extra=extra)
        return call

    async def offer_message(
        self,
        context: str = "default",
        *,
        body: str = "",
        media: Iterable[str] = (),
        from_number: str = "+15551110000",
        to_number: str = "+15552220000",
        tags: Iterable[str] = (),
    ) -> JSONObject:
        """Deliver an inbound SMS/MMS (``messaging.receive``) to a session on ``context``.

        Returns the event's params. Raises LookupError if no session is subscribed.
        """
        media = list(media)
        message: JSONObject = {
            "message_id": str(uuid.uuid4()),
            "context": context,
            "direction": "inbound",
            "from_number": from_number,
            "to_number": to_number,
            "body": body,
            "media": media,
            "segments": 1 + len(media),
            "message_state": MESSAGE_STATE_RECEIVED,
            "tags": list(tags),
        }
        await self._subscriber(context).emit(EVENT_MESSAGING_RECEIVE, message)
        return message

    def _subscriber(self, context: str) -> FakeSession:
        candidates = [s for s in reversed(self._sessions.values()) if context in s.contexts]
        if not candidates:
            raise LookupError(f"no session is subscribed to context {context!r}")
        return next((s for s in candidates if s.connection is not None), candidates[0])

    def script_dial(self, outcomes: Iterable[str] = ("answer",), answer_delay: float = 0.0) -> None:
        """Script the legs of the next ``calling.dial``, in device order across groups.

        Outcomes: ``answer``, ``busy``, ``no_answer``, ``decline``, ``error``; legs
        beyond the list answer. ``answer_delay`` is how long each group rings.
        """
        script = DialScript(tuple(outcomes), answer_delay)
        unknown = set(script.outcomes) - set(DIAL_OUTCOMES)
        if unknown:
            known = ", ".join(DIAL_OUTCOMES)
            raise ValueError(f"unknown dial outcome(s) {sorted(unknown)}; known: {known}")
        self.dial_scripts.append(script)

    async def run_after(self, delay: float, follow_up: FollowUp) -> None:
        """Run ``follow_up`` now (delay <= 0) or in the background after ``delay`` seconds.

        Background follow-ups belong to the server, not to a connection: a play that
        finishes while the client is away still produces its event, queued for resume.
        """
        if delay <= 0:
            await follow_up()
            return

        async def later() -> None:
            await anyio.sleep(delay)
            await follow_up()

        if self._task_group is None:
            raise RuntimeError("the server is not serving")
        self._task_group.start_soon(later)

    # -- fault injection -------------------------------------------------------------

    async def drop_connection(self, *, connection: int | None = None) -> None:
        """Abort the socket without a close frame (a crash, a dead network)."""
        target = self._target(connection)
        await target.abort()
        await target.done.wait()

    async def close_connection(
        self, code: int = 1000, reason: str = "", *, connection: int | None = None
    ) -> None:
        """Close the WebSocket politely with ``code``."""
        target = self._target(connection)
        await target.close(code, reason)
        await target.done.wait()

    async def send_disconnect(
        self, restart: bool = False, *, connection: int | None = None
    ) -> None:
        """Send ``signalwire.disconnect``; close the socket ``disconnect_close_delay`` later.

        With ``restart`` the session is forgotten, as the reference says a restart
        means a fresh session on the next connect.
        """
        target = self._target(connection)
        if restart and target.session is not None:
            self._sessions.pop(target.session.protocol, None)
        await self._send_request(target, METHOD_SIGNALWIRE_DISCONNECT, {"restart": restart})
        delay = self.disconnect_close_delay
        if delay is not None:

            async def close_later() -> None:
                await anyio.sleep(delay)
                await target.close(1000, "")

            target.start_soon(close_later)

    async def send_raw(self, data: str | bytes, *, connection: int | None = None) -> None:
        """Send a text (str) or binary (bytes) frame exactly as given.

        A request in it (a JSON object with ``method`` and an ``id``) expects a reply
        like any server request: a result, or an error if no client must serve it
        (a method other than ``signalwire.event``/``ping``/``disconnect``, params
        that are not an object); other replies are recorded in ``violations``.
        """
        frame = parse_frame(data)
        if isinstance(frame, dict) and "method" in frame:
            key = request_key(frame.get("id"))
            method = frame["method"]
            if key is not None:
                served = method in _SERVED_BY_CLIENTS and isinstance(frame.get("params"), dict)
                self._server_requests[key] = (str(method), served)
        await self._target(connection).send_raw(data)

    def fail_next(
        self,
        method: str,
        code: str | int = "500",
        message: str = "Internal error",
        *,
        jsonrpc_error: bool = False,
    ) -> None:
        """Refuse the next ``method`` request: ``result {code, message}`` or a JSON-RPC error.

        The request has no other effect (no handler runs, no events).
        """
        key, payload = (
            ("error", {"code": int(code), "message": message})
            if jsonrpc_error
            else ("result", {"code": str(code), "message": message})
        )

        async def fail(conn: Connection, frame: JSONObject) -> None:
            await conn.send(response(frame, **{key: payload}))

        self._add_fault(method, fail)

    def delay_next(self, method: str, seconds: float) -> None:
        """Handle the next ``method`` request ``seconds`` late; other frames go on meanwhile."""

        async def delay(conn: Connection, frame: JSONObject) -> None:
            async def answer_later() -> None:
                await anyio.sleep(seconds)
                await self._answer(conn, frame)

            conn.start_soon(answer_later)

        self._add_fault(method, delay)

    def withhold_next(self, method: str) -> None:
        """Swallow the next ``method`` request: no answer, no effect, ever."""

        async def withhold(conn: Connection, frame: JSONObject) -> None:
            logger.debug("connection %d: withholding %s", conn.number, frame.get("id"))

        self._add_fault(method, withhold)

    def drop_next(self, method: str, *, after_effect: bool = False) -> None:
        """Drop the connection at the next ``method`` request.

        ``after_effect=False``: the link dies as the request arrives; it never takes
        effect. ``after_effect=True``: the request takes effect (its events follow,
        queued for the resumed session) but the link dies before the response is
        written. Either way the client sees a request in flight at a drop.
        """

        async def drop(conn: Connection, frame: JSONObject) -> None:
            if after_effect:
                await self._answer(conn, frame, lose_response=True)
            else:
                logger.debug("connection %d: dropping at %s", conn.number, method)
                await conn.abort()

        self._add_fault(method, drop)

    def drop_randomly(self, count: int, *, mean_gap: float, seed: int) -> None:
        """Abort the live connection at ``count`` random points of the traffic.

        Every frame read or written (on any connection) advances a countdown; when it
        reaches zero the connection is aborted at that frame: an incoming frame is
        lost unprocessed, an outgoing batch is cut there. Gaps are drawn uniformly
        from 1 to ``2 * mean_gap - 1`` frames by ``random.Random(seed)``, so a run
        is reproducible up to scheduling. ``random_drops`` counts the drops.
        """
        if count < 0 or mean_gap < 1:
            raise ValueError("count must be >= 0 and mean_gap >= 1")
        self._chaos_rng = random.Random(seed)
        self._chaos_left = count
        self._chaos_mean_gap = mean_gap
        self._chaos_countdown = self._chaos_gap()

    def drop_after(self, frames: int) -> None:
        """Abort the live connection at the ``frames``-th frame read or written from now.

        The deterministic cousin of ``drop_randomly`` (and it replaces any
        pending random drops): ``drop_after(1)`` drops at the very next frame.
        """
        if frames < 1:
            raise ValueError("frames must be >= 1")
        self._chaos_rng = None
        self._chaos_left = 1
        self._chaos_countdown = frames

    def _chaos_gap(self) -> int:
        if self._chaos_rng is None:
            return 0
        return self._chaos_rng.randint(1, max(1, round(2 * self._chaos_mean_gap) - 1))

    def _chaos_tick(self) -> bool:
        """One frame passed; True when the connection must be dropped here."""
        if self._chaos_left <= 0:
            return False
        self._chaos_countdown -= 1
        if self._chaos_countdown > 0:
            return False
        self._chaos_left -= 1
        self.random_drops += 1
        self._chaos_countdown = self._chaos_gap()
        return True

    def _stamp(self) -> int | None:
        if not self.stamp_events:
            return None
        self._event_seq += 1
        return self._event_seq

    def stop_reading(self) -> None:
        """Half-open every open connection: nothing is read, answered or sent; none closes.

        Events produced meanwhile stay unacknowledged on the session and are
        delivered when the client resumes it on a new connection. New connections
        are served normally.
        """
        for conn in self._open.values():
            conn.pause()

    def resume_reading(self) -> None:
        """Undo ``stop_reading``: frames that arrived meanwhile are processed now."""
        for conn in self._open.values():
            conn.resume()

    def _add_fault(self, method: str, fault: _Fault) -> None:
        self._faults.setdefault(method, deque()).append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        faults = self._faults.get(method)
        return faults.popleft() if faults else None

    def _target(self, number: int | None) -> Connection:
        if number is None:
            if not self._open:
                raise LookupError("no client is connected")
            return self._open[max(self._open)]
        try:
            return self._open[number]
        except KeyError:
            raise LookupError(f"connection {number} is not open") from None

    # -- connections -----------------------------------------------------------------

    async def _serve_stream(self, tcp: anyio.abc.SocketStream) -> None:
        stream = await self._secure(tcp)
        if stream is None:
            return
        try:
            ws = await accept_websocket(stream)
        except (ConnectionLost, ProtocolError) as exc:
            logger.debug("WebSocket handshake failed: %s", exc)
            return
        self._connection_count += 1
        conn = Connection(self._connection_count, ws, self._record, self._chaos_tick)
        self._open[conn.number] = conn
        self.notify()
        logger.debug("connection %d opened", conn.number)
        try:
            with conn.cancel_scope:
                async with anyio.create_task_group() as tg:
                    conn.task_group = tg
                    await self._read_loop(conn)
                    tg.cancel_scope.cancel()
        finally:
            del self._open[conn.number]
            self.close_codes[conn.number] = ws.peer_close_code
            if conn.session is not None:
                conn.session._detach(conn)
            await ws.abort()
            conn.done.set()
            self.notify()
            logger.debug("connection %d closed (code %s)", conn.number, ws.close_code)

    async def _secure(self, tcp: anyio.abc.SocketStream) -> anyio.abc.ByteStream | None:
        if self._server_ssl is None:
            return tcp
        try:
            return await TLSStream.wrap(
                tcp, server_side=True, ssl_context=self._server_ssl, standard_compatible=False
            )
        except BaseException as exc:
            await anyio.aclose_forcefully(tcp)
            if isinstance(exc, OSError | anyio.BrokenResourceError | anyio.EndOfStream):
                logger.debug("TLS handshake failed: %r", exc)
                return None
            raise

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

    def _record(self, direction: Direction, connection: int, frame: Frame, read: int = 0) -> None:
        if self.keep_journal:
            now = anyio.current_time()
            self.journal.append(JournalEntry(direction, connection, frame, now, read))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s #%d %s", direction, connection, describe(frame))
        self.notify()

    def _violation(self, conn: Connection, problem: str) -> None:
        message = f"connection {conn.number}: {problem}"
        logger.warning("client broke the protocol: %s", message)
        self.violations.append(message)

    # -- frames from clients ---------------------------------------------------------

    async def _on_frame(self, conn: Connection, raw: str | bytes, read: int = 0) -> None:
        if conn.dropped:
            return
        frame = parse_frame(raw)
        self._record("in", conn.number, frame, read)
        if self._chaos_tick():
            logger.debug("connection %d: random drop after an incoming frame", conn.number)
            await conn.abort()  # the frame is lost with the link: it has no effect
            return
        if not isinstance(frame, dict):
            self._violation(conn, "sent a frame that is not a JSON object")
        elif "method" in frame:
            await self._on_request(conn, frame)
        elif "id" in frame and ("result" in frame or "error" in frame):
            self._on_response(conn, frame)
        else:
            self._violation(conn, "sent a frame that is neither a request nor a response")

    async def _on_request(self, conn: Connection, frame: JSONObject) -> None:
        method = frame["method"]
        if "id" not in frame:
            self._violation(conn, f"sent {method!r} without an id")
        if not isinstance(method, str) or not isinstance(frame.get("params", {}), dict):
            self._violation(conn, "sent a request with a bad method or params")
            await conn.send(response(frame, error=error_body(-32600, "Invalid Request")))
            return
        if method != METHOD_SIGNALWIRE_CONNECT and conn.session is None:
            self._violation(conn, f"sent {method} before authenticating")
            error = error_body(NOT_AUTHENTICATED_CODE, NOT_AUTHENTICATED_MESSAGE)
            await conn.send(response(frame, error=error))
            return
        fault = self._take_fault(method)
        if fault is not None:
            await fault(conn, frame)
        else:
            await self._answer(conn, frame)

    async def _answer(
        self, conn: Connection, frame: JSONObject, *, lose_response: bool = False
    ) -> None:
        method: str = frame["method"]
        params: JSONObject = frame.get("params", {})
        if method == METHOD_SIGNALWIRE_CONNECT:
            await self._connect(conn, frame, params)
            return
        session = conn.session
        if session is None:  # checked before; guards delayed requests all the same
            return
        self._note_call_request(frame, params)
        handler = self._handlers.get(method)
        ctx = HandlerContext(self, session, conn.number, frame)
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
            self._violation(conn, f"sent unknown method {method!r}")
        else:
            self._violation(conn, f"sent an invalid {method}: {exc.detail}")
        reply = choice("invalid_request_reply", self.invalid_request_reply, INVALID_REQUEST_REPLIES)
        key, body = refusal(exc, reply)
        await conn.send(response(frame, **{key: body}))

    def _note_call_request(self, frame: JSONObject, params: JSONObject) -> None:
        call_id = params.get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is not None:
            call.requests.append(frame)

    def _on_response(self, conn: Connection, frame: JSONObject) -> None:
        response_id = frame["id"]
        key = request_key(response_id)
        request = self._server_requests.pop(key, None) if key is not None else None
        if request is not None:
            # A reply to a server request (a ping, a disconnect, a raw frame). An error
            # is the right answer to one no client must serve: an unknown method
            # (-32601, reference §2.6), bad params (-32602).
            method, must_succeed = request
            if "error" in frame and must_succeed:
                self._violation(conn, f"answered {method} {response_id!r} with an error")
            if method == METHOD_SIGNALWIRE_PING:
                self.ping_replies.append(frame)
            return
        if "error" in frame:
            self._violation(conn, f"answered {response_id!r} with an error")
        session = conn.session
        if session is not None and isinstance(key, str) and session._ack(key):
            self.acked_count += 1
            if self.keep_journal:
                self.acked_event_ids.append(key)
            self.notify()
        elif session is not None and isinstance(key, str) and key in session._dropped:
            pass  # a late ack of an event a resume dropped: nothing left to do
        else:
            self.unknown_acks.append(response_id)
            self._violation(conn, f"acknowledged unknown or already acked id {response_id!r}")

    # -- session layer ---------------------------------------------------------------

    async def _connect(self, conn: Connection, frame: JSONObject, params: JSONObject) -> None:
        if conn.session is not None:
            error = error_body(-32600, "Invalid Request: already authenticated")
            await conn.send(response(frame, error=error))
            return
        self._check_connect_params(conn, params)
        if not self._credentials_ok(conn, params.get("authentication")):
            logger.info("connection %d: authentication failed", conn.number)
            data = {"signalwire_error_code": AUTH_FAILED_ERROR_CODE}
            error = error_body(self.auth_error_code, AUTH_FAILED_MESSAGE, data)
            await conn.send(response(frame, error=error))
            return
        blob = params.get("authorization_state")
        if isinstance(blob, str):
            self.authorization_states_seen.append(blob)
        session, restored = self._session_for(conn, params)
        async with conn.lock:
            previous = session._attach(conn)
            if previous is not None:
                logger.debug("connection %d takes session over", conn.number)
                await previous.abort()
            if restored and not self.redeliver_on_resume:
                self.dropped_on_resume.extend(session._drop_unacked())
            session.authorization_state = _authorization_blob()
            state = {"authorization_state": session.authorization_state}
            session.queue_event(EVENT_AUTHORIZATION_STATE, state)
            if self.on_connect is not None:
                self.on_connect(session, restored)
            result = self._connect_result(session, restored)
            # One write: the response, then every unacked event (old ones first, the
            # new authorization state last), before any other task may send.
            await conn.write(response(frame, result=result) + session.unacked_events())
        if self.ping_interval is not None:
            conn.start_soon(functools.partial(self._ping_loop, conn))
        self.notify()

    def _check_connect_params(self, conn: Connection, params: JSONObject) -> None:
        if not isinstance(params.get("version"), dict):
            self._violation(conn, "connect without a version object")
        agent = params.get("agent")
        if not isinstance(agent, str) or not agent:
            self._violation(conn, "connect without an agent string")
        if params.get("event_acks") is not True:
            self._violation(conn, "connect without event_acks: true")

    def _credentials_ok(self, conn: Connection, auth: object) -> bool:
        if not isinstance(auth, dict):
            return False
        has_jwt = "jwt_token" in auth
        if has_jwt and ("project" in auth or "token" in auth):
            self._violation(conn, "connect with both a JWT and project/token")
        if has_jwt:
            return auth["jwt_token"] in self.jwt_tokens
        return auth.get("project") == self.project and auth.get("token") == self.token

    def _session_for(self, conn: Connection, params: JSONObject) -> tuple[FakeSession, bool]:
        """The session a connect resumes, or a new one; and whether it was resumed."""
        contexts = params.get("contexts", [])
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            self._violation(conn, "connect with contexts that are not a list of strings")
            contexts = []
        protocol = params.get("protocol")
        session = self._sessions.get(protocol) if isinstance(protocol, str) else None
        restored = session is not None
        if session is None:
            session = FakeSession(
                protocol=f"signalwire_{uuid.uuid4().hex}",
                sessionid=str(uuid.uuid4()),
                identity=f"{self.project}@relay",
                stamp=self._stamp,
            )
            self._sessions[session.protocol] = session
        session.subscribe(contexts)
        return session, restored

    def _connect_result(self, session: FakeSession, restored: bool) -> JSONObject:
        return {
            "protocol": session.protocol,
            "identity": session.identity,
            "sessionid": session.sessionid,
            "session_restored": restored,
            "nodeid": self.node_id,
            "authorization": {},
        }

    async def _ping_loop(self, conn: Connection) -> None:
        while (interval := self.ping_interval) is not None:
            await anyio.sleep(interval)
            await self._send_request(conn, METHOD_SIGNALWIRE_PING, {})

    async def _send_request(self, conn: Connection, method: str, params: JSONObject) -> None:
        request_id = str(uuid.uuid4())
        self._server_requests[request_id] = (method, True)
        await conn.send([{"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}])


# -- helpers -----------------------------------------------------------------------------


def _authorization_blob() -> str:
    """A fresh ``"<encrypted b64>:<tag b64>"``, shaped like RELAY's."""
    encrypted = base64.b64encode(os.urandom(24)).decode()
    tag = base64.b64encode(os.urandom(16)).decode()
    return f"{encrypted}:{tag}"


def _make_tls(host: str) -> tuple[trustme.CA, ssl.SSLContext]:
    try:
        import trustme
    except ImportError as exc:  # an optional extra
        raise ImportError(
            "FakeRelayServer(tls=True) needs trustme: pip install 'relay-anyio[testing]'"
        ) from exc
    ca = trustme.CA()
    names = dict.fromkeys(("localhost", "127.0.0.1", host))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return ca, context
