"""What a method handler gets and may raise: ``HandlerContext``, ``ok`` and the errors.

The events a handler produces must reach the client *after* its response, as they do
from RELAY (a client that registers a waiter only once the response arrives must not
miss them). Handlers therefore never send events themselves: they queue follow-ups
with ``HandlerContext.then``, which the server runs once the response is written.
A follow-up with no delay runs inline, so the event order of a handler is fixed and
tests are deterministic on both backends; a delayed one runs in the server's task
group and keeps going while the client is disconnected (its events are queued on the
session and delivered on resume).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import attrs

from .._constants import CALL_STATE_ENDED
from ._actions import FakeAction
from ._calls import CallHost, FakeCall, FollowUp, finish_action
from ._session import FakeSession
from ._validation import InvalidRequestError

__all__ = [
    "Handler",
    "HandlerContext",
    "JsonRpcError",
    "ResultCodeError",
    "accepted",
    "invalid_params",
    "lookup",
    "ok",
    "stop_action",
]

JSONObject = dict[str, Any]
_T = TypeVar("_T")

#: A method handler: gets the request context and ``params``, returns the ``result``.
Handler = Callable[["HandlerContext", JSONObject], Awaitable[JSONObject]]


def ok(message: str = "OK", **extra: Any) -> JSONObject:
    """A ``{"code": "200", ...}`` result: what RELAY answers to an accepted command."""
    return {"code": "200", "message": message, **extra}


class ResultCodeError(Exception):
    """Raise in a handler to answer with ``{"code": code, "message": message}`` at once.

    Follow-ups queued before the raise are discarded: a refused command has no effects.
    ``ctx.call`` raises it for unknown (404) and ended (410) calls.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.result: JSONObject = {"code": code, "message": message}


class JsonRpcError(Exception):
    """Raise in a handler to answer with a JSON-RPC ``error`` frame instead of a result."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data


def invalid_params(message: str) -> InvalidRequestError:
    """A malformed request: refused as ``server.invalid_request_reply`` says, and recorded."""
    return InvalidRequestError(message)


@attrs.define(eq=False)
class HandlerContext:
    """What a handler may use: the server, the requesting session, the request.

    ``then`` queues the handler's events; see the module docstring for why events
    never go out from inside the handler.
    """

    server: CallHost
    session: FakeSession
    #: 1-based number of the WebSocket connection the request came on.
    connection: int
    request: JSONObject
    _follow_ups: list[tuple[float, FollowUp]] = attrs.field(factory=list, init=False)

    @property
    def method(self) -> str:
        return str(self.request["method"])

    @property
    def params(self) -> JSONObject:
        params = self.request.get("params", {})
        return params if isinstance(params, dict) else {}

    @property
    def call(self) -> FakeCall:
        """The call named by ``params.call_id``/``node_id``.

        Raises ``ResultCodeError`` 404 for an unknown call (or a ``node_id`` that
        does not match) and 410 for an ended one, which the server turns into the
        result RELAY gives in those cases.
        """
        params = self.params
        call = lookup(self.server.calls, params.get("call_id"))
        node_id = params.get("node_id")
        if call is None or (node_id is not None and node_id != call.node_id):
            raise ResultCodeError("404", "Call not found")
        if call.state == CALL_STATE_ENDED:
            raise ResultCodeError("410", "Call is gone")
        return call

    def then(self, follow_up: FollowUp, delay: float = 0.0) -> None:
        """Run ``follow_up`` after the response is written (and ``delay`` seconds more)."""
        self._follow_ups.append((delay, follow_up))

    def emit(self, event_type: str, params: JSONObject) -> None:
        """Send an event to the requesting session after the response."""
        self.then(functools.partial(self.session.emit, event_type, params))

    async def run_follow_ups(self) -> None:
        """Called by the server once the response is out.

        The immediate follow-ups run here, in order. The delayed ones run in order of
        their delays (ties in the order they were added), in one background task,
        each ``delay`` seconds after this call: a request's events (a message's
        states, say) then reach the client in order even when a busy scheduler wakes
        several timers at once, which separate timer tasks did not guarantee.
        """
        follow_ups, self._follow_ups = self._follow_ups, []
        delayed = sorted(
            ((delay, index, f) for index, (delay, f) in enumerate(follow_ups) if delay > 0),
            key=lambda item: item[:2],
        )
        for delay, follow_up in follow_ups:
            if delay <= 0:
                await follow_up()
        if not delayed:
            return
        start = anyio.current_time()

        async def in_order() -> None:
            for delay, _, follow_up in delayed:
                await anyio.sleep_until(start + delay)
                await follow_up()

        await self.server.run_after(delayed[0][0], in_order)

    def start_action(self, event_type: str) -> tuple[FakeCall, FakeAction]:
        """Register the operation named by ``params.control_id`` on the call."""
        call = self.call
        control_id = self.params.get("control_id")
        if not isinstance(control_id, str) or not control_id:
            raise invalid_params("control_id is required")
        action = FakeAction(control_id, self.method, event_type, self.params, anyio.current_time())
        call.actions[control_id] = action
        return call, action

    def find_action(self) -> tuple[FakeCall, FakeAction]:
        """The call and the action a control command (``.stop``, ``.pause``...) names."""
        call = self.call
        action = lookup(call.actions, self.params.get("control_id"))
        if action is None:
            raise ResultCodeError("404", "Control not found")
        return call, action


def lookup(registry: dict[str, _T], key: object) -> _T | None:
    """``registry[key]`` for a key taken from a frame, which may be of any JSON type."""
    return registry.get(key) if isinstance(key, str) else None


def accepted(message: str, call: FakeCall, action: FakeAction, **extra: Any) -> JSONObject:
    """The ``200`` result of a command that started ``action`` on ``call``."""
    return ok(message, call_id=call.call_id, control_id=action.control_id, **extra)


async def stop_action(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """``.stop`` of any action: its terminal event at once if it is still running."""
    call, action = ctx.find_action()
    ctx.then(functools.partial(finish_action, call, action))
    return ok("Stopped")
