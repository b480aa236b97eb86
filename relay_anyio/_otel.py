"""OpenTelemetry for a client: spans for calls, commands and actions, and metrics.

Needs the ``otel`` extra (``opentelemetry-api``), imported when an ``OpenTelemetry``
is built, never before: importing relay_anyio does not import OpenTelemetry. The
client builds one by itself when the application configured a tracer or meter
provider (see ``RelayClient(telemetry=...)``).

Traces. Each call is a span (``relay.call``): an inbound call starts a trace of its
own (a worker's calls are not children of whatever span was current when the client
started), a dialled leg is a child of the ``calling.dial`` request that placed it. The
call's handler runs with that span current, so the application's own spans nest under
it. Every request is a span (named by its method) under the span of its action (by
``control_id``) or of its call (by ``call_id``), else under the current span. Every
action is a span (``relay.action.<kind>``) from its start to its terminal state. The
events of a call are span events of its span (the first ``events_per_call``, and
its end).

Metrics (instrument names; attributes in brackets): ``relay.calls.active``,
``relay.calls`` [disposition: handled, passed, dialed], ``relay.events``
[event_type], ``relay.acks``, ``relay.request.duration`` (seconds; its count is the
number of requests) [rpc.method, error.type], ``relay.reconnects`` [cause],
``relay.ping.rtt`` (seconds), ``relay.listener.overflows`` [policy].

Phone numbers, device addresses and command params are never recorded: only ids,
states, kinds and codes.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from ._constants import EVENT_CALL_STATE
from ._errors import RelayError
from ._telemetry import ActionInfo, CallInfo, Telemetry
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OpenTelemetry", "providers_configured"]

#: Buckets (seconds) for request durations and ping round trips: RELAY answers in
#: milliseconds to a few seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Dials whose legs may still be announced, remembered to parent the legs' spans.
_DIALS_REMEMBERED = 256
#: Provider classes that mean "the application configured nothing".
_PLACEHOLDERS = frozenset(
    {"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"}
)
_INSTALL_HINT = "OpenTelemetry needs the otel extra: pip install 'relay-anyio[otel]'"


def providers_configured() -> bool:
    """Whether the application set a global tracer or meter provider (and
    ``OTEL_SDK_DISABLED`` is not true): then a client reports to them by itself."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    from opentelemetry import metrics, trace

    providers = (trace.get_tracer_provider(), metrics.get_meter_provider())
    return any(type(p).__name__ not in _PLACEHOLDERS for p in providers)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _CallSpan:
    """A live call's span, what ending it needs, and its span-event budget."""

    __slots__ = ("direction", "disposition", "events_left", "span")

    def __init__(self, span: Span, disposition: str, direction: str, events: int) -> None:
        self.span = span
        self.disposition = disposition
        self.direction = direction
        self.events_left = events


