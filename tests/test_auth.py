"""A wrong credential fails at once; a rejected reconnect is retried, then gives up.

The first ``signalwire.connect`` being rejected is definitive: the same credentials
will be rejected again, so the client raises after exactly one connect frame, in
``async with``, ``connect()`` and ``run()``. Once a session had been established, a
rejected reconnect may be a transient failure of the auth service: it is retried
with the normal backoff ``auth_retries`` (3) times, then the client gives up.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from relay_anyio import AuthenticationError, ConnectionState
from relay_anyio.lowlevel import SessionOptions
from relay_anyio.testing import FakeRelayServer

from .helpers import make_client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("code", [-32002, -32000, 401])
async def test_a_rejected_first_connect_raises_at_once_after_one_connect(
    relay_server: FakeRelayServer, code: int
) -> None:
    """Whatever code the server rejects with (the production one is unconfirmed)."""
    relay_server.auth_error_code = code
    client = make_client(
        relay_server, token="wrong", reconnect_min_delay=30.0, reconnect_max_delay=30.0
    )
    with anyio.fail_after(20), pytest.raises(AuthenticationError) as rejected:
        async with client:
            pytest.fail("must not connect")
    assert rejected.value.code == code
    assert len(relay_server.received("signalwire.connect")) == 1
    assert client.connection_state is ConnectionState.CLOSED


async def test_connect_raises_at_once_too(relay_server: FakeRelayServer) -> None:
    client = make_client(
        relay_server, token="wrong", reconnect_min_delay=30.0, reconnect_max_delay=30.0
    )
    with anyio.fail_after(20), pytest.raises(AuthenticationError):
        await client.connect()
    assert len(relay_server.received("signalwire.connect")) == 1
    assert client.connection_state is ConnectionState.CLOSED
    await client.disconnect()  # harmless after a failed connect


def test_run_exits_1_after_one_rejected_connect(tmp_path: Path) -> None:
    """``client.run()`` in a program: exit code 1, one connect frame, no retry."""
    program = tmp_path / "worker.py"
    program.write_text(
        textwrap.dedent(
            """
            import sys
            from relay_anyio import RelayClient

            client = RelayClient(
                project="test-project", token="wrong", url=sys.argv[1], contexts=["default"],
                reconnect_min_delay=30.0, reconnect_max_delay=30.0,
            )

            @client.on_call
            async def handle(call):
                pass

            client.run(backend=sys.argv[2])
            """
        )
    )

    async def main(backend: str) -> tuple[int, str, int]:
        async with FakeRelayServer() as server:
            with anyio.fail_after(60):
                done = await anyio.run_process(
                    [sys.executable, str(program), server.url, backend], check=False
                )
            return done.returncode, done.stderr.decode(), len(server.received("signalwire.connect"))

    for backend in ("asyncio", "trio"):
        code, stderr, connects = anyio.run(main, backend, backend=backend)
        assert code == 1, stderr
        assert "AuthenticationError" in stderr
        assert "wrong" not in stderr.replace("token=wrong", "")  # the token is not logged
        assert connects == 1


async def test_a_rejected_reconnect_is_retried_three_times_then_gives_up(
    relay_server: FakeRelayServer,
) -> None:
    client = make_client(relay_server)
    states: list[ConnectionState] = []
    client.on_connection_state(states.append)
    with anyio.fail_after(20), pytest.raises(AuthenticationError):
        async with client:
            relay_server.token = "rotated"  # the credentials stop working
            await relay_server.drop_connection()
            await anyio.sleep_forever()
    connects = relay_server.received("signalwire.connect")
    assert len(connects) == 1 + 1 + 3  # the session, the rejected reconnect, 3 retries
    assert client.connection_state is ConnectionState.CLOSED
    assert states[-1] is ConnectionState.CLOSED


async def test_a_transient_reconnect_rejection_heals(relay_server: FakeRelayServer) -> None:
    """Two rejections, then the auth service is back: the session resumes."""
    client = make_client(relay_server)
    async with client:
        relay_server.token = "rotated"
        await relay_server.drop_connection()
        await relay_server.wait_until(lambda: len(relay_server.received("signalwire.connect")) >= 3)
        relay_server.token = "test-token"
        await client.execute("test.ok", {})  # waits for the next authenticated link
        assert client.connection_state is ConnectionState.CONNECTED
    connects = relay_server.received("signalwire.connect")
    assert 4 <= len(connects) <= 5  # session, 2 or 3 rejections (a race), the resume
    assert "protocol" in connects[-1]["params"]  # it resumed the session


def test_auth_retries_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="auth_retries"):
        SessionOptions(url="ws://x", authentication={"project": "p", "token": "t"}, auth_retries=-1)
