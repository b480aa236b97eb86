"""A RELAY server double over a real WebSocket on loopback: sessions, acks, faults.

Tests of a RELAY client need more than canned frames: reconnects, session resume with
re-delivery of unacknowledged events, half-open links and malformed frames only show
up against a peer that keeps state across connections. This module is that peer. It
speaks the wire protocol of ``shared/relay-protocol.md`` on an ephemeral port, keeps
a journal of every frame so tests can assert on what the client sent, and offers one
primitive per failure a real network or server can produce.

Layout: ``FakeRelayServer`` is the facade a test holds, and owns the switches, the
records (journal, violations...) and the calls. Underneath, each concept has its
module: ``_listener`` (the socket, TLS, the WebSocket handshake), ``_endpoint`` (the
session layer: JSON-RPC per connection, acks, server requests), ``_connect``
(authentication and resume), ``_faults`` (fault injection; also the API mixin
``FaultInjection``), ``_observing`` (the journal's views and the waits, mixin
``Observing``), ``_calls`` and the ``_handlers*`` modules (what each RELAY method
*does*, as a registry of handlers that see the server through ``CallHost``).
Everything is plain anyio, so the same server runs under trio and asyncio.

Ordering: the frames of one connection are read and answered strictly in order by a
single reader task (as RELAY processes a connection), so the responses and events a
test sees do not depend on scheduler whims. Only delayed work (``delay_next``,
``play_duration``...) runs in other tasks.
"""

from __future__ import annotations

import logging
import os
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from .._constants import (
    CALL_STATE_CREATED,
    EVENT_CALL_RECEIVE,
    EVENT_MESSAGING_RECEIVE,
    MESSAGE_STATE_RECEIVED,
    METHOD_SIGNALWIRE_CONNECT,
)
from .._scopes import owned_task_group
from ._bridges import Bridges
from ._calls import FakeCall, FollowUp
from ._conferences import FakeConference
from ._connect import AUTH_FAILED_CODE, AUTH_FAILED_ERROR_CODE, AUTH_FAILED_MESSAGE
from ._context import Handler
from ._devices import announced, sip_device
from ._endpoint import NOT_AUTHENTICATED_CODE, NOT_AUTHENTICATED_MESSAGE, Endpoint
from ._faults import FaultInjection, Faults
from ._handlers import DEFAULT_HANDLERS
from ._listener import Listener
from ._observing import Observing
from ._scripts import DIAL_OUTCOMES, DialScript, MessageScript
from ._session import FakeSession
from ._switches import (
    ActionEnd,
    DetectEnd,
    InvalidRequestReply,
    RecordUrlLocation,
    SipHeaderShape,
)
from ._tasks import TaskQueue
from ._wire import EVENT_SEQ_KEY, JournalEntry, JSONObject

if TYPE_CHECKING:
    import trustme

__all__ = [
    "AUTH_FAILED_CODE",
    "AUTH_FAILED_ERROR_CODE",
    "AUTH_FAILED_MESSAGE",
    "NOT_AUTHENTICATED_CODE",
    "NOT_AUTHENTICATED_MESSAGE",
    "FakeRelayServer",
]

logger = logging.getLogger("relay_anyio.testing")

_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "::1")
_CA_FILE_NAME: Final = "fake-relay-ca.pem"


