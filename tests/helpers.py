"""Shared test helpers: a client wired to a fake server with short, explicit timers."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import anyio

from relay_anyio import RelayClient
from relay_anyio.testing import FakeRelayServer, HandlerContext, ok

#: Timers for tests: fast reconnects, quick request timeouts, no background pings.
FAST: dict[str, Any] = {
    "request_timeout": 2.0,
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
    ``SIGNALWIRE_RELAY_CA_FILE``), unbuffered so tests can read their output live.
    """
    kwargs = server.client_kwargs()
    return {
        **os.environ,
        "SIGNALWIRE_PROJECT_ID": kwargs["project"],
        "SIGNALWIRE_API_TOKEN": kwargs["token"],
        "SIGNALWIRE_SPACE": f"localhost:{server.port}",
        "SIGNALWIRE_RELAY_CA_FILE": str(server.ca_pem_path(tmp_path)),
        "PYTHONUNBUFFERED": "1",
    }


def frames(server: FakeRelayServer, direction: str) -> list[dict[str, Any]]:
    """The JSON frames of the server's journal, "in" (from clients) or "out"."""
    return [
        e.frame for e in server.journal if e.direction == direction and isinstance(e.frame, dict)
    ]


async def eventually(predicate: Any, timeout: float = 2.0, interval: float = 0.005) -> None:
    """Poll ``predicate()`` until true (for state changed by other tasks)."""
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - the state belongs to another component
            await anyio.sleep(interval)


def messages(caplog: Any, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]
