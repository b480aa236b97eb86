"""docs/deployment.md's one production configuration, run as written: the example worker
under ``relay-anyio run`` with health probes and JSON logs, tunnelling through a real
proxy (proxy.py) to the TLS fake server, its spans exported by the OpenTelemetry SDK."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, python_process
from .test_cli import CLI_ARGS, Output, app_env, stop
from .test_proxy import run_proxy

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_the_production_worker_behind_a_proxy_with_probes_logs_and_traces(
    anyio_backend_name: str, relay_server_tls: FakeRelayServer, tmp_path: Path
) -> None:
    server = relay_server_tls
    with run_proxy(tmp_path / "proxy") as proxy:
        environment = {
            **app_env(server, tmp_path),
            "HTTPS_PROXY": proxy.url,
            "NO_PROXY": "",
            "OTEL_TRACES_EXPORTER": "console",
        }
        async with python_process(
            *CLI_ARGS,
            "run",
            "production_worker:client",
            "--backend",
            anyio_backend_name,
            "--health-port",
            "0",
            "--health-host",
            "127.0.0.1",
            "--log-format",
            "json",
            env=environment,
            cwd=EXAMPLES,
            stderr=subprocess.STDOUT,
        ) as process:
            out = Output(process)
            port = int((await out.until(r'"health_port": (\d+)')).group(1))
            await out.until(r"connected and authenticated", timeout=30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/healthz")).status_code == 200

                async def ready() -> bool:
                    return (await http.get("/readyz")).status_code == 200

                with anyio.fail_after(30):  # a failure detector only
                    while not await ready():  # noqa: ASYNC110 - another process's state
                        await anyio.sleep(0.05)
            call = await server.offer_call("office")
            await eventually(lambda: call.state == "ended", timeout=30)
            code = await stop(process, signal.SIGTERM)
            text = await out.rest()
        connects = proxy.connects
    assert code == 0, text
    assert connects == [f"CONNECT localhost:{server.port}"]  # the tunnel, and only it
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
    logs = [line for line in lines if "message" in line]
    spans = [line for line in lines if "context" in line and "name" in line]
    assert len(logs) + len(spans) == len(lines)  # nothing but JSON logs and spans
    # INFO logs the connection's story (a call's lines carry call_id: tested with an
    # error in test_observability_cli); the call itself is in its span.
    assert [line["logger"] for line in logs if line["message"].startswith("connected")] == [
        "relay_anyio.session"
    ]
    [call_span] = [s for s in spans if s["name"] == "relay.call"]
    assert call_span["attributes"]["relay.call_id"] == call.call_id
    assert {"calling.answer", "calling.play", "calling.end"} <= {s["name"] for s in spans}
    assert environment["SIGNALWIRE_API_TOKEN"] not in text
