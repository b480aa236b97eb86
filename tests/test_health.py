"""``client.health()`` and its HTTP endpoint, against the fake server on loopback.

The endpoint is tested with a real HTTP client (httpx) and, for what no polite
client sends (a garbage request line, a head that never ends), a raw TCP socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs
import httpx
import pytest

import relay_anyio._health
from relay_anyio import Health, RelayClient, serve_health
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def health_endpoint(client: RelayClient) -> AsyncIterator[str]:
    """Serve ``client``'s health on a free loopback port; yield its base URL."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_health, client, 0, "127.0.0.1")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


async def raw_exchange(base: str, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection (then EOF), and read the whole response."""
    port = int(base.rsplit(":", 1)[1])
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        if half_close:
            await stream.send_eof()
        response = b""
        with anyio.fail_after(10):  # a failure detector only
            while True:
                try:
                    response += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return response


async def test_health_follows_the_link_and_the_load(relay_server: FakeRelayServer) -> None:
    client = make_client(relay_server)
    before = client.health()
    assert (before.state, before.ready, before.reconnects, before.active_calls) == (
        "connecting",
        False,
        0,
        0,
    )
    assert before.last_frame_age is None and before.ping_rtt is None
    calls = anyio.Event()
    release = anyio.Event()

    @client.on_call
    async def handle(call: object) -> None:
        calls.set()
        await release.wait()

    async with client:
        now = client.health()
        assert now.ready and now.state == "connected"
        assert now.last_frame_age is not None and 0 <= now.last_frame_age < 60
        assert 0 <= now.state_age < 60
        await relay_server.offer_call()
        with anyio.fail_after(10):
            await calls.wait()
        assert client.health().active_calls == 1
        relay_server.withhold_next("test.ok")
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.execute, "test.ok", {})
            await eventually(lambda: client.health().requests_in_flight == 1)
            tg.cancel_scope.cancel()
        assert client.health().requests_in_flight == 0
        await relay_server.drop_connection()
        await eventually(lambda: relay_server.connections == 2 and client.health().ready)
        assert client.health().reconnects == 1
        release.set()
    after = client.health()
    assert after.state == "closed" and not after.ready


def test_health_is_a_frozen_json_ready_value() -> None:
    health = Health.capture(
        state="connected",
        state_since=0.0,
        state_since_wall=1_700_000_000.0,
        last_frame_at=None,
        ping_rtt=0.004,
        reconnects=2,
        requests_in_flight=1,
        active_calls=3,
        listener_overflows=0,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        health.state = "closed"  # type: ignore[misc]
    data = json.loads(health.to_json())
    assert data == health.to_dict()
    assert data["ready"] is True
    assert data["last_frame_age"] is None
    assert data["state_since"] == 1_700_000_000.0
    assert set(data) == {
        "ready",
        "state",
        "state_age",
        "state_since",
        "last_frame_age",
        "ping_rtt",
        "reconnects",
        "requests_in_flight",
        "active_calls",
        "listener_overflows",
    }


async def test_healthz_and_readyz_over_http(relay_server: FakeRelayServer) -> None:
    client = make_client(relay_server)
    async with health_endpoint(client) as base, httpx.AsyncClient(base_url=base) as http:
        # Not entered yet: alive, not ready.
        live = await http.get("/healthz")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/json"
        assert live.json()["state"] == "connecting"
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["ready"] is False
        async with client:
            ready = await http.get("/readyz?verbose=1")
            assert ready.status_code == 200
            body = ready.json()
            assert body["ready"] is True and body["state"] == "connected"
            assert body["active_calls"] == 0 and body["reconnects"] == 0
            head = await http.head("/readyz")
            assert head.status_code == 200 and head.content == b""
            assert int(head.headers["content-length"]) > 0
        closed = await http.get("/readyz")
        assert closed.status_code == 503 and closed.json()["state"] == "closed"
        assert (await http.get("/healthz")).status_code == 200


async def test_the_endpoint_refuses_what_it_does_not_serve(relay_server: FakeRelayServer) -> None:
    client = make_client(relay_server)
    async with health_endpoint(client) as base, httpx.AsyncClient(base_url=base) as http:
        missing = await http.get("/metrics")
        assert missing.status_code == 404
        assert "healthz" in missing.json()["error"]
        post = await http.post("/healthz", content=b"{}")
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        huge = await http.get("/healthz", headers={"x-padding": "a" * 10_000})
        assert huge.status_code == 431
        # A head that never ends is cut at the limit, not read until the deadline.
        endless = await raw_exchange(base, b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 20_000)
        assert endless.startswith(b"HTTP/1.1 431 ")
        garbage = await raw_exchange(base, b"HELLO\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        # A head without its blank line, then the peer's half-close: judged as it is.
        short = await raw_exchange(base, b"GET /healthz HTTP/1.0\r\n", half_close=True)
        assert short.startswith(b"HTTP/1.1 200 OK\r\n")
        # Still serving after all that.
        assert (await http.get("/healthz")).status_code == 200


async def test_a_client_that_never_finishes_its_request_gets_408(
    relay_server: FakeRelayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_anyio._health, "REQUEST_DEADLINE", 0.2)
    client = make_client(relay_server)
    async with health_endpoint(client) as base:
        port = int(base.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line
            with anyio.fail_after(10):  # a failure detector only
                response = await stream.receive()
        assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
