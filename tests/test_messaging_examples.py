"""The guide's messaging snippets (examples/messaging_*.py) run against the fake server.

They run as the user would run them: a separate Python process, configured only by
the SIGNALWIRE_* environment variables, over TLS trusted via SIGNALWIRE_RELAY_CA_FILE.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from relay_anyio.testing import FakeRelayServer

from .helpers import program_env, python_process

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def read_until(process: Process, marker: str, timeout: float = 10) -> str:
    assert process.stdout is not None
    text = ""
    with anyio.fail_after(timeout):
        while marker not in text:
            text += (await process.stdout.receive()).decode()
    return text


async def test_messaging_send_example(relay_server_tls: FakeRelayServer, tmp_path: Path) -> None:
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "messaging_send.py")],
        env=program_env(relay_server_tls, tmp_path),
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "Final state: delivered" in out
    assert "MMS final state: delivered" in out
    first, second = relay_server_tls.received("messaging.send")
    assert first["params"]["body"] == "Hello from SignalWire RELAY!"
    assert second["params"]["media"] == ["https://example.com/photo.jpg"]


async def test_messaging_receive_example(relay_server_tls: FakeRelayServer, tmp_path: Path) -> None:
    async with python_process(
        str(EXAMPLES / "messaging_receive.py"), env=program_env(relay_server_tls, tmp_path)
    ) as process:
        await relay_server_tls.wait_for_session(timeout=10)
        await relay_server_tls.offer_message(
            body="Check this out",
            media=["https://example.com/photo.jpg"],
            from_number="+15553333333",
        )
        out = await read_until(process, "Media:")
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(20):  # a failure detector only: it takes well under 1 s
            code = await process.wait()
    assert "From: +15553333333" in out
    assert "Body: Check this out" in out
    assert code == 0  # Ctrl+C is a clean shutdown
