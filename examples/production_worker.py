"""A production worker: one configuration with a proxy, JSON logs, probes and traces.

Everything comes from the environment and the command line, nothing is hard-coded:

- ``SIGNALWIRE_PROJECT_ID``/``SIGNALWIRE_API_TOKEN``/``SIGNALWIRE_SPACE``: the account;
- ``HTTPS_PROXY`` (and ``NO_PROXY``): the egress proxy the connection tunnels through;
- ``OTEL_EXPORTER_OTLP_ENDPOINT``: the collector spans go to (with the OpenTelemetry
  SDK and its OTLP exporter installed); ``OTEL_TRACES_EXPORTER=console`` writes them
  to standard output instead, one JSON object per line;
- ``relay-anyio run production_worker:client --health-port 8080 --log-format json``:
  ``/healthz`` and ``/readyz`` for the platform, one JSON log line per event.

See docs/deployment.md ("A production worker in one configuration").
"""

from __future__ import annotations

import os

from relay_anyio import Call, RelayClient


def _configure_tracing() -> None:
    """Install a tracer provider before the client is entered (it picks it up then)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        return  # no SDK installed: the client runs without telemetry, at no cost
    provider = TracerProvider(resource=Resource.create({"service.name": "ivr-worker"}))
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        return
    trace.set_tracer_provider(provider)


_configure_tracing()
client = RelayClient(contexts=["office"])


@client.on_call
async def on_call(call: Call) -> None:
    await call.answer()
    action = await call.play_tts("Thanks for calling. Goodbye.")
    await action.wait()
    await call.hangup()
