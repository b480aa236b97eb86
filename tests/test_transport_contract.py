"""One contract, two transports: what the session may rely on from ``open_transport``.

Every test runs against :class:`FakeRelayServer` over real loopback sockets, plain and
TLS, with ``transport="native"`` (our sans-I/O engine) on asyncio and trio and with
``transport="trio-websocket"`` on trio (skipped on asyncio, where it cannot run).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import pytest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from relay_anyio import (
    EVENT_CALL_PLAY,
    Call,
    ConnectionLost,
    ConnectionState,
    RelayClient,
    TransportError,
)
from relay_anyio._transport import CA_FILE_ENV, MessageTransport, TransportName, open_transport
from relay_anyio.testing import FakeRelayServer, HandlerContext, ok

from .helpers import FAST, eventually, make_client

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
PROJECT_AUTH = {"project": "test-project", "token": "test-token"}


@pytest.fixture(params=[False, True], ids=["ws", "wss"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeRelayServer]:
    async with FakeRelayServer(tls=request.param) as relay:
        relay.set_handler("test.echo", _echo)
        yield relay
    # The raw clients of these tests speak the protocol properly too.
    assert relay.violations == []


async def _echo(ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
    return ok(data=params.get("data"))


def _context(server: FakeRelayServer) -> ssl.SSLContext | None:
    return server.client_ssl_context() if server.tls else None


def _request(rid: str, method: str, params: dict[str, Any] | None = None) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})


def _connect_frame(rid: str = "c1") -> str:
    params = {
        "version": {"major": 2, "minor": 0, "revision": 0},
        "agent": "contract-test/0",
        "event_acks": True,
        "authentication": PROJECT_AUTH,
    }
    return _request(rid, "signalwire.connect", params)


async def _until_ids(ws: MessageTransport, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Read until a frame with each id has arrived; returns them by id."""
    found: dict[str, dict[str, Any]] = {}
    while not ids <= found.keys():
        for raw in await ws.receive_batch():
            assert isinstance(raw, str)
            frame = json.loads(raw)
            if frame.get("id") in ids:
                found[frame["id"]] = frame
    return found


async def _authenticate(ws: MessageTransport) -> dict[str, Any]:
    await ws.send_text(_connect_frame())
    return (await _until_ids(ws, {"c1"}))["c1"]


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- open, exchange, size ------------------------------------------------------------------


async def test_open_send_and_receive(server: FakeRelayServer, transport: TransportName) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            response = await _authenticate(ws)
            assert response["result"]["protocol"].startswith("signalwire_")
            # Several messages in one call, answered in order.
            await ws.send_texts([_request(f"p{n}", "signalwire.ping") for n in range(5)])
            pongs = await _until_ids(ws, {f"p{n}" for n in range(5)})
            assert all(p["result"] == {} for p in pongs.values())
        await server.wait_until(lambda: server.active_connections == 0)
    assert server.close_codes == {1: 1000}
    assert server.violations == []


async def test_one_mib_message_both_ways(server: FakeRelayServer, transport: TransportName) -> None:
    data = "x" * MIB
    with anyio.fail_after(10):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            await ws.send_text(_request("big", "test.echo", {"data": data}))
            echoed = await _until_ids(ws, {"big"})
    assert echoed["big"]["result"]["data"] == data


async def test_messages_before_a_close_are_delivered_first(
    server: FakeRelayServer, transport: TransportName
) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            for n in range(3):
                await server.send_raw(_request(f"s{n}", "test.notice"))
            await server.close_connection(4001, "after three")
            seen: list[str] = []
            with pytest.raises(ConnectionLost) as lost:
                while True:
                    for raw in await ws.receive_batch():
                        frame = json.loads(raw)
                        if frame.get("method") == "test.notice":
                            seen.append(frame["id"])
    assert seen == ["s0", "s1", "s2"]
    assert lost.value.close_code == 4001


# -- closing -------------------------------------------------------------------------------


async def test_server_close_is_connection_lost_with_the_code(
    server: FakeRelayServer, transport: TransportName
) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            await server.close_connection(4000, "going away")
            with pytest.raises(ConnectionLost) as lost:
                while True:
                    await ws.receive_batch()
            assert lost.value.close_code == 4000
            assert "4000" in lost.value.message
            with pytest.raises(ConnectionLost):
                await ws.send_text(_request("late", "signalwire.ping"))


