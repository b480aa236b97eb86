"""Health: a snapshot of a client's link and load, and a tiny HTTP server for probes.

``RelayClient.health()`` returns a ``Health``: frozen, cheap to take (it reads a few
attributes), and JSON-ready with ``to_dict()``, so a readiness probe or a status page
can serve it as it is. ``serve_health`` answers ``GET /healthz`` (liveness: 200 while
the event loop runs, since that is what answers) and ``GET /readyz`` (200 when
connected, else 503) with that JSON, on anyio alone: no web framework, one request per
connection, a bounded request head and a deadline to send it, a bounded number of
connections served at once. ``relay-anyio run --health-port N`` runs it beside the
client.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

import anyio
import anyio.abc
import attrs
from anyio.abc import TaskStatus

__all__ = ["Health", "HealthSource", "serve_health"]

logger = logging.getLogger("relay_anyio.health")

#: Largest request head accepted (request line and headers); beyond it: 431.
MAX_REQUEST_HEAD = 8192
#: Time a client gets to send its request head, and to take the response.
REQUEST_DEADLINE = 10.0
#: Connections served at once; the rest wait in the listen backlog.
MAX_CONNECTIONS = 16

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 6)


@attrs.frozen
class Health:
    """Where a client's link stands and how loaded it is, at one moment.

    Ages are in seconds on the monotonic clock (immune to wall-clock jumps);
    ``state_since`` is the wall-clock time (Unix seconds) ``state`` was entered, for
    humans. ``None`` means "not yet": no frame received, no ping answered.
    """

    #: ``connecting``, ``connected``, ``reconnecting`` or ``closed``.
    state: str
    #: Seconds in ``state``.
    state_age: float
    #: When ``state`` was entered (Unix time).
    state_since: float
    #: Seconds since a socket read last brought frames.
    last_frame_age: float | None
    #: Round trip of the last answered keepalive ``signalwire.ping``, in seconds.
    ping_rtt: float | None
    #: Times the link was lost (or could not be opened) and retried.
    reconnects: int
    #: Requests sent on the live connection and not answered yet.
    requests_in_flight: int
    #: Calls the client handles or dialled, not ended yet.
    active_calls: int
    #: Times a listener queue (of a call or of the client) overflowed.
    listener_overflows: int

    @property
    def ready(self) -> bool:
        """Connected and authenticated: requests go out and calls come in."""
        return self.state == "connected"

    @classmethod
    def capture(
        cls,
        *,
        state: str,
        state_since: float,
        state_since_wall: float,
        last_frame_at: float | None,
        ping_rtt: float | None,
        reconnects: int,
        requests_in_flight: int,
        active_calls: int,
        listener_overflows: int,
    ) -> Health:
        """Build a snapshot from monotonic timestamps, turned into ages now."""
        now = time.monotonic()
        return cls(
            state=state,
            state_age=_age(now, state_since) or 0.0,
            state_since=state_since_wall,
            last_frame_age=_age(now, last_frame_at),
            ping_rtt=ping_rtt,
            reconnects=reconnects,
            requests_in_flight=requests_in_flight,
            active_calls=active_calls,
            listener_overflows=listener_overflows,
        )

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready values, with ``ready`` added."""
        return {"ready": self.ready, **attrs.asdict(self)}

    def to_json(self) -> str:
        """``to_dict()`` as one line of JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


class HealthSource(Protocol):
    """What ``serve_health`` serves: anything with a ``health()`` (a ``RelayClient``)."""

    def health(self) -> Health:
        """The snapshot to serve."""
        ...


async def serve_health(
    client: HealthSource,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``client.health()`` over HTTP until cancelled: ``/healthz`` and ``/readyz``.

    Use it beside the client: ``port = await tg.start(serve_health, client, 8080)``
    (``task_status`` reports the bound port, useful with ``port=0``). ``/healthz``
    is always 200 (the loop is running: it answered); ``/readyz`` is 200 when the
    client is connected, 503 otherwise; both carry ``client.health().to_dict()`` as
    JSON. ``HEAD`` is answered like ``GET`` without a body; any other method is 405,
    any other path 404, a head over 8 KiB 431, a malformed one 400, one not sent
    within 10 s 408. The default ``host`` is loopback; a probe from outside the
    machine (a kubelet) needs ``host="0.0.0.0"``.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        logger.info(
            "health endpoint on http://%s:%d/healthz and /readyz",
            host,
            bound,
            extra={"health_port": bound},
        )
        limiter = anyio.CapacityLimiter(MAX_CONNECTIONS)
        task_status.started(bound)

        async def handle(stream: anyio.abc.SocketStream) -> None:
            async with limiter, stream:
                try:
                    await _answer(stream, client)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass  # the prober went away: nothing to tell it

        await listener.serve(handle)


async def _answer(stream: anyio.abc.ByteStream, client: HealthSource) -> None:
    status, head_only, body = 408, False, b""
    with anyio.move_on_after(REQUEST_DEADLINE):
        status, head_only, body = _route(await _read_head(stream), client)
    with anyio.move_on_after(REQUEST_DEADLINE):
        await stream.send(_response(status, b"" if head_only else body, len(body)))


async def _read_head(stream: anyio.abc.ByteStream) -> bytes | None:
    """The request head up to its blank line; ``None`` once it exceeds the limit.

    A peer that closes its side early gets what it sent judged as the head.
    """
    head = bytearray()
    while (end := head.find(b"\r\n\r\n")) < 0:
        if len(head) > MAX_REQUEST_HEAD:
            return None
        try:
            head += await stream.receive(4096)
        except anyio.EndOfStream:
            return bytes(head)
    return bytes(head[:end]) if end <= MAX_REQUEST_HEAD else None


def _route(head: bytes | None, client: HealthSource) -> tuple[int, bool, bytes]:
    """``(status, head_only, body)`` for one request head."""
    if head is None:
        return 431, False, _error_body("request head too large")
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return 400, False, _error_body("malformed request line")
    method, target = parts[0], parts[1]
    path = target.split(b"?", 1)[0]
    if path not in (b"/healthz", b"/readyz"):
        return 404, method == b"HEAD", _error_body("not found: try /healthz or /readyz")
    if method not in (b"GET", b"HEAD"):
        return 405, False, _error_body("only GET and HEAD")
    health: Health = client.health()
    status = 200 if path == b"/healthz" or health.ready else 503
    return status, method == b"HEAD", health.to_json().encode()


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _response(status: int, body: bytes, length: int) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
    )
    if status == 405:
        head += "Allow: GET, HEAD\r\n"
    return (head + "\r\n").encode("ascii") + body