class FakeRelayServer(Observing, FaultInjection, TaskQueue, Bridges):
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
    * Tasks (§17.1): ``task_event_shape``, ``task_unrouted``, ``task_error_body``
      and the fault knob ``task_fault``; see ``TaskQueue`` (``_tasks``), which also
      answers ``send_task``'s REST request on this server's port.
    * ``sip_header_shape`` (§17.3), ``"list"``: a SIP device in the server's events
      (``offer_sip_call``, dialled SIP legs, bridge peers) carries its headers as
      ``[{"name", "value"}]``. ``"object"``: as ``{"X-Name": "value"}``.
      ``"omitted"``: not at all. Read when the call is created.
    * ``machine_not_ready`` (§17.2), ``False``: an answering machine
      (``script_answering_machine``) reports ``MACHINE``, then ``READY`` when its
      greeting ends. ``True``: a ``NOT_READY`` halfway through the greeting too.
    * ``detect_end`` (§12.8, §17.2), ``"silent"``: after its last result a detector
      sends nothing more. ``"finished_event"``: it reports
      ``detect.params.event`` ``"finished"``. ``"finished_state"``: a top-level
      ``state`` ``"finished"``.
    * Bridges (§12.4, §17.4): ``bridge_peer_events``, ``bridge_unconnected_end``
      and ``bridge_failure_reason``; see ``Bridges`` (``_bridges``).

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
        self.sip_header_shape: SipHeaderShape = "list"
        self.machine_not_ready: bool = False
        self.detect_end: DetectEnd = "silent"
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
        #: Everything a conformant client never does, one line each; a client test can
        #: end with ``assert server.violations == []``.
        self.violations: list[str] = []
        self._init_tasks()  # tasks: the REST endpoint, its switches and records
        self._faults = Faults()
        self._endpoint = Endpoint(self, dict(DEFAULT_HANDLERS), self._faults)
        self._listener = Listener(tls=tls, host=host)
        self._changed = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None

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
        listening = self._listener.listening(
            self.host, self.requested_port, self._endpoint.serve, self._serve_rest
        )
        try:
            async with listening as tg:
                self._task_group = tg
                logger.debug("fake RELAY server listening on %s", self.url)
                task_status.started(self)
        finally:
            self._task_group = None

    # -- addresses and credentials ---------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (a free one unless ``port`` was given)."""
        port = self._listener.port
        if port is None:
            raise RuntimeError("the server is not serving yet")
        return port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``, or ``wss://localhost:PORT`` (the certificate's name)."""
        host = "localhost" if self.tls and self.host in _LOOPBACK_NAMES else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API on the same port (``send_task(..., url=...)``)."""
        return self.url.replace("ws", "http", 1)

    @property
    def ca(self) -> trustme.CA:
        """The test CA that signed the server certificate (``tls=True`` only)."""
        if self._listener.ca is None:
            raise RuntimeError("the server was created without tls=True")
        return self._listener.ca

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

    # -- driving ---------------------------------------------------------------------

    def set_handler(self, method: str, handler: Handler) -> None:
        """Replace what this server does for ``method`` (see ``_handlers.py``)."""
        if method == METHOD_SIGNALWIRE_CONNECT:
            raise ValueError("signalwire.connect is part of the session layer, not a handler")
        self._endpoint.handlers[method] = handler

    def forget_sessions(self) -> None:
        """Forget every session: the next connect starts a new one, whatever it sends."""
        self._endpoint.registry.sessions.clear()

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
        device = {"type": "phone", "params": {"from_number": from_number, "to_number": to_number}}
        return await self._offer(context, device, call_id, node_id)

    async def offer_sip_call(
        self,
        context: str = "default",
        *,
        from_uri: str = "sip:alice@example.com",
        to_uri: str = "sip:support@example.sip.signalwire.com",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        call_id: str | None = None,
        node_id: str | None = None,
    ) -> FakeCall:
        """Offer an inbound SIP call, with custom ``headers`` (``{"X-Account": "42"}``).

        The device is ``{"type": "sip", "params": {"from", "to", "headers"}}``, its
        headers in the shape ``sip_header_shape`` says. Otherwise like ``offer_call``.
        """
        device = announced(sip_device(from_uri, to_uri, headers), self.sip_header_shape)
        return await self._offer(context, device, call_id, node_id)

    async def _offer(
        self, context: str, device: JSONObject, call_id: str | None, node_id: str | None
    ) -> FakeCall:
        session = self._subscriber(context)
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

    def _task_sessions(self) -> Iterable[FakeSession]:
        return self._endpoint.registry.sessions.values()

    def _subscriber(self, context: str) -> FakeSession:
        candidates = [
            s for s in reversed(self._endpoint.registry.sessions.values()) if context in s.contexts
        ]
        if not candidates:
            raise LookupError(f"no session is subscribed to context {context!r}")
        return next((s for s in candidates if s.connection is not None), candidates[0])

    def script_dial(
        self,
        outcomes: Iterable[str] = ("answer",),
        answer_delay: float = 0.0,
        *,
        early_states: bool = False,
    ) -> None:
        """Script the legs of the next ``calling.dial``, in device order across groups.

        Outcomes: ``answer``, ``busy``, ``no_answer``, ``decline``, ``error``; legs
        beyond the list answer. ``answer_delay`` is how long each group rings.
        ``early_states``: the first group's ``created``/``ringing`` overtake the response.
        """
        script = DialScript(tuple(outcomes), answer_delay, early_states)
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
