"""OpenTelemetry end to end: a client against the fake server, the SDK's in-memory
span exporter and metric reader collecting what it reported.

Each test builds its own tracer and meter providers (never the global ones, which a
process can set only once) and hands them to the client through
``OpenTelemetry(tracer_provider=..., meter_provider=...)``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anyio
import attrs
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import relay_anyio._client
import relay_anyio._otel
from relay_anyio import (
    EVENT_CALL_STATE,
    Call,
    OpenTelemetry,
    RelayClient,
    RelayError,
    RelayEvent,
    Telemetry,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio


@attrs.define
class Otel:
    """An ``OpenTelemetry`` for one client, and where its output lands."""

    telemetry: OpenTelemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer: trace.Tracer

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.finished(name)
        return span

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, value or histogram count)`` of every data point of a metric."""
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count  # type: ignore[union-attr]
                        out.append((dict(point.attributes or {}), value))
        return out

    def total(self, name: str, **attributes: Any) -> Any:
        return sum(
            value
            for attrs_, value in self.points(name)
            if all(attrs_.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Otel(telemetry, spans, reader, tracer_provider.get_tracer("tests"))
    tracer_provider.shutdown()
    meter_provider.shutdown()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_an_inbound_call_is_a_trace_of_its_own_with_commands_and_actions(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    client = make_client(relay_server, telemetry=otel.telemetry)
    done = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        with otel.tracer.start_as_current_span("app.lookup"):
            pass
        play = await call.play([{"type": "tts", "text": "hi"}])
        await play.wait()
        await call.hangup()
        await call.wait_for_ended()
        done.set()

    with otel.tracer.start_as_current_span("app.startup"):
        async with client:
            fake = await relay_server.offer_call()
            with anyio.fail_after(10):
                await done.wait()
            await eventually(lambda: otel.finished("relay.call"))

    call_span = otel.one("relay.call")
    assert call_span.parent is None  # not a child of app.startup: a trace per call
    assert call_span.kind is SpanKind.SERVER
    assert call_span.attributes is not None
    assert dict(call_span.attributes) == {
        "relay.call_id": fake.call_id,
        "relay.node_id": fake.node_id,
        "relay.direction": "inbound",
        "relay.call.disposition": "handled",
        "relay.context": "default",
        "relay.device_type": "phone",
        "relay.end_reason": "hangup",
    }
    states = [
        (e.name, (e.attributes or {}).get("relay.call_state"))
        for e in call_span.events
        if e.name == EVENT_CALL_STATE
    ]
    assert ("calling.call.state", "answered") in states
    assert states[-1] == ("calling.call.state", "ended")

    call = span_id(call_span)
    for method in ("calling.answer", "calling.end"):
        command = otel.one(method)
        assert parent_id(command) == call, method
        assert command.kind is SpanKind.CLIENT
        assert command.attributes is not None
        assert command.attributes["relay.result_code"] == "200"
        assert command.attributes["relay.call_id"] == fake.call_id
        assert command.attributes["rpc.method"] == method
    assert parent_id(otel.one("app.lookup")) == call  # the handler runs in the call's span

    [play_request] = relay_server.received("calling.play")
    control_id = play_request["params"]["control_id"]
    action = otel.one("relay.action.play")
    assert parent_id(action) == call
    assert action.attributes is not None
    assert action.attributes["relay.control_id"] == control_id
    assert action.attributes["relay.action.state"] == "finished"
    assert action.status.status_code is StatusCode.UNSET
    assert parent_id(otel.one("calling.play")) == span_id(action)
    assert action.end_time is not None and action.start_time is not None
    assert call_span.end_time is not None and action.end_time <= call_span.end_time

    assert otel.total("relay.calls", **{"relay.call.disposition": "handled"}) == 1
    assert otel.total("relay.calls.active") == 0
    assert otel.total("relay.request.duration", **{"rpc.method": "calling.answer"}) == 1
    assert otel.total("relay.request.duration", **{"rpc.method": "calling.play"}) == 1
    assert otel.total("relay.events", **{"relay.event_type": EVENT_CALL_STATE}) >= 3
    assert otel.total("relay.acks") >= otel.total("relay.events")


async def test_a_refused_command_and_an_action_that_never_started_are_errors(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    client = make_client(relay_server, telemetry=otel.telemetry)
    outcomes: list[int] = []
    done = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        try:
            await call.answer()
        except RelayError as exc:
            outcomes.append(exc.code)
        try:
            await call.play([{"type": "tts", "text": "hi"}])
        except RelayError as exc:
            outcomes.append(exc.code)
        await call.hangup()
        done.set()

    relay_server.fail_next("calling.answer", "500", "boom")
    relay_server.fail_next("calling.play", "400", "bad media")
    async with client:
        await relay_server.offer_call()
        with anyio.fail_after(10):
            await done.wait()
    assert outcomes == [500, 400]
    answer = otel.one("calling.answer")
    assert answer.status.status_code is StatusCode.ERROR
    assert answer.status.description == "boom"
    assert answer.attributes is not None
    assert answer.attributes["relay.result_code"] == 500
    assert answer.attributes["error.type"] == "RelayError"
    action = otel.one("relay.action.play")
    assert action.status.status_code is StatusCode.ERROR
    assert action.attributes is not None
    assert action.attributes["error.type"] == "RelayError"
    assert otel.total("relay.request.duration", **{"error.type": "RelayError"}) == 2
    assert otel.total("relay.request.duration", **{"rpc.method": "calling.end"}) == 1


async def test_a_passed_call_and_a_dialled_leg_have_their_spans(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    client = make_client(relay_server, telemetry=otel.telemetry)  # no on_call: pass
    relay_server.script_dial(["answer"])
    async with client:
        await relay_server.offer_call()
        await eventually(lambda: otel.finished("relay.call"))
        with otel.tracer.start_as_current_span("app.campaign") as campaign:
            leg = await client.dial(
                [[{"type": "phone", "params": {"to_number": "+1555", "from_number": "+1666"}}]]
            )
        await leg.hangup()
        await leg.wait_for_ended()
        await eventually(lambda: len(otel.finished("relay.call")) == 2)
    passed, dialled = otel.finished("relay.call")
    assert passed.attributes is not None and dialled.attributes is not None
    assert passed.attributes["relay.call.disposition"] == "passed"
    assert passed.attributes["relay.end_reason"] == "passed"
    assert parent_id(otel.one("calling.pass")) == span_id(passed)

    assert dialled.attributes["relay.call.disposition"] == "dialed"
    assert dialled.attributes["relay.direction"] == "outbound"
    assert dialled.attributes["relay.call_id"] == leg.call_id
    assert dialled.attributes["relay.device_type"] == "phone"
    assert dialled.kind is SpanKind.CLIENT
    dial_request = otel.one("calling.dial")
    assert parent_id(dial_request) == campaign.get_span_context().span_id
    assert parent_id(dialled) == span_id(dial_request)  # the leg belongs to the dial's trace
    assert otel.total("relay.calls", **{"relay.call.disposition": "passed"}) == 1
    assert otel.total("relay.calls", **{"relay.call.disposition": "dialed"}) == 1
    assert otel.total("relay.calls.active") == 0


async def test_reconnects_pings_and_overflows_are_counted(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    client = make_client(
        relay_server, telemetry=otel.telemetry, ping_interval=0.05, call_event_buffer=2
    )
    release = anyio.Event()
    ready = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        async def stuck(event: RelayEvent) -> None:
            await release.wait()

        call.on("test.noise", stuck)
        await call.answer()
        ready.set()
        await call.wait_for_ended()

    async with client:
        await eventually(lambda: otel.total("relay.ping.rtt") >= 1)
        await relay_server.drop_connection()
        await eventually(lambda: relay_server.connections == 2 and client.health().ready)
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await ready.wait()
        for n in range(10):
            await fake.send_event("test.noise", {"call_id": fake.call_id, "n": n})
        await client.execute("test.ok", {})  # a round trip: all ten were routed
        release.set()
        health = client.health()
        await fake.remote_hangup()
    assert otel.total("relay.reconnects", **{"relay.reconnect.cause": "connection_lost"}) == 1
    assert health.reconnects == 1
    assert otel.total("relay.listener.overflows", **{"relay.overflow.policy": "fail"}) == 1
    assert health.listener_overflows == 1
    assert health.ping_rtt is not None and health.ping_rtt >= 0


async def test_calls_still_live_when_the_client_leaves_end_their_spans(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    client = make_client(relay_server, telemetry=otel.telemetry, shutdown_timeout=0.0)
    ready = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        ready.set()
        await anyio.sleep_forever()

    async with client:
        await relay_server.offer_call()
        with anyio.fail_after(10):
            await ready.wait()
    span = otel.one("relay.call")
    assert span.attributes is not None
    assert span.attributes["relay.end_reason"] == "client_closed"
    assert otel.total("relay.calls.active") == 0


async def test_a_chatty_call_records_a_bounded_number_of_span_events(
    relay_server: FakeRelayServer, otel: Otel
) -> None:
    otel.telemetry.events_per_call = 3
    client = make_client(relay_server, telemetry=otel.telemetry)
    answered = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        answered.set()
        await call.wait_for_ended()

    async with client:
        fake = await relay_server.offer_call()
        with anyio.fail_after(10):
            await answered.wait()
        for n in range(20):
            await fake.send_event("test.noise", {"call_id": fake.call_id, "n": n})
        await fake.remote_hangup()
        await eventually(lambda: otel.finished("relay.call"))
    names = [e.name for e in otel.one("relay.call").events]
    assert len(names) == 4 and "test.noise" in names[:3]
    # Over budget, only the call's end still goes in.
    last = otel.one("relay.call").events[-1]
    assert last.name == EVENT_CALL_STATE
    assert (last.attributes or {}).get("relay.call_state") == "ended"
    assert otel.total("relay.events", **{"relay.event_type": "test.noise"}) == 20
    with pytest.raises(ValueError, match="events_per_call"):
        OpenTelemetry(events_per_call=-1)


# -- choosing the telemetry ----------------------------------------------------------


async def test_without_a_provider_the_client_has_the_no_op_seam(
    relay_server: FakeRelayServer,
) -> None:
    """The default, with the extra installed but no provider configured: the request
    is the session's own (no observing layer) and nothing is active."""
    assert not relay_anyio._otel.providers_configured()
    client = make_client(relay_server)
    async with client:
        assert type(client.telemetry) is Telemetry
        assert not client.telemetry.active
        assert "request" not in vars(client._session)  # the method itself, no layer
        await client.execute("test.ok", {})


async def test_a_configured_global_provider_turns_opentelemetry_on(
    relay_server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert relay_anyio._otel.providers_configured()
    client = make_client(relay_server)
    async with client:
        assert isinstance(client.telemetry, OpenTelemetry)
        assert client._session.request == client._session._observed_request
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not relay_anyio._otel.providers_configured()
    off = make_client(relay_server, telemetry=False)
    async with off:
        assert type(off.telemetry) is Telemetry


async def test_without_the_extra_the_client_never_imports_opentelemetry(
    relay_server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setattr(relay_anyio._client, "otel_installed", lambda: False)
    client = make_client(relay_server)
    async with client:
        assert type(client.telemetry) is Telemetry
    with pytest.raises(ImportError, match=r"pip install 'relay-anyio\[otel\]'"):
        OpenTelemetry()
    forced = make_client(relay_server, telemetry=True)
    with pytest.raises(ImportError, match="otel extra"):
        async with forced:
            pass


def test_telemetry_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"telemetry must be a relay_anyio\.Telemetry"):
        RelayClient(
            project="p",
            token="t",
            url="ws://127.0.0.1:9",
            telemetry="otel",  # type: ignore[arg-type]
        )
