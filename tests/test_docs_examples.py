"""Every program the docs show runs here, as a user would run it.

* ``examples/test_my_ivr.py``, the worked example of docs/testing.md, runs under its
  own pytest process (the plugin's fixtures found through the entry point) and
  type-checks with ``mypy --strict``;
* the guide's call programs (``relay_*.py``) and the embedding programs' ``__main__``
  run as separate processes configured only by ``SIGNALWIRE_*`` variables, over TLS
  trusted through ``SIGNALWIRE_RELAY_CA_FILE``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from relay_anyio.testing import FakeRelayServer

from .helpers import python_process

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.mark.timeout(180)  # a whole pytest run (15 s seen on a loaded machine)
def test_worked_ivr_example_passes_its_own_tests() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_ivr.py"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout


@pytest.mark.timeout(300)  # mypy --strict, cold cache
def test_worked_ivr_example_type_checks() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "my_ivr.py",
            "test_my_ivr.py",
        ],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        # mypy cannot see through setuptools' editable-install hook: point it at the tree.
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def interrupt(process: Process, signum: signal.Signals = signal.SIGINT) -> str:
    """Stop a serving example the way a user does; return its output."""
    process.send_signal(signum)
    assert process.stdout is not None
    out = b""
    with anyio.fail_after(20):  # a failure detector only: it takes well under 1 s
        async for chunk in process.stdout:
            out += chunk
        assert await process.wait() == 0, out.decode()
    return out.decode()


@pytest.mark.parametrize(
    ("example", "context", "digits", "expected"),
    [
        ("relay_hello.py", "default", "", "Hello from RELAY!"),
        ("relay_inbound.py", "ivr", "9", "Invalid selection. Goodbye."),
        ("relay_ivr.py", "main-ivr", "7", "Invalid option. Goodbye."),
    ],
)
async def test_guide_inbound_programs(
    relay_server_tls: FakeRelayServer,
    env: dict[str, str],
    example: str,
    context: str,
    digits: str,
    expected: str,
) -> None:
    async with python_process(
        str(EXAMPLES / example), env=env, stderr=subprocess.STDOUT
    ) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        call = await relay_server_tls.offer_call(context)
        if digits:
            call.script_digits(digits)
        await call.wait_for_state("ended", timeout=10)
        out = await interrupt(process)
    texts = [
        item["params"]["text"]
        for frame in relay_server_tls.received("calling.play")
        for item in frame["params"]["play"]
    ]
    assert texts[-1] == expected
    assert "Traceback" not in out


async def test_guide_outbound_program(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "relay_outbound.py")], env=env, check=False
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    [dial] = relay_server_tls.received("calling.dial")
    [[device]] = dial["params"]["devices"]
    assert device["params"]["to_number"] == "+15559876543"
    call = relay_server_tls.calls[out.split("Call answered: ")[1].split()[0]]
    # The program returned with RELAY's answer to its calling.end; the fake's
    # ending -> ended follows that answer.
    await relay_server_tls.wait_until(lambda: call.state == "ended")
    assert call.states[-1] == "ended"


async def test_anyio_program_main(
    relay_server_tls: FakeRelayServer, env: dict[str, str], anyio_backend_name: str
) -> None:
    relay_server_tls.script_dial(["no_answer"])
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "embedding_anyio.py"), "+15551110001"],
        env={**env, "RELAY_BACKEND": anyio_backend_name},
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("+15551110001: not reached (Dial failed")
    assert "SMS delivered" in result.stdout.decode()


async def test_sync_program_main(relay_server_tls: FakeRelayServer, env: dict[str, str]) -> None:
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "sync_portal.py"), "+15559876543", "Shipped!"],
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "SMS to +15559876543: delivered"
    assert lines[1].startswith("call to +15559876543: ") and lines[1].endswith(" done")


async def test_trio_service_main(
    relay_server_tls: FakeRelayServer, env: dict[str, str], tmp_path: Path
) -> None:
    records = tmp_path / "survey.jsonl"
    async with python_process(
        str(EXAMPLES / "embedding_trio.py"), str(records), env=env, stderr=subprocess.STDOUT
    ) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        call = await relay_server_tls.offer_call("survey")
        call.script_digits("5")
        await call.wait_for_state("ended", timeout=10)
        with anyio.fail_after(10):
            while not records.exists() or not records.read_text():  # noqa: ASYNC110
                await anyio.sleep(0.02)
        out = await interrupt(process, signal.SIGTERM)
    assert '"rating": 5' in records.read_text()
    assert "SIGTERM: shutting down" in out


DOCS = ROOT / "docs"
#: Written separately from the other pages; mkdocs.yml reports a missing link to it at
#: INFO until it lands, so this test checks every other link in its place.
SEPARATELY_WRITTEN = {DOCS / "reliability.md"}


def test_every_relative_link_in_the_docs_resolves() -> None:
    import re

    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() and path not in SEPARATELY_WRITTEN:
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("```\nmake demo\nmake test\n```\n")