async def test_server_abort_is_connection_lost(
    server: FakeRelayServer, transport: TransportName
) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            await server.drop_connection()
            with pytest.raises(ConnectionLost) as lost:
                while True:
                    await ws.receive_batch()
            assert lost.value.close_code == 1006
            with pytest.raises(ConnectionLost):
                await ws.send_text(_request("late", "signalwire.ping"))


async def test_client_aclose_sends_a_close_frame(
    server: FakeRelayServer, transport: TransportName
) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            await ws.aclose(4002, "done here")
            with pytest.raises(ConnectionLost):
                await ws.send_text(_request("late", "signalwire.ping"))
            with pytest.raises(ConnectionLost):
                await ws.receive_batch()
            await ws.aclose()  # idempotent
        await server.wait_until(lambda: server.active_connections == 0)
    assert server.close_codes == {1: 4002}


async def test_client_abort_sends_no_close_frame(
    server: FakeRelayServer, transport: TransportName
) -> None:
    with anyio.fail_after(5):
        async with open_transport(
            server.url, transport=transport, ssl_context=_context(server)
        ) as ws:
            await _authenticate(ws)
            await ws.abort()
            with pytest.raises(ConnectionLost):
                await ws.send_text(_request("late", "signalwire.ping"))
            with pytest.raises(ConnectionLost):
                await ws.receive_batch()
        await server.wait_until(lambda: server.active_connections == 0)
    assert server.close_codes == {1: None}


# -- failing to open -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "ws://", "relay.signalwire.com", "wss://:443", "ws://h:port"]
)
async def test_bad_url_is_a_value_error(url: str, transport: TransportName) -> None:
    with pytest.raises(ValueError, match="RELAY URL"):
        open_transport(url, transport=transport)


async def test_refused_port_is_a_retryable_transport_error(transport: TransportName) -> None:
    port = _free_port()
    with anyio.fail_after(5), pytest.raises(TransportError) as failed:
        async with open_transport(f"ws://127.0.0.1:{port}", transport=transport):
            pytest.fail("must not open")
    assert not failed.value.fatal
    assert str(port) in failed.value.message


async def test_untrusted_certificate_is_fatal(transport: TransportName) -> None:
    async with FakeRelayServer(tls=True) as server:
        with anyio.fail_after(5), pytest.raises(TransportError) as failed:
            async with open_transport(
                server.url, transport=transport, ssl_context=ssl.create_default_context()
            ):
                pytest.fail("must not open")
        assert failed.value.fatal
        assert "certificate" in failed.value.message
        assert CA_FILE_ENV in failed.value.message
        assert server.connections == 0  # nothing got past TLS


async def test_context_without_verification_is_refused(transport: TransportName) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="certificate and hostname"):
        open_transport("wss://localhost:1", transport=transport, ssl_context=context)


async def test_non_websocket_server_fails_the_handshake(transport: TransportName) -> None:
    """A peer that answers with something that is not HTTP must not hang the client."""

    async def garbage(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"SSH-2.0-OpenSSH_9.6\r\n")
            await anyio.sleep(10)  # and keeps the socket open

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, garbage)
            with anyio.fail_after(5), pytest.raises(TransportError) as failed:
                # wsproto fails on the status line; trio-websocket's parser waits for
                # more, so the open timeout ends it.
                url = f"ws://127.0.0.1:{port}"
                async with open_transport(url, transport=transport, open_timeout=0.5):
                    pytest.fail("must not open")
            tg.cancel_scope.cancel()
    assert "WebSocket handshake" in failed.value.message
    assert not failed.value.fatal


# -- the whole client on each transport ----------------------------------------------------


async def test_relay_client_end_to_end(server: FakeRelayServer, transport: TransportName) -> None:
    """A call with a play, a dropped link in the middle, the session resumed."""
    client = make_client(server, transport=transport)
    seen: list[str] = []
    done = anyio.Event()

    @client.on_call
    async def handle(call: Call) -> None:
        call.on(EVENT_CALL_PLAY, lambda event: seen.append(event.params["state"]))
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hello"}])
        await play.wait()
        await call.hangup()
        await call.wait_for_ended()
        done.set()

    server.play_duration = 0.2
    with anyio.fail_after(10):
        async with client:
            protocol = client.relay_protocol
            await server.offer_call()
            await eventually(lambda: seen == ["playing"])
            await server.wait_until(lambda: not server.unacked_events())
            await server.drop_connection()
            await done.wait()
            assert client.relay_protocol == protocol
            assert server.connections == 2
            # Every event is acknowledged (the last acks may still be on their way).
            await server.wait_until(lambda: not server.unacked_events())
            await eventually(lambda: seen == ["playing", "finished"])


