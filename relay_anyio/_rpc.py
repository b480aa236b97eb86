"""One JSON-RPC connection: requests in flight, and the reader's handling of frames.

This is the half of the session that knows JSON-RPC and nothing about reconnecting:
``RpcConnection`` sends requests over one ``MessageTransport`` and resolves them;
``Inbox`` turns the frames of one socket read into the replies to send (acks first)
and the events to route, dropping redelivered events by id. Neither awaits user
code. The reconnect loop that owns them is ``_session.Session``.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import anyio

from . import _json as json_codec
from ._constants import EVENT_AUTHORIZATION_STATE
from ._envelope import as_float, event_timestamp
from ._errors import ConnectionLost, RelayError
from ._redact import redact_frame
from ._sync import LazyEvent
from ._transport import MessageTransport

__all__ = ["Inbox", "InboxHost", "NotSent", "RoutedEvent", "RpcConnection", "check_result"]

logger = logging.getLogger("relay_anyio.session")
frame_logger = logging.getLogger("relay_anyio.frames")

_dumps = json_codec.dumps
_loads = json_codec.loads
_SEEN_WINDOW = 10_000

#: What the reader hands to routing: ``(event_type, inner params, timestamp)``.
RoutedEvent = tuple[str, dict[str, Any], float]


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


class NotSent(Exception):
    """The connection was already lost when the request was about to go out."""


class RpcConnection:
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

        Raises ``NotSent`` if the link is already known to be lost (the request
        never left, so the session may send it on the next connection),
        ``ConnectionLost`` if the link dies while it is in flight, and
        ``TimeoutError`` after ``timeout`` seconds without a response.
        """
        if self.lost is not None:
            raise NotSent
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
        """Fail every request in flight with ``error`` (the first loss wins)."""
        if self.lost is None:
            self.lost = error
        for waiter in self.pending.values():
            if not waiter.event.is_set():
                waiter.error = self.lost
                waiter.event.set()

    def resolve(self, frame: dict[str, Any], fid: Any) -> None:
        """Hand a response frame to the request waiting for it."""
        if "result" not in frame and "error" not in frame:
            logger.warning(
                "ignored a frame that is neither a request nor a response (keys: %s)",
                short(", ".join(sorted(map(str, frame)))),
            )
            return
        waiter = self.pending.get(fid) if isinstance(fid, str) else None
        if waiter is None or waiter.event.is_set():
            logger.debug("ignored a response to unknown request id %r", short(fid))
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


class InboxHost(Protocol):
    """What the inbox tells the session about server-side requests it handled."""

    authorization_state: str | None

    def secrets(self) -> list[str]:
        """Strings that a logged frame must not show."""
        ...

    def server_disconnect(self, conn: RpcConnection, *, restart: bool) -> None:
        """The server sent ``signalwire.disconnect`` on ``conn``."""
        ...


class Inbox:
    """The reader's frame handling: acks, responses, server requests, events.

    Delivery is exactly-once per session: the server redelivers unacked events on
    resume with their original ids, and a bounded window of the last ids seen drops
    the repeats (they are acked again all the same). ``forget()`` empties the window
    when a session starts afresh.
    """

    def __init__(self, host: InboxHost) -> None:
        self._host = host
        self._seen: set[Any] = set()
        self._seen_order: deque[Any] = deque()

    def forget(self) -> None:
        """A new session: ids seen in the old one mean nothing any more."""
        self._seen.clear()
        self._seen_order.clear()

    def take_batch(
        self, conn: RpcConnection, batch: Iterable[str | bytes]
    ) -> tuple[list[str], list[RoutedEvent]]:
        """Handle the frames of one read: the replies to send, the events to route."""
        replies: list[str] = []
        events: list[RoutedEvent] = []
        log_frames = frame_logger.isEnabledFor(logging.DEBUG)
        for raw in batch:
            try:
                if log_frames:
                    frame_logger.debug("recv %s", redact_frame(raw, self._host.secrets()))
                self._classify(conn, raw, replies, events)
            except Exception:  # a bug here must cost one frame, not the link
                logger.exception("failed to handle an incoming frame; it was dropped")
        return replies, events

    def _classify(
        self,
        conn: RpcConnection,
        raw: str | bytes,
        replies: list[str],
        events: list[RoutedEvent],
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
            conn.resolve(frame, fid)
            return
        if not isinstance(method, str):
            logger.warning("ignored a request whose method is not a string")
            if isinstance(fid, str | int) and not isinstance(fid, bool):
                replies.append(error_reply(fid, -32600, "Invalid Request: method"))
            return
        if isinstance(fid, bool) or not isinstance(fid, str | int | None):
            logger.warning("ignored a %r request with an invalid id", short(method))
            return
        params = frame.get("params", {})
        if not isinstance(params, dict):
            logger.warning("ignored a %r request whose params are not an object", short(method))
            if fid is not None:
                replies.append(error_reply(fid, -32602, "params must be an object"))
            return
        if method == "signalwire.event":
            if fid is None or self._acknowledge(fid, replies):
                self._take_event(params, events)
        elif method == "signalwire.ping":
            if fid is not None:
                replies.append(ack(fid))
        elif method == "signalwire.disconnect":
            if fid is not None:
                replies.append(ack(fid))
            self._host.server_disconnect(conn, restart=params.get("restart") is True)
        else:
            name = short(method)
            logger.warning("server sent unknown method %r; answered method-not-found", name)
            if fid is not None:
                replies.append(error_reply(fid, -32601, f"Method not found: {name}"))

    def _take_plain_event(
        self, frame: dict[str, Any], replies: list[str], events: list[RoutedEvent]
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
        if type(timestamp) is not float:
            timestamp = as_float(timestamp) if type(timestamp) is int else None
            if timestamp is None:
                return False  # absent or odd: the general path applies the one rule
        if self._acknowledge(fid, replies):
            events.append((event_type, inner, timestamp))
        return True

    def _take_event(self, params: dict[str, Any], events: list[RoutedEvent]) -> None:
        event_type = params.get("event_type")
        inner = params.get("params", {})
        if not isinstance(event_type, str) or not event_type:
            logger.warning("ignored an event without event_type")
            return
        if not isinstance(inner, dict):
            logger.warning("ignored a %s event whose params are not an object", short(event_type))
            return
        if event_type == EVENT_AUTHORIZATION_STATE:
            blob = inner.get("authorization_state")
            if isinstance(blob, str) and blob:
                self._host.authorization_state = blob
            return
        events.append((event_type, inner, event_timestamp(params.get("timestamp"), inner)))

    def _acknowledge(self, fid: str | int, replies: list[str]) -> bool:
        """Ack an event; True the first time its id is seen (exactly-once delivery)."""
        replies.append(ack(fid))
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


def short(value: Any, limit: int = 80) -> str:
    """A bounded rendering of a peer-chosen value for a log line or an error reply."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def ack(fid: str | int) -> str:
    """The JSON-RPC acknowledgement of a server request with id ``fid``."""
    # One ack per event: when the id has nothing to escape, skip the encoder.
    if type(fid) is str and fid.isascii() and fid.isprintable() and '"' not in fid:
        if "\\" not in fid:
            return '{"jsonrpc":"2.0","id":"' + fid + '","result":{}}'
    return f'{{"jsonrpc":"2.0","id":{_dumps(fid)},"result":{{}}}}'


def error_reply(fid: Any, code: int, message: str) -> str:
    """A JSON-RPC error response to a server request."""
    return _dumps({"jsonrpc": "2.0", "id": fid, "error": {"code": code, "message": message}})
