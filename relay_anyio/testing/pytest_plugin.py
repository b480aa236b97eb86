"""pytest plugin ``relay_anyio``: fixtures that run a :class:`FakeRelayServer`.

Registered through the ``pytest11`` entry point, so installing relay-anyio is enough;
do not also list it in ``pytest_plugins`` (pytest would register it twice).

The fixtures are async generators run by anyio's pytest plugin, on the backend of the
test that uses them (``pytest.mark.anyio`` plus the ``anyio_backend`` fixture). Their
server's task group is entered and left in the same task as the test, which is what
anyio's runner guarantees, so yielding inside it is safe here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._server import FakeRelayServer

__all__ = ["relay_server", "relay_server_tls"]


@pytest.fixture
async def relay_server() -> AsyncIterator[FakeRelayServer]:
    """A running plain-WebSocket ``FakeRelayServer()`` with default credentials."""
    async with FakeRelayServer() as server:
        yield server


@pytest.fixture
async def relay_server_tls() -> AsyncIterator[FakeRelayServer]:
    """A running ``FakeRelayServer(tls=True)``: use ``server.client_ssl_context()``."""
    async with FakeRelayServer(tls=True) as server:
        yield server