async def test_relay_client_over_wss_with_the_ca_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, transport: TransportName
) -> None:
    """The production path: ``host=`` only, so ``wss://`` and the default context."""
    async with FakeRelayServer(tls=True) as server:
        monkeypatch.setenv(CA_FILE_ENV, str(server.ca_pem_path(tmp_path)))
        client = RelayClient(
            project="test-project",
            token="test-token",
            host=f"localhost:{server.port}",
            contexts=["default"],
            transport=transport,
            **FAST,
        )
        assert client.url == f"wss://localhost:{server.port}"
        with anyio.fail_after(5):
            async with client:
                assert client.connection_state is ConnectionState.CONNECTED
                await client.execute("signalwire.ping", {})
        assert server.violations == []


async def test_relay_client_over_wss_with_an_ssl_context(transport: TransportName) -> None:
    async with FakeRelayServer(tls=True) as server:
        client = RelayClient(
            project="test-project",
            token="test-token",
            host=f"localhost:{server.port}",
            ssl_context=server.client_ssl_context(),
            transport=transport,
            **FAST,
        )
        with anyio.fail_after(5):
            async with client:
                await client.execute("signalwire.ping", {})
                await server.drop_connection()
                await eventually(lambda: server.connections == 2)
                await client.execute("signalwire.ping", {})
        assert server.violations == []


async def test_relay_client_without_the_ca_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, transport: TransportName
) -> None:
    monkeypatch.delenv(CA_FILE_ENV, raising=False)
    async with FakeRelayServer(tls=True) as server:
        client = RelayClient(
            project="test-project",
            token="test-token",
            host=f"localhost:{server.port}",
            transport=transport,
            **FAST,
        )
        with anyio.fail_after(5), pytest.raises(TransportError) as failed:
            async with client:
                pytest.fail("must not connect")
        assert failed.value.fatal
        assert server.connections == 0
        assert client.connection_state is ConnectionState.CLOSED


# -- a peer that stops reading ---------------------------------------------------------------


