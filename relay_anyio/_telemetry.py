"""The one instrumentation seam: what a client tells its telemetry, and where.

A ``RelayClient`` holds one ``Telemetry`` object and calls its hooks at a handful of
places: a call starts or ends (router), an inbound call's handler runs (router), a
request goes out and comes back (session), an action starts or settles (command core,
action), a socket read brings frames (reader), the link is replaced (reconnect loop),
a ping is answered (keepalive), a listener queue overflows (dispatcher).

The base class is the no-op default. Its ``active`` is False, and the two hooks on hot
paths (``request`` and ``received``) and the action hooks are then not called at all:
the session sends requests without the extra coroutine layer and the reader pays one
attribute check per socket read, not per event. The rare hooks (call start and end,
reconnect, ping, overflow) are plain method calls that do nothing.

``relay_anyio.OpenTelemetry`` (``_otel.py``) is the implementation that ships; a
subclass of ``Telemetry`` with ``active = True`` can feed any other metrics system.
This module imports nothing of the SDK's objects (they reach the hooks duck-typed,
described by the protocols below), so every layer can depend on it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Awaitable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

from ._errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    RelayError,
    RequestTimeout,
    TransportError,
)

__all__ = [
    "NOOP",
    "ActionInfo",
    "CallInfo",
    "Telemetry",
    "otel_installed",
    "reconnect_cause",
]

#: How ``Session._keepalive`` words the loss it declares; ``reconnect_cause`` reads it.
KEEPALIVE_PREFIX = "keepalive:"


class CallInfo(Protocol):
    """What a hook may read of a call (a ``relay_anyio.Call``)."""

    call_id: str
    node_id: str
    context: str
    direction: str
    device: dict[str, Any]
    tag: str
    state: str
    end_reason: str


class ActionInfo(Protocol):
    """What a hook may read of an action (a ``relay_anyio.Action``)."""

    control_id: str
    event_type: ClassVar[str]
    method_prefix: ClassVar[str]

    @property
    def call(self) -> Any: ...

    @property
    def result(self) -> Any: ...


_NO_CONTEXT: AbstractContextManager[None] = contextlib.nullcontext()


class Telemetry:
    """The instrumentation seam of a ``RelayClient``: every hook, doing nothing.

    Why a class of no-ops rather than ``if telemetry is not None`` checks: the client
    calls the rare hooks unconditionally, so the code that calls them reads the same
    with and without telemetry, and the hot paths look at ``active`` once. Subclass it
    (with ``active = True``) to feed a metrics system other than OpenTelemetry; one
    instance serves one client. Hooks are called from the event loop's thread and must
    not block or raise; they run inside the SDK, so an exception would be the SDK's.
    """

    #: False: ``request``, ``received`` and the action hooks are never called, so the
    #: request and event paths cost what they cost without telemetry.
    active: ClassVar[bool] = False

    # -- calls ---------------------------------------------------------------------

    def call_started(self, call: CallInfo, disposition: str) -> None:
        """A call became the client's: ``disposition`` is "handled", "passed" or "dialed"."""

    def call_ended(self, call: CallInfo) -> None:
        """The call ended (its ``end_reason`` is set), was passed, or its session is gone.

        Called once per ``call_started`` (the client closing ends what is left).
        """

    def handling(self, call: CallInfo) -> AbstractContextManager[None]:
        """The context the call's handler runs in (e.g. its span made current)."""
        return _NO_CONTEXT

    # -- requests and actions (only when ``active``) -------------------------------

    async def request(
        self, method: str, params: Mapping[str, Any], pending: Awaitable[dict[str, Any]]
    ) -> dict[str, Any]:
        """Await ``pending``, the request ``method`` with ``params``, and observe it.

        Returns its result or raises its exception unchanged (a ``RelayError`` for a
        non-2xx code, ``RequestTimeout``, ``ConnectionLost``...).
        """
        return await pending

    def action_started(self, call: CallInfo, action: ActionInfo) -> None:
        """An action was created on ``call`` and is about to be sent."""

    def action_settled(self, action: ActionInfo, error: RelayError | None) -> None:
        """The action finished: ``action.result`` is its terminal (or synthetic) event;
        ``error`` is set when its outcome is unknown (its session was replaced)."""

    # -- the link ------------------------------------------------------------------

    def received(self, events: list[tuple[str, dict[str, Any], float]], replies: int) -> None:
        """One socket read: the events about to be routed, the replies (acks) sent.

        Called before the events are routed (only when ``active``).
        """

    def reconnect(self, cause: str) -> None:
        """The link was lost or could not be opened and will be retried (see
        ``reconnect_cause`` for the causes)."""

    def ping(self, rtt: float) -> None:
        """A keepalive ``signalwire.ping`` was answered after ``rtt`` seconds."""

    def listener_overflow(self, owner: str, policy: str) -> None:
        """The listeners of ``owner`` fell behind their bounded queue (``policy``:
        "fail" dropped them, "drop" dropped the event)."""

    def close(self) -> None:
        """The client is leaving: end whatever is still open (spans of live calls)."""


#: The default of objects built without a client (a ``Call`` in a unit test).
NOOP = Telemetry()


def reconnect_cause(error: BaseException, *, server_asked: bool = False) -> str:
    """A short, bounded label for why the link is being replaced (a metric attribute).

    ``server_asked``: the server sent ``signalwire.disconnect`` on that link.
    """
    if server_asked:
        return "server_disconnect"
    if isinstance(error, AuthenticationError):
        return "auth_rejected"
    if isinstance(error, TransportError):
        return "unresolved" if error.unresolved else "connect_failed"
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, ProtocolError):
        return "protocol_error"
    if isinstance(error, ConnectionLost):
        return "keepalive" if error.message.startswith(KEEPALIVE_PREFIX) else "connection_lost"
    return "other"


def otel_installed() -> bool:
    """Whether the ``opentelemetry`` API is importable (the ``otel`` extra)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False
