"""The ``relay-anyio`` command: help texts, the standalone fake server, ``run``.

The long-running commands are started as a user would start them, as separate
processes, and stopped with SIGINT or SIGTERM; each test runs the command on the same
backend as the test itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process

from relay_anyio import Call, CollectEvent, RelayClient
from relay_anyio._cli import main
from relay_anyio.testing import FakeRelayServer

from .helpers import python_process

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
#: ``python -m relay_anyio._cli``: for python_process (long-running) or run_process.
CLI_ARGS = ("-m", "relay_anyio._cli")
CLI = [sys.executable, *CLI_ARGS]
READY = re.escape("Press Ctrl+C to stop.")


@pytest.mark.parametrize("command", [[], ["demo"], ["fake-server"], ["run"]])
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: relay-anyio {' '.join(command)}".rstrip())
    for option in ("--backend", "--log-level"):
        assert option in out
    expected = {
        "": ["demo", "fake-server", "run", "--version"],
        "demo": ["--verbose", "make demo"],
        "fake-server": ["--port", "--tls", "call [CONTEXT] [DIGITS]", "sms CONTEXT"],
        "run": ["MODULE[:ATTRIBUTE]", "--drain-timeout", "SIGTERM"],
    }[" ".join(command)]
    for text in expected:
        assert text in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"relay-anyio \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:client", "cannot import 'no_such_module_xyz'"),
        ("relay_anyio:__version__", "is a str, not a RelayClient"),
        ("relay_anyio:nothing_here", "has no attribute 'nothing_here'"),
        ("missing/app.py", "no Python file at 'missing/app.py'"),
    ],
)
def test_run_reports_bad_targets(
    target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", target])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


# -- processes ---------------------------------------------------------------------------


class Output:
    """Everything a process printed so far, read on demand."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.text = ""

    async def until(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """Read until ``pattern`` (a regex) matches; return the match."""
        assert self.process.stdout is not None
        found = None
        with anyio.move_on_after(timeout):
            while (found := re.search(pattern, self.text)) is None:
                try:
                    self.text += (await self.process.stdout.receive()).decode()
                except anyio.EndOfStream:
                    break
        if found is None:
            raise AssertionError(f"no {pattern!r} in the output:\n{self.text}")
        return found

    async def rest(self, timeout: float = 10) -> str:
        """Read to the end of the output (after the process was told to stop)."""
        assert self.process.stdout is not None
        with anyio.fail_after(timeout):
            async for chunk in self.process.stdout:
                self.text += chunk.decode()
        return self.text


async def send_line(process: Process, line: str) -> None:
    assert process.stdin is not None
    await process.stdin.send(line.encode() + b"\n")


async def stop(process: Process, signum: signal.Signals = signal.SIGINT) -> int:
    process.send_signal(signum)
    with anyio.fail_after(20):  # a failure detector only: it takes well under 1 s
        return await process.wait()


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
    return {**clean, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def backend(anyio_backend_name: str) -> str:
    return anyio_backend_name


async def test_fake_server_prints_credentials_and_serves_a_client(backend: str) -> None:
    async with python_process(
        *CLI_ARGS, "fake-server", "--backend", backend, env=env(), stderr=None
    ) as process:
        out = Output(process)
        found = await out.until(
            r"RelayClient\(project='(\S+)', token='(\S+)', url='(ws://[\d.:]+)'"
        )
        await out.until(READY)
        project, token, url = found.groups()
        client = RelayClient(project=project, token=token, url=url, contexts=["default"])
        digits: list[str] = []
        done = anyio.Event()

        @client.on_call
        async def on_call(call: Call) -> None:
            await call.answer()
            collect = await call.collect(digits={"max": 1})
            result = await collect.wait()
            assert isinstance(result, CollectEvent)
            digits.append(result.digits)
            await call.hangup()
            done.set()

        async with client:
            await send_line(process, "call default 5")
            await out.until(r"offered call \S+ on 'default'")
            with anyio.fail_after(10):
                await done.wait()
            await send_line(process, "call nowhere")
            await out.until("error: no session is subscribed to context 'nowhere'")
        code = await stop(process)
    assert digits == ["5"]
    assert code == 0


async def test_fake_server_tls_runs_a_guide_example_through_relay_anyio_run(
    backend: str, tmp_path: Path
) -> None:
    """The manual-testing loop of docs/cli.md: fake server, ``run`` an app, offer calls."""
    async with python_process(
        *CLI_ARGS,
        "fake-server",
        "--tls",
        "--frames",
        "--ca-dir",
        str(tmp_path),
        "--backend",
        backend,
        env=env(),
        stderr=None,
    ) as server:
        server_out = Output(server)
        await server_out.until(READY)
        exports = dict(re.findall(r"export (SIGNALWIRE_\w+)=(\S+)", server_out.text))
        assert exports["SIGNALWIRE_RELAY_CA_FILE"] == str(tmp_path / "fake-relay-ca.pem")
        async with python_process(
            *CLI_ARGS,
            "run",
            "examples/relay_ivr.py",
            "--backend",
            backend,
            env=env(**exports),
            cwd=ROOT,
            stderr=subprocess.STDOUT,
        ) as app:
            app_out = Output(app)
            await app_out.until(r"serving on contexts \['main-ivr'\]")
            await send_line(server, "call main-ivr 1")
            await server_out.until(r"client -> server  calling\.connect devices=")
            await server_out.until(r"call_state=ended end_reason=hangup")
            app_code = await stop(app)
            await app_out.rest()
        server_code = await stop(server, signal.SIGTERM)
    assert "INFO relay_anyio.session: connected and authenticated" in app_out.text
    assert "received SIGINT: shutting down" in app_out.text
    assert "Traceback" not in app_out.text
    assert (app_code, server_code) == (0, 0)


def app_env(server: FakeRelayServer, tmp_path: Path) -> dict[str, str]:
    kwargs: dict[str, Any] = server.client_kwargs()
    return env(
        SIGNALWIRE_PROJECT_ID=kwargs["project"],
        SIGNALWIRE_API_TOKEN=kwargs["token"],
        SIGNALWIRE_SPACE=f"localhost:{server.port}",
        SIGNALWIRE_RELAY_CA_FILE=str(server.ca_pem_path(tmp_path)),
    )


async def test_run_drains_active_calls_on_sigterm(
    backend: str, relay_server_tls: FakeRelayServer, tmp_path: Path
) -> None:
    relay_server_tls.record_duration = 60  # the voicemail recording runs until the caller hangs up
    async with python_process(
        *CLI_ARGS,
        "run",
        "examples.relay_ivr",
        "--drain-timeout",
        "20",
        "--backend",
        backend,
        env=app_env(relay_server_tls, tmp_path),
        cwd=ROOT,
        stderr=subprocess.STDOUT,
    ) as app:
        out = Output(app)
        await out.until("serving on contexts")
        call = await relay_server_tls.offer_call("main-ivr")
        call.script_digits("3")
        await relay_server_tls.wait_for_request(
            "calling.record", lambda f: f["params"]["record"]["audio"]["direction"] == "listen"
        )
        app.send_signal(signal.SIGTERM)
        # New calls stop coming to this worker; the active one goes on.
        [unreceive] = [await relay_server_tls.wait_for_request("signalwire.unreceive", timeout=10)]
        assert unreceive["params"]["contexts"] == ["main-ivr"]
        await out.until(r"draining: waiting up to 20 s for 1 active call")
        assert call.state == "answered"
        await call.remote_hangup()
        with anyio.fail_after(20):  # a failure detector only
            code = await app.wait()
        await out.rest()
    assert code == 0
    assert call.states[-1] == "ended"
    assert call.end_reason == "hangup"  # the caller's own hangup: the drain waited for it
    assert "drain timeout" not in out.text
    assert "Traceback" not in out.text


async def test_run_accepts_an_app_factory_and_exits_1_on_rejected_credentials(
    backend: str, relay_server_tls: FakeRelayServer, tmp_path: Path
) -> None:
    app = tmp_path / "factory_app.py"
    app.write_text(
        "from relay_anyio import RelayClient\n\n"
        "def make_client():\n"
        "    return RelayClient(contexts=['x'], reconnect_min_delay=0.01,"
        " reconnect_max_delay=0.02)\n"
    )
    environment = app_env(relay_server_tls, tmp_path)
    environment["SIGNALWIRE_API_TOKEN"] = "wrong"
    result = await anyio.run_process(
        [*CLI, "run", f"{app}:make_client", "--backend", backend],
        env=environment,
        check=False,
        stderr=subprocess.STDOUT,
    )
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "ERROR relay_anyio.cli: client stopped: RELAY error" in out
    assert "wrong" not in out  # the token is never logged
