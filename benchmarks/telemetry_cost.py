"""What telemetry costs on the two hot paths, without I/O: µs per event, µs per request.

Three settings of the client's telemetry seam, on both backends:

* ``off``: the default ``Telemetry`` (what a client has without the ``otel`` extra or
  without a configured provider): the reader skips the per-read hook, requests go
  straight to the session;
* ``otel-noop``: ``OpenTelemetry`` on the API's no-op providers (the extra installed,
  the hooks running, nothing recorded);
* ``otel-sdk``: ``OpenTelemetry`` on the SDK's providers, spans sampled but exported
  nowhere, metrics aggregated in memory: the work a configured application pays.

The event path is ``benchmarks/event_path.py``'s (parse, ack, route, update the call
and its play, run plain listeners) plus the reader's telemetry hook, as
``Session._read`` runs it. A request is ``call._command("calling.play.volume")``
through the session's request function onto a connection whose transport answers
at once (no socket, no task switch): the client's CPU per request, W4's without the
round trip. Times are CPU time (``time.process_time``), which a busy machine disturbs
less than the wall clock::

    .venv/bin/python benchmarks/telemetry_cost.py
    .venv/bin/python benchmarks/telemetry_cost.py --events 50000 --requests 5000 --reps 3

Needs the ``otel`` extra and ``opentelemetry-sdk`` (both in the ``test`` extra).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from event_path import NODE, frames
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider

from relay_anyio import (
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    OpenTelemetry,
    RelayClient,
    RelayEvent,
    Telemetry,
)
from relay_anyio._actions import PlayAction
from relay_anyio._json import loads
from relay_anyio._rpc import RpcConnection

MODES: dict[str, Callable[[], Telemetry]] = {
    "off": Telemetry,
    "otel-noop": lambda: OpenTelemetry(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    ),
    "otel-sdk": lambda: OpenTelemetry(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    ),
}


class _Answering:
    """A transport that answers every request at once with ``{"code": "200"}``."""

    def __init__(self) -> None:
        self.conn: RpcConnection | None = None

    async def send_text(self, text: str) -> None:
        assert self.conn is not None
        rid = loads(text)["id"]
        self.conn.resolve({"jsonrpc": "2.0", "id": rid, "result": {"code": "200"}}, rid)

    async def send_texts(self, texts: Sequence[str]) -> None:
        for text in texts:
            await self.send_text(text)


def _client(telemetry: Telemetry) -> RelayClient:
    client = RelayClient(
        project="p", token="t", host="localhost", contexts=["bench"], telemetry=telemetry
    )
    client._observe(telemetry)  # what entering the client does first
    return client


async def _events(args: argparse.Namespace, telemetry: Telemetry) -> list[float]:
    client = _client(telemetry)
    session, router = client._session, client._router
    conn = RpcConnection(None, 1)  # type: ignore[arg-type]  # never sends: no I/O here
    seen = 0

    def listener(event: RelayEvent) -> None:
        nonlocal seen
        if event.params.get("bench"):
            seen += 1

    call_ids, controls = [], []
    async with anyio.create_task_group() as tg:
        router.enter(tg)
        for n in range(args.calls):
            call = router._new_call(
                {"call_id": f"call-{n}", "node_id": NODE, "context": "bench", "call_state": "x"}
            )
            assert call is not None
            call._set_scope(tg)
            router.calls[call.call_id] = call
            telemetry.call_started(call, "handled")
            call.on(EVENT_CALL_PLAY, listener)
            call.on(EVENT_CALL_STATE, listener)
            action = PlayAction(call, f"ctl-{n}")
            call._actions[action.control_id] = action
            call_ids.append(call.call_id)
            controls.append(action.control_id)
        results = []
        for _ in range(args.reps):
            batch = frames(call_ids, controls, args.events)
            session._inbox.forget()
            seen = 0
            gc.collect()
            start = time.process_time()
            for i in range(0, len(batch), args.reads):
                replies, events = session._inbox.take_batch(conn, batch[i : i + args.reads])
                if telemetry.active:  # as Session._read does
                    telemetry.received(events, len(replies))
                session._route_all(events)
            elapsed = time.process_time() - start
            assert seen == args.events, (seen, args.events)
            results.append(elapsed / args.events * 1e6)
        tg.cancel_scope.cancel()
    return results


async def _requests(args: argparse.Namespace, telemetry: Telemetry) -> list[float]:
    client = _client(telemetry)
    session, router = client._session, client._router
    transport = _Answering()
    conn = RpcConnection(transport, 1)  # type: ignore[arg-type]
    transport.conn = conn
    session._conn = conn
    call = router._new_call({"call_id": "call-0", "node_id": NODE, "context": "bench"})
    assert call is not None
    router.calls[call.call_id] = call
    telemetry.call_started(call, "handled")
    params: dict[str, Any] = {"control_id": "ctl-0", "volume": 1.0}
    results = []
    for _ in range(args.reps):
        gc.collect()
        start = time.process_time()
        for _ in range(args.requests):
            await call._command("calling.play.volume", params)
        elapsed = time.process_time() - start
        results.append(elapsed / args.requests * 1e6)
    return results


def _line(label: str, results: list[float], unit: str) -> str:
    return (
        f"  {label:22} {statistics.median(results):7.2f} {unit} "
        f"(min {min(results):.2f}, max {max(results):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=13, help="frames per socket read")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    args = parser.parse_args()
    modes = args.modes.split(",")
    print(
        f"telemetry cost: {args.events} events over {args.calls} calls ({args.reads} per "
        f"read), {args.requests} requests; {args.reps} reps, median (min, max)"
    )
    for backend in ("asyncio", "trio"):
        for mode in modes:
            events = anyio.run(_events, args, MODES[mode](), backend=backend)
            print(_line(f"{backend} {mode} event", events, "us/event"), flush=True)
        for mode in modes:
            requests = anyio.run(_requests, args, MODES[mode](), backend=backend)
            print(_line(f"{backend} {mode} request", requests, "us/request"), flush=True)


if __name__ == "__main__":
    main()
