"""RelayClient against the fake RELAY server over real loopback sockets."""

from __future__ import annotations

import logging
import random
from typing import Any

import anyio
import pytest

from relay_anyio import (
    AuthenticationError,
    Call,
    ConnectionLost,
    ConnectionState,
    RelayClient,
    RelayError,
    RequestTimeout,
)
from relay_anyio.testing import NOT_AUTHENTICATED_CODE, FakeRelayServer

from .helpers import FAST, eventually, frames, make_client, messages

pytestmark = pytest.mark.anyio


async def test_connect_with_project_and_token(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server, contexts=["default", "sales"]) as client:
        assert client.connection_state is ConnectionState.CONNECTED
        assert client.relay_protocol.startswith("signalwire_")
    [connect] = relay_server.received("signalwire.connect")
    params = connect["params"]
    assert params["version"] == {"major": 2, "minor": 0, "revision": 0}
    assert params["agent"].startswith("relay-anyio/")
    assert params["event_acks"] is True
    assert params["authentication"] == {"project": "test-project", "token": "test-token"}
    assert params["contexts"] == ["default", "sales"]
    assert "protocol" not in params and "authorization_state" not in params


async def test_connect_with_jwt(relay_server: FakeRelayServer) -> None:
    async with RelayClient(jwt_token="test-jwt", url=relay_server.url, **FAST) as client:
        assert client.connection_state is ConnectionState.CONNECTED
    [connect] = relay_server.received("signalwire.connect")
    assert connect["params"]["authentication"] == {"jwt_token": "test-jwt"}
    assert "contexts" not in connect["params"]


async def test_bad_credentials_fail_after_one_rejection(relay_server: FakeRelayServer) -> None:
    client = make_client(relay_server, token="wrong-token")
    with pytest.raises(AuthenticationError) as info:
        async with client:
            pytest.fail("must not connect")
    assert "Authentication failed" in info.value.message
    assert info.value.data == {"signalwire_error_code": "AUTH_REQUIRED"}
    assert len(relay_server.received("signalwire.connect")) == 1
    assert client.connection_state is ConnectionState.CLOSED


async def test_nothing_but_connect_before_authentication(relay_server: FakeRelayServer) -> None:
    relay_server.delay_next("signalwire.connect", 0.2)
    client = make_client(relay_server)
    answered = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def early_request() -> None:
            # Issued while the handshake is in flight (its answer comes 0.2 s late).
            await relay_server.wait_for_request("signalwire.connect")
            await client.execute("signalwire.receive", {"contexts": ["x"]})
            answered.set()

        tg.start_soon(early_request)
        async with client:
            with anyio.fail_after(2):
                await answered.wait()
    methods = [f.get("method") for f in frames(relay_server, "in")]
    assert methods[0] == "signalwire.connect"
    assert methods.count("signalwire.receive") == 1
    rejected = [
        f
        for f in frames(relay_server, "out")
        if f.get("error", {}).get("code") == NOT_AUTHENTICATED_CODE
    ]
    assert rejected == []


async def test_100_concurrent_requests_are_correlated(relay_server: FakeRelayServer) -> None:
    async def echo(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"code": "200", "message": "ok", "echo": params["n"]}

    relay_server.set_handler("test.echo", echo)
    rng = random.Random(7)
    for _ in range(100):  # answers come back shuffled
        relay_server.delay_next("test.echo", rng.random() * 0.05)
    results: dict[int, Any] = {}
    async with make_client(relay_server) as client:

        async def one(n: int) -> None:
            results[n] = (await client.execute("test.echo", {"n": n}))["echo"]

        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(one, n)
    assert results == {n: n for n in range(100)}
    responses = [
        f["result"]["echo"]
        for f in frames(relay_server, "out")
        if isinstance(f.get("result"), dict) and "echo" in f["result"]
    ]
    assert responses != sorted(responses)  # they really were out of order


async def test_error_code_raises_relay_error(relay_server: FakeRelayServer) -> None:
    relay_server.fail_next("test.method", code="500", message="Internal error")
    async with make_client(relay_server) as client:
        with pytest.raises(RelayError) as info:
            await client.execute("test.method", {})
        assert info.value.code == 500
        assert info.value.message == "Internal error"
        assert info.value.data["code"] == "500"
        relay_server.fail_next("test.method", code="-32000", message="nope", jsonrpc_error=True)
        with pytest.raises(RelayError) as info:
            await client.execute("test.method", {})
        assert info.value.code == -32000


