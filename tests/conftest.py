"""Fixtures shared by the suite; the fake server's come from the relay_anyio plugin.

Every async test runs on asyncio (debug mode) and on trio. ``relay_server`` and
``relay_server_tls`` (the plugin's) fail a test that leaves protocol violations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_anyio._transport import TransportName
from relay_anyio.testing import FakeRelayServer

from .helpers import program_env


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["native", "trio-websocket"])
def transport(request: pytest.FixtureRequest, anyio_backend_name: str) -> TransportName:
    """Each transport the backend can run (trio-websocket runs under trio only)."""
    name: TransportName = request.param
    if name == "trio-websocket" and anyio_backend_name != "trio":
        pytest.skip("trio-websocket runs under trio only")
    return name


@pytest.fixture
def env(relay_server_tls: FakeRelayServer, tmp_path: Path) -> dict[str, str]:
    """The environment of a user's program run against ``relay_server_tls``."""
    return program_env(relay_server_tls, tmp_path)
