"""Tasks in the fake server: the REST endpoint ``send_task`` posts to, and the queue.

RELAY takes a task over HTTPS (``POST /api/relay/rest/tasks``, basic auth with the
project and token, ``{"context": ..., "message": {...}}``, answered ``204``) and gives
it to **one** session subscribed to the context, as a ``queuing.relay.tasks`` event
(reference §17.1). The fake answers that request on the port its WebSocket listens
on, as RELAY serves both from one host: the listener reads a connection's request
line and hands a request for ``/api/...`` here instead of to the WebSocket handshake,
with the bytes it read (``_listener``).

The HTTP side is deliberately small: one request per connection (answered with
``Connection: close``), a bounded head and body, ``Content-Length`` required. Each
task goes to the subscribed sessions in turn (a connected one first; a detached one
gets it when it resumes). Switches for what the reference leaves unconfirmed, and a
fault knob, are attributes of ``FakeRelayServer`` (see ``TaskQueue``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable
from typing import Final, Literal

import anyio
import anyio.abc
import attrs

from .._constants import EVENT_TASK, TASKS_PATH
from ._session import FakeSession
from ._switches import choice
from ._wire import JSONObject

__all__ = [
    "TASK_ERROR_BODIES",
    "TASK_EVENT_SHAPES",
    "TASK_UNROUTED_CHOICES",
    "FakeTask",
    "TaskErrorBody",
    "TaskEventShape",
    "TaskQueue",
    "TaskUnrouted",
]

logger = logging.getLogger("relay_anyio.testing")

#: Where a task event's fields sit: next to ``event_type`` (as SignalWire's TS SDK
#: types them) or under ``params.params`` like a calling event's (§17.1, unconfirmed).
TaskEventShape = Literal["flat", "nested"]
TASK_EVENT_SHAPES: Final[tuple[TaskEventShape, ...]] = ("flat", "nested")

#: A task for a context no session listens on: accepted and lost, accepted and kept
#: until a session subscribes, or refused with 404 (unconfirmed).
TaskUnrouted = Literal["drop", "hold", "reject"]
TASK_UNROUTED_CHOICES: Final[tuple[TaskUnrouted, ...]] = ("drop", "hold", "reject")

#: What an error response's body is (unconfirmed): JSON, plain text, or nothing.
TaskErrorBody = Literal["json", "text", "empty"]
TASK_ERROR_BODIES: Final[tuple[TaskErrorBody, ...]] = ("json", "text", "empty")

#: What happened to a task: given to a session, lost, waiting for a subscriber, refused.
TaskOutcome = Literal["delivered", "dropped", "held", "rejected"]

_UNROUTED_OUTCOMES: Final[dict[TaskUnrouted, TaskOutcome]] = {
    "drop": "dropped",
    "hold": "held",
    "reject": "rejected",
}
_HEAD_LIMIT: Final = 16 * 1024
_BODY_LIMIT: Final = 1024 * 1024
_REASONS: Final = {
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


@attrs.define(eq=False)
class FakeTask:
    """One task the fake server took (over REST or ``offer_task``), and its fate."""

    context: str
    message: JSONObject
    #: ``delivered``, ``dropped``, ``held`` (until a session subscribes), ``rejected``.
    outcome: TaskOutcome
    #: The session it was given to (its ``protocol``); None while not delivered.
    session: str | None = None
    #: The ``signalwire.event`` frame that carried it, once delivered.
    frame: JSONObject | None = attrs.field(default=None, repr=False)


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


class _BadRequest(Exception):
    """A request the endpoint cannot parse: answered ``status`` with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)  # args rebuild it (pickling)
        self.status = status
        self.reason = reason