async def test_timeout_fails_only_that_request(relay_server: FakeRelayServer) -> None:
    relay_server.withhold_next("test.slow")
    async with make_client(relay_server) as client:
        with pytest.raises(RequestTimeout) as info:
            await client.execute("test.slow", {}, timeout=0.1)
        assert isinstance(info.value, TimeoutError)
        assert "test.slow" in info.value.message
        # The link is fine: the next request on the same connection succeeds.
        assert (await client.execute("test.ok", {}))["code"] == "200"
        assert relay_server.connections == 1


async def test_events_are_acked_in_order_before_routing(relay_server: FakeRelayServer) -> None:
    answered = anyio.Event()
    client = make_client(relay_server)

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        answered.set()

    async with client:
        await relay_server.offer_call()
        with anyio.fail_after(2):
            await answered.wait()
    inbound = frames(relay_server, "in")
    events = [f for f in frames(relay_server, "out") if f.get("method") == "signalwire.event"]
    acks = [f["id"] for f in inbound if "result" in f]
    assert acks == [f["id"] for f in events][: len(acks)]
    receive_id = next(
        f["id"] for f in events if f["params"]["event_type"] == "calling.call.receive"
    )
    order = [f.get("id") if "result" in f else f.get("method") for f in inbound]
    assert order.index(receive_id) < order.index("calling.answer")


async def test_server_ping_is_answered(relay_server: FakeRelayServer) -> None:
    relay_server.ping_interval = 0.02
    async with make_client(relay_server):
        await eventually(lambda: len(relay_server.ping_replies) >= 3)
    for reply in relay_server.ping_replies:
        assert set(reply) == {"jsonrpc", "id", "result"}, reply
        assert reply["result"] == {}


async def test_keepalive_detects_a_dead_link(relay_server: FakeRelayServer) -> None:
    # Window: ping every 0.05 s, unanswered after 0.1 s -> dead within 0.15 s.
    states: list[ConnectionState] = []
    client = make_client(relay_server, ping_interval=0.05, ping_timeout=0.1)
    client.on_connection_state(states.append)
    async with client:
        relay_server.stop_reading()
        # (test_reliability_keepalive checks the window; this bound is generous for load)
        await eventually(lambda: ConnectionState.RECONNECTING in states, timeout=5)
        relay_server.resume_reading()
        await eventually(
            lambda: (
                relay_server.connections >= 2
                and client.connection_state is ConnectionState.CONNECTED
            ),
        )
    connects = relay_server.received("signalwire.connect")
    assert connects[-1]["params"]["protocol"] == client.relay_protocol


async def test_drop_resumes_session_and_resubscribes(relay_server: FakeRelayServer) -> None:
    async with make_client(relay_server, contexts=["default"]) as client:
        await client.receive(["extra"])
        await client.unreceive(["default"])
        protocol = client.relay_protocol
        issued = relay_server.sessions[0].authorization_state
        await relay_server.drop_connection()
        await eventually(lambda: len(relay_server.received("signalwire.connect")) == 2)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        second = relay_server.received("signalwire.connect")[1]["params"]
        assert second["protocol"] == protocol
        assert second["authorization_state"] == issued
        assert second["contexts"] == ["extra"]
        # A fresh session (server forgot us) still gets every subscribed context back.
        relay_server.forget_sessions()
        await relay_server.drop_connection()
        await eventually(lambda: len(relay_server.received("signalwire.connect")) == 3)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        assert client.relay_protocol != protocol
        assert relay_server.subscribed_contexts() == {"extra"}


