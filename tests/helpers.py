"""Shared test helpers: a client wired to a fake server with short, explicit timers."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from relay_anyio import RelayClient
from relay_anyio.testing import FakeRelayServer, HandlerContext, ok

#: Timers for tests: fast reconnects, no background pings. The request timeout only
#: bounds a request that would hang (tests of timeouts set their own): generous, as a
#: loaded machine can take seconds to answer what takes milliseconds when idle.
#: The documented variable (reference §1), written out so a rename in the package fails.
CA_FILE_ENV = "SIGNALWIRE_RELAY_CA_FILE"

FAST: dict[str, Any] = {
    "request_timeout": 10.0,
    "reconnect_min_delay": 0.01,
    "reconnect_max_delay": 0.05,
    "ping_interval": 3600.0,
}


async def _test_ok(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
    return ok()


def make_client(server: FakeRelayServer, **kwargs: Any) -> RelayClient:
    """A client for ``server``; the server also learns ``test.ok``, a method that succeeds."""
    server.set_handler("test.ok", _test_ok)
    options: dict[str, Any] = {**server.client_kwargs(), "contexts": ["default"], **FAST}
    options.update(kwargs)
    return RelayClient(**options)


def program_env(server: FakeRelayServer, tmp_path: Path) -> dict[str, str]:
    """The environment a user's program gets: SIGNALWIRE_* only, TLS via the CA file.

    Programs run as separate processes configured like production (``wss://`` to
    ``SIGNALWIRE_SPACE``, the fake server's CA trusted through
    ``SIGNALWIRE_RELAY_CA_FILE`` and ``SIGNALWIRE_REST_CA_FILE``), unbuffered so
    tests can read their output live.
    """
    kwargs = server.client_kwargs()
    return {
        **os.environ,
        "SIGNALWIRE_PROJECT_ID": kwargs["project"],
        "SIGNALWIRE_API_TOKEN": kwargs["token"],
        "SIGNALWIRE_SPACE": f"localhost:{server.port}",
        "SIGNALWIRE_RELAY_CA_FILE": str(server.ca_pem_path(tmp_path)),
        # The REST half (send_task) trusts its own variable, as in the official SDK.
        "SIGNALWIRE_REST_CA_FILE": str(server.ca_pem_path(tmp_path)),
        "PYTHONUNBUFFERED": "1",
    }


def frames(server: FakeRelayServer, direction: str) -> list[dict[str, Any]]:
    """The JSON frames of the server's journal, "in" (from clients) or "out"."""
    return [
        e.frame for e in server.journal if e.direction == direction and isinstance(e.frame, dict)
    ]


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.005) -> None:
    """Poll ``predicate()`` until true (for state changed by other tasks).

    ``timeout`` only bounds a test that would hang: generous, so that a busy machine
    does not fail a wait that takes milliseconds when all is well.
    """
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - the state belongs to another component
            await anyio.sleep(interval)


def messages(caplog: Any, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


#: Puts SIGINT back to its default, then becomes ``python ARGS...`` (same pid). A
#: child inherits an *ignored* SIGINT (pytest run as ``cmd &`` from a non-interactive
#: shell), and Python then installs no KeyboardInterrupt handler: Ctrl+C, as the
#: tests send it, would do nothing and the test would wait for an exit that never
#: comes. ``subprocess``'s ``restore_signals`` does not cover SIGINT, and
#: ``anyio.open_process`` has no ``preexec_fn``, hence this wrapper.
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
#: How long a child may take to exit on SIGTERM before it is killed.
_TERMINATE_GRACE = 5.0


def python_command(*args: str) -> list[str]:
    """``[python, ARGS...]`` for a child that gets SIGINT's default whatever pytest has."""
    return [sys.executable, "-c", _WITH_DEFAULT_SIGINT, *args]


@asynccontextmanager
async def python_process(*args: str, **kwargs: Any) -> AsyncIterator[Process]:
    """``anyio.open_process(python_command(*args), **kwargs)``, always reaped.

    Whatever the test did (a failed assertion, a timeout), the child does not
    outlive it: still running at the end, it gets SIGTERM, then SIGKILL after
    ``_TERMINATE_GRACE`` seconds, and is waited for.
    """
    process = await anyio.open_process(python_command(*args), **kwargs)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            await reap(process)


async def reap(process: Process) -> None:
    """End ``process`` if it still runs (SIGTERM, then SIGKILL) and close its pipes."""
    if process.returncode is None:
        try:
            process.terminate()
        except ProcessLookupError:
            pass
        with anyio.move_on_after(_TERMINATE_GRACE):
            await process.wait()
        if process.returncode is None:
            try:
                process.kill()
            except ProcessLookupError:
                pass
    await process.aclose()  # waits for the exit (at once after SIGKILL)
