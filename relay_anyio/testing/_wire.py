"""The wire as the fake server sees it: JSON-RPC frames, their journal, reply builders.

Plain values and pure functions, shared by the session layer, the listener and the
server's observers; nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

import attrs

__all__ = [
    "EVENT_SEQ_KEY",
    "Direction",
    "Frame",
    "JSONObject",
    "JournalEntry",
    "describe",
    "error_body",
    "parse_frame",
    "request_key",
    "response",
]

JSONObject = dict[str, Any]
#: A journalled frame: the parsed JSON object, or the raw text/bytes if it is not one.
Frame = JSONObject | str | bytes
Direction = Literal["in", "out"]

#: The key ``FakeRelayServer.stamp_events`` adds to the inner params of every event.
EVENT_SEQ_KEY: Final = "fake_seq"


@attrs.frozen
class JournalEntry:
    """One frame received from (``"in"``) or sent to (``"out"``) a client."""

    direction: Direction
    #: 1-based number of the WebSocket connection, in order of acceptance.
    connection: int
    frame: Frame
    #: ``anyio.current_time()`` when the frame was read or handed to the socket.
    time: float
    #: For ``"in"`` frames, the number of the socket read (server-wide, from 1) that
    #: brought it: frames a client wrote at once usually share one. 0 for ``"out"``.
    read: int = 0


def response(
    request: JSONObject, *, result: JSONObject | None = None, error: JSONObject | None = None
) -> list[JSONObject]:
    """The reply to ``request`` as a list: empty for a notification (no id, no reply)."""
    if "id" not in request:
        return []
    body = {"error": error} if error is not None else {"result": result}
    return [{"jsonrpc": "2.0", "id": request["id"], **body}]


def error_body(code: int, message: str, data: Any = None) -> JSONObject:
    """A JSON-RPC ``error`` object (``data`` only when given)."""
    error: JSONObject = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


def request_key(request_id: object) -> str | int | None:
    """A request id as a key of ``_server_requests``: a string or an int, else None."""
    if isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool)
    ):
        return request_id
    return None


def parse_frame(raw: str | bytes) -> Frame:
    """The JSON object a text frame holds, else the frame as it came (for the journal)."""
    if isinstance(raw, bytes):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested beyond the parser
        return raw
    return value if isinstance(value, dict) else raw


def describe(frame: Frame) -> str:
    """Method and id only: frames carry credentials that must not reach logs."""
    if not isinstance(frame, dict):
        return f"<{type(frame).__name__} of {len(frame)}>"
    if "method" in frame:
        return f"{frame['method']} id={frame.get('id')!r}"
    return f"response id={frame.get('id')!r}"