async def test_request_in_flight_at_a_drop_fails_with_connection_lost(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.withhold_next("test.never")
    async with make_client(relay_server) as client:
        async with anyio.create_task_group() as tg:

            async def drop_soon() -> None:
                await relay_server.wait_for_request("test.never")
                await relay_server.drop_connection()

            tg.start_soon(drop_soon)
            with pytest.raises(ConnectionLost):
                await client.execute("test.never", {})
        # ...and the client is back for the next one.
        assert (await client.execute("test.ok", {}))["code"] == "200"


@pytest.mark.parametrize("restart", [False, True])
async def test_server_disconnect(relay_server: FakeRelayServer, restart: bool) -> None:
    async with make_client(relay_server) as client:
        protocol = client.relay_protocol
        await relay_server.send_disconnect(restart=restart)
        await eventually(lambda: len(relay_server.received("signalwire.connect")) == 2)
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        second = relay_server.received("signalwire.connect")[1]["params"]
        if restart:
            assert "protocol" not in second and "authorization_state" not in second
            assert client.relay_protocol != protocol
        else:
            assert second["protocol"] == protocol
            assert client.relay_protocol == protocol
        assert (await client.execute("test.ok", {}))["code"] == "200"


@pytest.mark.parametrize(
    "frame",
    [
        "this is not json",
        b"\x00\x01binary",
        "[1, 2, 3]",
        '{"jsonrpc": "2.0", "id": "e1", "method": "signalwire.event", "params": {}}',
        '{"jsonrpc": "2.0", "id": "e2", "method": "signalwire.event", "params": "nope"}',
        '{"jsonrpc": "2.0", "id": "nobody", "result": {}}',
        '{"jsonrpc": "2.0", "id": "u1", "method": "something.unknown", "params": {}}',
    ],
)
async def test_malformed_frames_are_logged_and_survived(
    relay_server: FakeRelayServer, frame: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay_anyio")
    async with make_client(relay_server) as client:
        await relay_server.send_raw(frame)
        assert (await client.execute("test.ok", {}))["code"] == "200"
        assert relay_server.connections == 1
    assert any("ignored" in m or "unknown" in m for m in messages(caplog, logging.DEBUG))
    if "something.unknown" in str(frame):
        [reply] = [f for f in frames(relay_server, "in") if f.get("id") == "u1"]
        assert reply["error"]["code"] == -32601


async def test_max_active_calls_passes_extra_calls(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    release = anyio.Event()
    client = make_client(relay_server, max_active_calls=1)

    @client.on_call
    async def handle(call: Call) -> None:
        await release.wait()

    async with client:
        first = await relay_server.offer_call()
        second = await relay_server.offer_call()
        await relay_server.wait_for_request("calling.pass")
        assert [r["params"]["call_id"] for r in relay_server.received("calling.pass")] == [
            second.call_id
        ]
        assert client.active_calls == 1
        release.set()
        await first.remote_hangup()
    assert any("max_active_calls (1) reached" in m for m in messages(caplog))


async def test_missing_credentials_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN", "SIGNALWIRE_JWT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="SIGNALWIRE_PROJECT_ID"):
        RelayClient(contexts=["default"])
    with pytest.raises(ValueError, match="SIGNALWIRE_API_TOKEN"):
        RelayClient(project="p")
    with pytest.raises(ValueError, match="not a URL"):
        RelayClient(project="p", token="t", host="https://example.com/x")


async def test_env_credentials(
    monkeypatch: pytest.MonkeyPatch, relay_server: FakeRelayServer
) -> None:
    monkeypatch.setenv("SIGNALWIRE_PROJECT_ID", "test-project")
    monkeypatch.setenv("SIGNALWIRE_API_TOKEN", "test-token")
    async with RelayClient(url=relay_server.url, contexts=["default"], **FAST) as client:
        assert client.connection_state is ConnectionState.CONNECTED


async def test_connection_limit(
    relay_server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELAY_MAX_CONNECTIONS", raising=False)
    async with make_client(relay_server):
        with pytest.raises(RuntimeError, match="RELAY_MAX_CONNECTIONS"):
            async with make_client(relay_server):
                pass
        monkeypatch.setenv("RELAY_MAX_CONNECTIONS", "2")
        async with make_client(relay_server):
            pass


async def test_user_exception_propagates_unwrapped(relay_server: FakeRelayServer) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with make_client(relay_server):
            raise Boom


async def test_connection_states_are_reported_and_logged(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay_anyio")
    states: list[ConnectionState] = []
    client = make_client(relay_server)
    client.on_connection_state(states.append)
    async with client:
        await relay_server.drop_connection()
        await eventually(lambda: states.count(ConnectionState.CONNECTED) == 2)
    assert states == [
        ConnectionState.CONNECTED,
        ConnectionState.RECONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.CLOSED,
    ]
    logged = messages(caplog, logging.INFO)
    assert "connection state: reconnecting" in logged
    assert any("resumed session" in m for m in logged)


def test_max_active_calls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_MAX_ACTIVE_CALLS", "7")
    assert RelayClient(project="p", token="t").max_active_calls == 7
    monkeypatch.setenv("RELAY_MAX_ACTIVE_CALLS", "lots")
    assert RelayClient(project="p", token="t").max_active_calls == 1000
    assert RelayClient(project="p", token="t", max_active_calls=0).max_active_calls == 1


async def test_cancelling_around_the_client_still_hangs_up_handled_calls(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.play_duration = 60
    playing = anyio.Event()
    client = make_client(relay_server)

    @client.on_call
    async def handle(call: Call) -> None:
        await call.answer()
        await call.play([{"type": "tts", "text": "hold music"}])
        playing.set()
        await anyio.sleep_forever()

    with anyio.CancelScope() as scope:
        async with client:
            fake = await relay_server.offer_call()
            await playing.wait()
            scope.cancel()
    # The handler was cancelled and its call hung up, over the connection that stayed
    # up for exactly that (before the fix: "could not hang up ... client is closed").
    assert [r["params"]["call_id"] for r in relay_server.received("calling.end")] == [fake.call_id]
    await relay_server.wait_until(lambda: fake.state == "ended")  # follows the hangup's answer
