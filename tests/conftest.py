"""Fixtures shared by the suite; the fake server's come from the relay_anyio plugin.

Every async test runs on asyncio (debug mode) and on trio. ``relay_server`` and
``relay_server_tls`` (the plugin's) fail a test that leaves protocol violations.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_anyio import _logsetup
from relay_anyio._logsetup import RepeatFilter
from relay_anyio.lowlevel import TransportName
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


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Tests that run ``main()`` or ``client.run()`` in-process install a root handler
    on pytest's captured stderr (``configure_logging``); left in place, every later
    log line would go to a closed stream ("Logging error"). Put the root logger back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            for repeat_filter in handler.filters:
                if isinstance(repeat_filter, RepeatFilter):
                    atexit.unregister(repeat_filter.flush)
    _logsetup._installed = None
    root.setLevel(level)