@attrs.frozen
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def _read_request(stream: anyio.abc.ByteStream, data: bytes) -> _Request:
    """One HTTP/1.1 request (head already started in ``data``); bounded in size."""
    while b"\r\n\r\n" not in data:
        if len(data) > _HEAD_LIMIT:
            raise _BadRequest(400, "request head too large")
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, f"bad request line {line[:80]!r}")
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name.strip():
            raise _BadRequest(400, f"bad header line {field[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(411, "a Content-Length body is expected, not Transfer-Encoding")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "Content-Length is not a number") from None
    if length > _BODY_LIMIT:
        raise _BadRequest(413, f"body of {length} bytes (limit {_BODY_LIMIT})")
    while len(body) < length:
        body += await stream.receive()
    return _Request(parts[0], parts[1], headers, body[:length])


class TaskQueue:
    """``FakeRelayServer``'s tasks: the REST endpoint, ``offer_task`` and the records.

    Switches and knobs (plain attributes, read when a task arrives):

    * ``task_event_shape`` (§17.1), ``"flat"``: the task's ``context``, ``message``,
      ``project_id``, ``space_id`` sit next to ``event_type`` in the event's params,
      as SignalWire's TS SDK types them. ``"nested"``: under ``params.params``, like a
      calling event's.
    * ``task_unrouted`` (unconfirmed), ``"drop"``: a task for a context no session
      is subscribed to is answered 204 and lost. ``"hold"``: answered 204 and given
      to the first session that subscribes to the context. ``"reject"``: answered
      404 (with an error body).
    * ``task_error_body`` (unconfirmed), ``"json"``: error responses carry
      ``{"errors": [{"code": ..., "message": ...}]}``; ``"text"``: a line of text;
      ``"empty"``: no body.
    * ``task_fault``, ``None``: a task request is handled as above. An HTTP status
      (e.g. ``500``): every task request is answered with it (after the credentials
      check passes or not: the fault wins) and nothing is delivered. ``"hang"``: the
      request is read and never answered.
    """

    project: str
    token: str
    violations: list[str]

    def _init_tasks(self) -> None:
        self.task_event_shape: TaskEventShape = "flat"
        self.task_unrouted: TaskUnrouted = "drop"
        self.task_error_body: TaskErrorBody = "json"
        self.task_fault: int | Literal["hang"] | None = None
        #: Every task taken, over REST or ``offer_task``, in order.
        self.tasks: list[FakeTask] = []
        #: Every REST request: ``{"method", "path", "headers", "body", "status"}``
        #: (``status`` None while unanswered); headers with lower-case names.
        self.task_requests: list[JSONObject] = []
        self._task_turns: dict[str, int] = {}

    # What the facade provides (``Observing`` and the server's own).
    _changed: anyio.Event
    _task_group: anyio.abc.TaskGroup | None

    def _task_sessions(self) -> Iterable[FakeSession]:  # pragma: no cover - the facade's
        raise NotImplementedError

    def notify(self) -> None:  # pragma: no cover - the facade's (Observing)
        """Wake the server's waiters (``Observing.notify``, which comes first in the MRO)."""
        raise NotImplementedError

    # -- driving -----------------------------------------------------------------------

    async def offer_task(self, context: str, message: JSONObject) -> FakeTask:
        """Give a task to one session subscribed to ``context``, as if sent over REST.

        Raises LookupError if no session is subscribed (the REST endpoint applies
        ``task_unrouted`` instead).
        """
        if self._task_target(context) is None:
            raise LookupError(f"no session is subscribed to context {context!r}")
        return await self._take_task(context, message)

    # -- the queue ---------------------------------------------------------------------

    def _subscribed(self, context: str, *, connected: bool = False) -> list[FakeSession]:
        return [
            s
            for s in self._task_sessions()
            if context in s.contexts and (s.connection is not None or not connected)
        ]

    def _task_target(self, context: str) -> FakeSession | None:
        """The next session for ``context``, in turn: connected ones first."""
        candidates = self._subscribed(context, connected=True) or self._subscribed(context)
        if not candidates:
            return None
        turn = self._task_turns.get(context, 0)
        self._task_turns[context] = turn + 1
        return candidates[turn % len(candidates)]

    async def _hold(self, task: FakeTask) -> None:
        """Give a held task to the first connected session that subscribes to its context."""
        while not self._subscribed(task.context, connected=True):
            with anyio.move_on_after(0.05):  # also re-checked on every change
                await self._changed.wait()
        await self._deliver(task)

    async def _take_task(self, context: str, message: JSONObject) -> FakeTask:
        unrouted = choice("task_unrouted", self.task_unrouted, TASK_UNROUTED_CHOICES)
        task = FakeTask(context, message, "held")
        self.tasks.append(task)
        if not await self._deliver(task):
            task.outcome = _UNROUTED_OUTCOMES[unrouted]
            if task.outcome == "held":
                if self._task_group is None:
                    raise RuntimeError("the server is not serving")
                self._task_group.start_soon(self._hold, task)
        self.notify()
        return task

    async def _deliver(self, task: FakeTask) -> bool:
        session = self._task_target(task.context)
        if session is None:
            return False
        fields: JSONObject = {
            "context": task.context,
            "message": task.message,
            "project_id": self.project,
            "space_id": "fake-space",
        }
        shape = choice("task_event_shape", self.task_event_shape, TASK_EVENT_SHAPES)
        task.outcome, task.session = "delivered", session.protocol
        task.frame = await session.emit(EVENT_TASK, fields, flat=shape == "flat")
        self.notify()
        return True

    # -- REST --------------------------------------------------------------------------

    async def _serve_rest(self, stream: anyio.abc.ByteStream, data: bytes) -> None:
        """Answer the one HTTP request on ``stream`` (its first bytes in ``data``)."""
        async with stream:
            record: JSONObject = {"method": "", "path": "", "headers": {}, "body": ""}
            try:
                try:
                    request = await _read_request(stream, data)
                except _BadRequest as exc:
                    self.violations.append(f"REST: malformed HTTP request: {exc.reason}")
                    self.task_requests.append({**record, "status": exc.status})
                    await self._answer_error(stream, exc.status, exc.reason)
                    return
                record = {
                    "method": request.method,
                    "path": request.target,
                    "headers": request.headers,
                    "body": request.body.decode("utf-8", "replace"),
                    "status": None,
                }
                self.task_requests.append(record)
                self.notify()
                status, reason = await self._handle(stream, request)
                record["status"] = status
                if status == 204:
                    await stream.send(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                else:
                    await self._answer_error(stream, status, reason)
                self.notify()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                logger.debug("REST client left before its answer")

    async def _handle(self, stream: anyio.abc.ByteStream, request: _Request) -> tuple[int, str]:
        fault = self.task_fault
        if fault is not None and fault != "hang" and not _is_status(fault):
            raise ValueError(
                f"FakeRelayServer.task_fault must be None, 'hang' or an HTTP status, not {fault!r}"
            )
        if fault == "hang":
            while True:  # until the client gives up (EndOfStream) or the server stops
                await stream.receive()
        if request.target.split("?", 1)[0] != TASKS_PATH:
            self.violations.append(f"REST: {request.method} to unknown path {request.target!r}")
            return 404, f"no such endpoint {request.target!r}"
        if request.method != "POST":
            self.violations.append(f"REST: {request.method} {TASKS_PATH} (only POST exists)")
            return 405, "only POST"
        if isinstance(fault, int):
            return fault, "the server failed (task_fault)"
        if not self._authorized(request.headers.get("authorization", "")):
            return 401, "Unauthorized"
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if content_type.lower() != "application/json":
            self.violations.append(f"REST: task body sent as {content_type or 'no type'!r}")
            return 415, "expected application/json"
        try:
            body = json.loads(request.body)
        except ValueError:
            self.violations.append("REST: task body is not JSON")
            return 400, "body is not JSON"
        context = body.get("context") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(context, str) or not context or not isinstance(message, dict):
            self.violations.append(f"REST: task body without context and message: {body!r:.200}")
            return 400, "context (a non-empty string) and message (an object) are required"
        task = await self._take_task(context, message)
        if task.outcome == "rejected":
            return 404, f"no consumer listens on context {context!r}"
        return 204, ""

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False  # a JWT (Bearer) cannot send tasks
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.project}:{self.token}"

    async def _answer_error(self, stream: anyio.abc.ByteStream, status: int, reason: str) -> None:
        style = choice("task_error_body", self.task_error_body, TASK_ERROR_BODIES)
        content_type, body = "text/plain; charset=utf-8", b""
        if style == "json":
            content_type = "application/json"
            body = json.dumps({"errors": [{"code": str(status), "message": reason}]}).encode()
        elif style == "text":
            body = f"{status} {reason}\n".encode()
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nConnection: close\r\n"
        if status == 401:
            head += 'WWW-Authenticate: Basic realm="RELAY"\r\n'
        if body:
            head += f"Content-Type: {content_type}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        await stream.send(head.encode() + body)
