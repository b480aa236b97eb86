"""``relay-anyio run --health-port --log-format json`` and ``client.run()`` configured by
``SIGNALWIRE_LOG_*``, as a worker is run: separate processes, a TLS fake server,
probes over real HTTP, stopped with signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from relay_anyio._cli import main
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, python_process
from .test_cli import CLI_ARGS, ROOT, Output, app_env, stop

pytestmark = pytest.mark.anyio


@pytest.fixture
def backend(anyio_backend_name: str) -> str:
    """The backend the command runs on: the test's own."""
    return anyio_backend_name


@pytest.fixture
async def tls_server() -> AsyncIterator[FakeRelayServer]:
    async with FakeRelayServer(tls=True) as server:
        yield server
    assert server.violations == []


APP = """\
from relay_anyio import RelayClient

client = RelayClient(contexts=["obs"])


@client.on_call
async def on_call(call):
    await call.answer()
    raise RuntimeError("boom in the handler")
"""


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on a line that is not one)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_run_serves_health_and_logs_json_with_call_ids(
    backend: str, tls_server: FakeRelayServer, tmp_path: Path
) -> None:
    app = tmp_path / "obs_app.py"
    app.write_text(APP)
    environment = app_env(tls_server, tmp_path)
    async with python_process(
        *CLI_ARGS,
        "run",
        f"{app}:client",
        "--backend",
        backend,
        "--health-port",
        "0",
        "--health-host",
        "127.0.0.1",
        "--log-format",
        "json",
        env=environment,
        cwd=ROOT,
        stderr=subprocess.STDOUT,
    ) as process:
        out = Output(process)
        port = int((await out.until(r'"health_port": (\d+)')).group(1))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            await out.until(r"connected and authenticated")

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            with anyio.fail_after(10):  # a failure detector only
                while not await ready():  # noqa: ASYNC110 - another process's state
                    await anyio.sleep(0.05)
            body = (await http.get("/readyz")).json()
            assert body["state"] == "connected" and body["reconnects"] == 0
            call = await tls_server.offer_call("obs")
            await out.until(r"on_call handler failed")
            await eventually(lambda: call.state == "answered")
        code = await stop(process, signal.SIGTERM)
        text = await out.rest()
    assert code == 0, text
    lines = json_lines(text)  # every line is one JSON object
    [failed] = [line for line in lines if "on_call handler failed" in line["message"]]
    assert failed["call_id"] == call.call_id
    assert failed["level"] == "ERROR" and failed["logger"] == "relay_anyio.call"
    assert "RuntimeError: boom in the handler" in failed["exc_info"]
    assert any(line["message"].startswith("received SIGTERM") for line in lines)
    assert environment["SIGNALWIRE_API_TOKEN"] not in text


async def test_client_run_honours_the_signalwire_log_variables(
    backend: str, tls_server: FakeRelayServer, tmp_path: Path
) -> None:
    script = tmp_path / "plain_run.py"
    script.write_text(
        "import sys\n"
        "from relay_anyio import RelayClient\n\n"
        "RelayClient(contexts=['obs']).run(backend=sys.argv[1])\n"
    )
    environment = {
        **app_env(tls_server, tmp_path),
        "SIGNALWIRE_LOG_FORMAT": "json",
        "SIGNALWIRE_LOG_LEVEL": "info",
    }
    async with python_process(
        str(script), backend, env=environment, stderr=subprocess.STDOUT
    ) as process:
        out = Output(process)
        await out.until(r"connected and authenticated")
        code = await stop(process, signal.SIGINT)
        text = await out.rest()
    assert code == 0, text
    lines = json_lines(text)
    assert [line["logger"] for line in lines if line["message"].startswith("connected")] == [
        "relay_anyio.session"
    ]
    assert lines[-1]["message"] == "interrupted: client shut down"
    assert not any(line["level"] == "DEBUG" for line in lines)


async def test_client_run_exits_cleanly_when_ctrl_c_lands_inside_a_handler(
    backend: str, tls_server: FakeRelayServer, tmp_path: Path
) -> None:
    """On trio a Ctrl+C raises wherever the program is: here, inside a call's handler,
    so it leaves the client's task groups wrapped in an exception group."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import os, signal, sys\n"
        "import anyio\n"
        "from relay_anyio import RelayClient\n\n"
        "client = RelayClient(contexts=['obs'])\n\n"
        "@client.on_call\n"
        "async def on_call(call):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(1000):\n"
        "        sum(range(1000))  # plain code: where trio delivers it\n"
        "    await anyio.sleep_forever()\n\n"
        "client.run(backend=sys.argv[1])\n"
    )
    environment = {**app_env(tls_server, tmp_path), "SIGNALWIRE_LOG_LEVEL": "info"}
    async with python_process(
        str(script), backend, env=environment, stderr=subprocess.STDOUT
    ) as process:
        out = Output(process)
        await out.until(r"connected and authenticated")
        await tls_server.offer_call("obs")
        with anyio.fail_after(20):  # a failure detector only
            code = await process.wait()
        text = await out.rest()
    assert code == 0, text
    assert "interrupted: client shut down" in text
    assert "Traceback" not in text


def test_bad_log_settings_and_ports_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALWIRE_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as info:
        main(["run", "app:client"])
    assert info.value.code == 2
    assert "log format 'xml' from SIGNALWIRE_LOG_FORMAT" in capsys.readouterr().err
    monkeypatch.delenv("SIGNALWIRE_LOG_FORMAT")
    with pytest.raises(SystemExit) as info:
        main(["run", "app:client", "--health-port", "70000"])
    assert info.value.code == 2
    assert "port must be 0-65535" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "app:client", "--log-format", "yaml"])
    assert re.search(r"invalid choice: 'yaml'", capsys.readouterr().err)