class BlockingPeer:
    """A WebSocket server on a plain blocking socket that reads only when told to.

    No event loop drains its socket (anyio on asyncio reads eagerly into memory), so
    the client's writes really block once the kernel buffers are full. Its methods
    block: run them with ``anyio.to_thread.run_sync``.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sock: socket.socket | None = None
        self.proto = ServerProtocol(max_size=None)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.listener.close()

    def handshake(self) -> None:
        self.sock, _ = self.listener.accept()
        while True:
            self.proto.receive_data(self.sock.recv(65536))
            for event in self.proto.events_received():
                if isinstance(event, Request):
                    self.proto.send_response(self.proto.accept(event))
                    self.sock.sendall(b"".join(self.proto.data_to_send()))
                    return

    def read_messages(self, count: int) -> list[str]:
        """Read until ``count`` text messages arrived; fails on any protocol error."""
        assert self.sock is not None
        self.sock.settimeout(10)
        messages: list[str] = []
        while len(messages) < count:
            self.proto.receive_data(self.sock.recv(1 << 20))
            assert self.proto.parser_exc is None, self.proto.parser_exc
            for frame in self.proto.events_received():
                assert isinstance(frame, Frame)
                if frame.opcode is Opcode.TEXT:
                    messages.append(bytes(frame.data).decode())
        return messages


@pytest.fixture
def blocking_peer() -> Iterator[BlockingPeer]:
    peer = BlockingPeer()
    try:
        yield peer
    finally:
        peer.close()


@asynccontextmanager
async def _open_to(peer: BlockingPeer, transport: TransportName) -> AsyncIterator[MessageTransport]:
    # The peer handshakes in a plain thread: a task group here would have to close
    # around the transport's own task group.
    handshake = threading.Thread(target=peer.handshake, daemon=True)
    handshake.start()
    async with open_transport(f"ws://127.0.0.1:{peer.port}", transport=transport) as ws:
        handshake.join(5)
        yield ws


async def test_abort_ends_a_send_blocked_on_a_peer_that_stopped_reading(
    blocking_peer: BlockingPeer, transport: TransportName
) -> None:
    chunk = "x" * 65536
    failed: list[BaseException] = []
    with anyio.fail_after(10):
        async with _open_to(blocking_peer, transport) as ws:

            async def flood() -> None:
                try:
                    for _ in range(2000):  # 128 MiB: far more than any socket buffer
                        await ws.send_text(chunk)
                except ConnectionLost as exc:
                    failed.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(flood)
                await anyio.wait_all_tasks_blocked()  # the flood is blocked on the peer
                assert not failed
                started = anyio.current_time()
                await ws.abort()
            # At once (the peer never reads: blocked, it would wait for good); generous.
            assert anyio.current_time() - started < 5.0
    assert len(failed) == 1


async def test_a_cancelled_blocked_send_still_writes_whole_frames(
    blocking_peer: BlockingPeer, transport: TransportName
) -> None:
    """Cancelling a send half-way through must not leave a partial frame on the wire.

    A partial frame would make every later frame garbage (the peer's parser would
    fail). Where a send can stop half-way (anyio's TLS stream, trio's sockets) the
    first send blocks and the cancellation takes effect once its frame is written
    whole; the native asyncio stream takes the first frame whole into its buffer and
    blocks the second before writing any of it. Either way the peer reads whole
    frames: the first, never the second, then the one after the cancellation.
    """
    big = "a" * (8 * MIB)  # more than the kernel buffers hold: the write blocks
    never = "b" * (8 * MIB)
    received: list[list[str]] = []
    with anyio.fail_after(10):
        async with _open_to(blocking_peer, transport) as ws:
            async with anyio.create_task_group() as tg:

                async def drain_later() -> None:
                    await anyio.sleep(0.5)  # well after the cancellation
                    messages = await anyio.to_thread.run_sync(blocking_peer.read_messages, 2)
                    received.append(messages)

                tg.start_soon(drain_later)
                with anyio.move_on_after(0.2) as scope:
                    await ws.send_text(big)
                    await ws.send_text(never)
                assert scope.cancel_called
                await ws.send_text("after")
    [(first, second)] = received
    assert first == big
    assert second == "after"


async def test_sends_during_a_blocked_write_queue_behind_it_in_order(
    blocking_peer: BlockingPeer,
) -> None:
    """Group commit: senders do not wait for a write in progress; order is kept.

    The peer gets the messages in the order the sends were called. (Which big send
    blocks differs: trio blocks in the first; the native asyncio stream buffers the
    first whole and blocks the second.)
    """
    called: list[str] = []
    async with _open_to(blocking_peer, "native") as ws:

        async def send(text: str) -> None:
            called.append(text)
            await ws.send_text(text)

        async with anyio.create_task_group() as tg:

            async def big_writes() -> None:
                await send("a" * (8 * MIB))
                await send("b" * (8 * MIB))

            tg.start_soon(big_writes)
            await anyio.wait_all_tasks_blocked()  # the writer waits for the peer
            with anyio.fail_after(1):  # queued behind it, so none of these blocks
                for n in range(5):
                    await send(f"small {n}")
            received = await anyio.to_thread.run_sync(blocking_peer.read_messages, 7)
    assert received == called


async def test_frames_queued_behind_a_cancelled_writer_still_go_out(
    blocking_peer: BlockingPeer,
) -> None:
    """The writer's cancellation does not strand the frames others queued behind it.

    Where a send can stop half-way (trio) the first frame goes out whole and the
    cancellation stops the second; on the native asyncio stream the first is
    buffered whole and the second, cancelled while waiting to drain, never starts.
    Either way the peer gets the first frame, then the queued ones.
    """
    first, second = "a" * (8 * MIB), "b" * (8 * MIB)
    smalls = [f"small {n}" for n in range(5)]
    async with _open_to(blocking_peer, "native") as ws:
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def big_writes() -> None:
                with scope:
                    await ws.send_text(first)
                    await ws.send_text(second)

            tg.start_soon(big_writes)
            await anyio.wait_all_tasks_blocked()
            for text in smalls:
                await ws.send_text(text)
            scope.cancel()
            received = await anyio.to_thread.run_sync(blocking_peer.read_messages, 6)
        await ws.send_text("after")
        assert await anyio.to_thread.run_sync(blocking_peer.read_messages, 1) == ["after"]
    assert received == [first, *smalls]