class OpenTelemetry(Telemetry):
    """Report a client's calls, requests, actions and link to OpenTelemetry.

    ``RelayClient(telemetry=OpenTelemetry(tracer_provider=..., meter_provider=...))``
    uses the given providers (the global ones by default, which is what the client
    picks by itself when they are configured). A call's span gets its first
    ``events_per_call`` events as span events, and its ``ended`` state event in any
    case, which bounds what a chatty call costs. One instance per
    client. Raises ``ImportError`` naming the extra when ``opentelemetry-api`` is not
    installed.
    """

    active: ClassVar[bool] = True

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        events_per_call: int = 32,
    ) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        if events_per_call < 0:
            raise ValueError(f"events_per_call must not be negative, got {events_per_call!r}")
        self._trace = trace
        self._context = context
        self.events_per_call = events_per_call
        self._tracer = trace.get_tracer("relay_anyio", __version__, tracer_provider)
        meter = metrics.get_meter("relay_anyio", __version__, meter_provider)
        self._active_calls = meter.create_up_down_counter(
            "relay.calls.active", "{call}", "Calls handled or dialled and not ended yet"
        )
        self._calls_total = meter.create_counter(
            "relay.calls", "{call}", "Calls taken: handled, passed back, or dialled"
        )
        self._events = meter.create_counter(
            "relay.events", "{event}", "Events received (after dropping redeliveries)"
        )
        self._acks = meter.create_counter(
            "relay.acks", "{reply}", "Acknowledgements and replies sent to server requests"
        )
        self._request_duration = meter.create_histogram(
            "relay.request.duration",
            "s",
            "Time from sending a request to its outcome (waiting for a connection included)",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._reconnects = meter.create_counter(
            "relay.reconnects", "{reconnect}", "Links lost or not opened, by cause"
        )
        self._ping_rtt = meter.create_histogram(
            "relay.ping.rtt",
            "s",
            "Round trip of the keepalive signalwire.ping",
            explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
        )
        self._overflows = meter.create_counter(
            "relay.listener.overflows", "{overflow}", "Listener queues that overflowed"
        )
        #: call_id -> the span of each call not ended yet.
        self._calls: dict[str, _CallSpan] = {}
        #: control_id -> (span, start method) of the actions not settled yet.
        self._actions: dict[str, tuple[Span, str]] = {}
        #: dial tag -> the context of its ``calling.dial`` request span.
        self._dials: OrderedDict[str, Context] = OrderedDict()

    # -- calls ---------------------------------------------------------------------

    def call_started(self, call: CallInfo, disposition: str) -> None:
        """Start the call's span (a new trace, or under its dial) and count the call."""
        trace = self._trace
        if disposition == "dialed":
            parent = self._dials.get(call.tag)
            kind = trace.SpanKind.CLIENT
        else:
            parent = self._context.Context()  # a trace of its own
            kind = trace.SpanKind.SERVER
        attributes: dict[str, str] = {
            "relay.call_id": call.call_id,
            "relay.direction": call.direction,
            "relay.call.disposition": disposition,
        }
        for key, value in (
            ("relay.context", call.context),
            ("relay.device_type", call.device.get("type")),
            ("relay.node_id", call.node_id),
            ("relay.tag", call.tag),
        ):
            if text := _text(value):
                attributes[key] = text
        span = self._tracer.start_span("relay.call", parent, kind, attributes)
        previous = self._calls.pop(call.call_id, None)
        if previous is not None:  # the same call taken twice: close the first
            previous.span.end()
        self._calls[call.call_id] = _CallSpan(
            span, disposition, call.direction, self.events_per_call
        )
        self._calls_total.add(1, {"relay.call.disposition": disposition})
        if disposition != "passed":
            self._active_calls.add(1, {"relay.direction": call.direction})

    def call_ended(self, call: CallInfo) -> None:
        """End the call's span with its end reason."""
        entry = self._calls.pop(call.call_id, None)
        if entry is not None:
            self._end_call_span(entry, call.end_reason)

    def _end_call_span(self, entry: _CallSpan, reason: str) -> None:
        span = entry.span
        if entry.disposition == "passed":
            reason = reason or "passed"
        else:
            self._active_calls.add(-1, {"relay.direction": entry.direction})
        span.set_attribute("relay.end_reason", reason or "unknown")
        if reason == "session_lost":
            span.set_status(self._trace.StatusCode.ERROR, "the RELAY session was lost")
        span.end()

    def handling(self, call: CallInfo) -> AbstractContextManager[Any]:
        """Make the call's span current for its handler."""
        entry = self._calls.get(call.call_id)
        if entry is None:
            return super().handling(call)
        return self._trace.use_span(entry.span, end_on_exit=False)

    # -- requests and actions --------------------------------------------------------

    async def request(
        self, method: str, params: Mapping[str, Any], pending: Awaitable[dict[str, Any]]
    ) -> dict[str, Any]:
        """A span for the request (under its action or call) and its duration."""
        trace = self._trace
        attributes: dict[str, str] = {"rpc.system": "jsonrpc", "rpc.method": method}
        parent: Context | None = None
        action: tuple[Span, str] | None = None
        control_id = params.get("control_id")
        call_id = params.get("call_id")
        if isinstance(control_id, str):
            attributes["relay.control_id"] = control_id
            action = self._actions.get(control_id)
        if isinstance(call_id, str):
            attributes["relay.call_id"] = call_id
        if action is not None:
            parent = trace.set_span_in_context(action[0])
        elif isinstance(call_id, str) and (call := self._calls.get(call_id)) is not None:
            parent = trace.set_span_in_context(call.span)
        span = self._tracer.start_span(method, parent, trace.SpanKind.CLIENT, attributes)
        tag = params.get("tag")
        if method == "calling.dial" and isinstance(tag, str):
            # Legs may be announced before the dial's response: remember it first.
            self._dials[tag] = trace.set_span_in_context(span)
            while len(self._dials) > _DIALS_REMEMBERED:
                self._dials.popitem(last=False)
        error_type = ""
        started = time.perf_counter()
        try:
            result = await pending
        except BaseException as exc:
            error_type = type(exc).__name__
            if isinstance(exc, RelayError):
                span.set_attribute("relay.result_code", exc.code)
                span.set_status(trace.StatusCode.ERROR, exc.message)
            else:
                span.set_status(trace.StatusCode.ERROR, error_type)
            span.set_attribute("error.type", error_type)
            if action is not None and method == action[1]:
                self._action_not_started(control_id, error_type)
            raise
        else:
            code = result.get("code") if isinstance(result, dict) else None
            if code is not None:
                span.set_attribute("relay.result_code", str(code))
            return result
        finally:
            elapsed = time.perf_counter() - started
            span.end()
            labels = {"rpc.method": method}
            if error_type:
                labels["error.type"] = error_type
            self._request_duration.record(elapsed, labels)

    def action_started(self, call: CallInfo, action: ActionInfo) -> None:
        """Start the action's span under its call's."""
        prefix = action.method_prefix
        kind = prefix.removeprefix("calling.") or type(action).__name__
        parent = None
        entry = self._calls.get(call.call_id)
        if entry is not None:
            parent = self._trace.set_span_in_context(entry.span)
        span = self._tracer.start_span(
            f"relay.action.{kind}",
            parent,
            attributes={
                "relay.call_id": call.call_id,
                "relay.control_id": action.control_id,
                "relay.action.kind": kind,
            },
        )
        self._actions[action.control_id] = (span, prefix)

    def action_settled(self, action: ActionInfo, error: RelayError | None) -> None:
        """End the action's span with its final state (an error status if it failed)."""
        entry = self._actions.pop(action.control_id, None)
        if entry is None:
            return
        span = entry[0]
        result = action.result
        params = getattr(result, "raw_params", None)
        state = params.get("state") if isinstance(params, dict) else None
        if isinstance(state, str) and state:
            span.set_attribute("relay.action.state", state)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(self._trace.StatusCode.ERROR, error.message)
        elif state == "error":
            span.set_status(self._trace.StatusCode.ERROR, "the action ended in error")
        span.end()

    def _action_not_started(self, control_id: Any, error_type: str) -> None:
        entry = self._actions.pop(control_id, None)
        if entry is not None:
            entry[0].set_attribute("error.type", error_type)
            entry[0].set_status(self._trace.StatusCode.ERROR, "the action did not start")
            entry[0].end()

    # -- the link ------------------------------------------------------------------

    def received(self, events: list[tuple[str, dict[str, Any], float]], replies: int) -> None:
        """Count the read's events and acks; add the events to their calls' spans."""
        if replies:
            self._acks.add(replies)
        if not events:
            return
        counts: dict[str, int] = {}
        calls = self._calls
        for event_type, params, _ in events:
            counts[event_type] = counts.get(event_type, 0) + 1
            entry = calls.get(params.get("call_id"))  # type: ignore[arg-type]
            if entry is None:
                continue
            if entry.events_left > 0:
                entry.events_left -= 1
            elif not (event_type == EVENT_CALL_STATE and params.get("call_state") == "ended"):
                continue  # over budget: only the call's end still goes in
            entry.span.add_event(event_type, _event_attributes(params))
        for event_type, count in counts.items():
            self._events.add(count, {"relay.event_type": event_type})

    def reconnect(self, cause: str) -> None:
        """Count the reconnect by cause."""
        self._reconnects.add(1, {"relay.reconnect.cause": cause})

    def ping(self, rtt: float) -> None:
        """Record the ping's round trip."""
        self._ping_rtt.record(rtt)

    def listener_overflow(self, owner: str, policy: str) -> None:
        """Count the overflow by policy."""
        self._overflows.add(1, {"relay.overflow.policy": policy})

    def close(self) -> None:
        """End the spans of the calls and actions still open (``client_closed``)."""
        for span, _ in self._actions.values():
            span.set_attribute("relay.action.state", "client_closed")
            span.end()
        self._actions.clear()
        calls, self._calls = self._calls, {}
        for entry in calls.values():
            self._end_call_span(entry, "client_closed")
        self._dials.clear()


def _event_attributes(params: Mapping[str, Any]) -> dict[str, str]:
    """The few strings of an event worth a span event: its states, reasons, ids."""
    out: dict[str, str] = {}
    for key in ("call_state", "state", "end_reason", "control_id", "dial_state"):
        value = params.get(key)
        if isinstance(value, str):
            out[f"relay.{key}"] = value
    return out
