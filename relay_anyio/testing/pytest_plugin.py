"""pytest plugin ``relay_anyio``: fixtures that run a ``FakeRelayServer``.

Registered through the ``pytest11`` entry point, so installing relay-anyio is enough;
do not also list it in ``pytest_plugins`` (pytest would register it twice).

The fixtures are async generators run by anyio's pytest plugin, on the backend of the
test that uses them (``pytest.mark.anyio`` plus the ``anyio_backend`` fixture). Their
server's task group is entered and left in the same task as the test, which is what
anyio's runner guarantees, so yielding inside it is safe here.

At teardown a fixture fails the test if ``server.violations`` is not empty: a
conformant client never breaks the protocol, so every test checks it for free. A
test that breaks it on purpose opts out with ``@pytest.mark.relay_violations_allowed``
(every violation allowed), ``@pytest.mark.relay_violations_allowed("substring", ...)``
(only violations containing one of the substrings), or ``server.expect_violations =
True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._server import FakeRelayServer

__all__ = ["relay_server", "relay_server_tls"]

_MARKER = "relay_violations_allowed"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``relay_violations_allowed`` marker."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(*substrings): the test provokes protocol violations on purpose; "
        "the relay_server fixtures do not fail it for them (for those containing one "
        "of the substrings only, if any are given)",
    )


def _check_violations(server: FakeRelayServer, request: pytest.FixtureRequest) -> None:
    if server.expect_violations or not server.violations:
        return
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None and not marker.args:
        return
    allowed = [str(arg) for arg in marker.args] if marker is not None else []
    unexpected = [v for v in server.violations if not any(a in v for a in allowed)]
    if unexpected:
        lines = "\n".join(f"  {violation}" for violation in unexpected)
        pytest.fail(
            f"the client broke the RELAY protocol ({len(unexpected)} violation(s) in "
            f"server.violations):\n{lines}\n(if the test provokes them on purpose, mark "
            f"it @pytest.mark.{_MARKER} or set server.expect_violations = True)",
            pytrace=False,
        )


@pytest.fixture
async def relay_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeRelayServer]:
    """A running plain-WebSocket ``FakeRelayServer()`` with default credentials.

    Fails the test at teardown if ``server.violations`` is not empty, unless it opts
    out (see the module docstring).
    """
    async with FakeRelayServer() as server:
        yield server
    _check_violations(server, request)


@pytest.fixture
async def relay_server_tls(request: pytest.FixtureRequest) -> AsyncIterator[FakeRelayServer]:
    """A running ``FakeRelayServer(tls=True)``: use ``server.client_ssl_context()``.

    Fails the test at teardown on violations, like ``relay_server``.
    """
    async with FakeRelayServer(tls=True) as server:
        yield server
    _check_violations(server, request)
