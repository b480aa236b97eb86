"""Half-open links: the server stops reading and answering but never closes.

Only the keepalive can tell: a ``signalwire.ping`` every ``ping_interval`` seconds,
declared dead after ``ping_timeout`` more. Detection therefore takes at most
``ping_interval + ping_timeout``; each test's name states the window it checks.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import anyio
import pytest
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from relay_anyio import ConnectionLost, ConnectionState, RelayClient
from relay_anyio.lowlevel import TransportName
from relay_anyio.testing import FakeRelayServer

from .helpers import eventually, make_client

pytestmark = pytest.mark.anyio

PING_INTERVAL = 0.1
PING_TIMEOUT = 0.2
WINDOW = PING_INTERVAL + PING_TIMEOUT
#: Timing is what these tests are about, so they keep a wall-clock bound, but a
#: generous one: on a loaded 2-core machine (asyncio in debug mode) the loop itself
#: can be late by a good fraction of a second (400 task spawns alone took 0.4 s, and
#: with two CPU-bound processes and a second test suite beside it, encoding the 25 MiB
#: flood pushed one detection to 3.5 s). ``WINDOW + SLACK`` still tells detection by
#: the keepalive from no detection at all, which only the 10 s request timeout would end.
SLACK = 6.0
#: Leaving a client with writes blocked on a dead peer: prompt means well under the
#: 10 s request timeout a write stuck until then would take (generous for load).
PROMPT_SHUTDOWN = 3.0


async def test_half_open_link_detected_within_0_1_s_interval_plus_0_2_s_timeout(
    relay_server: FakeRelayServer,
) -> None:
    states: list[tuple[ConnectionState, float]] = []
    client = make_client(relay_server, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    client.on_connection_state(lambda s: states.append((s, anyio.current_time())))
    relay_server.withhold_next("test.slow")
    lost: list[ConnectionLost] = []
    async with client:
        protocol = client.relay_protocol
        await eventually(lambda: len(relay_server.received("signalwire.ping")) >= 1)

        async def in_flight() -> None:
            try:
                await client.execute("test.slow", {})
            except ConnectionLost as exc:
                lost.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(in_flight)
            await relay_server.wait_for_request("test.slow")
            silent_since = anyio.current_time()
            relay_server.stop_reading()
        await eventually(lambda: any(s is ConnectionState.RECONNECTING for s, _ in states))
        detected = next(t for s, t in states if s is ConnectionState.RECONNECTING)
        assert detected - silent_since <= WINDOW + SLACK
        # The reconnect follows and resumes the same session.
        await eventually(lambda: client.connection_state is ConnectionState.CONNECTED)
        assert client.relay_protocol == protocol
        assert relay_server.connections == 2
        assert (await client.execute("test.ok", {}))["code"] == "200"
    [error] = lost
    assert "test.slow" in error.message
    assert f"no reply to signalwire.ping within {PING_TIMEOUT:g} s" in error.message


class StalledRelayPeer:
    """A RELAY server that authenticates the client, then never reads again.

    Plain blocking sockets in a thread: no event loop drains the socket behind the
    test's back, so the client's writes really block once the kernel buffers are
    full, as with a peer whose process hangs. The thread ends once the client is
    authenticated, or when ``close`` asks it to (its socket calls time out often so
    it sees the request); ``close`` always joins it.
    """

    #: How often the thread's blocking calls look up from the socket.
    POLL = 0.05

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(self.POLL)
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.authenticated = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(10)
        try:
            if self._thread.is_alive():
                raise RuntimeError("the stalled peer's thread did not stop")
        finally:
            for sock in self.sockets:
                sock.close()
            self.listener.close()

    def _serve(self) -> None:
        sock = self._accept()
        if sock is None:
            return
        proto = ServerProtocol(max_size=None)
        while not self.authenticated.is_set():
            data = self._recv(sock)
            if data is None:
                return
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    proto.send_response(proto.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    request = json.loads(bytes(event.data))
                    if request.get("method") == "signalwire.connect":
                        result = {"protocol": "signalwire_stalled", "identity": "x"}
                        proto.send_text(
                            json.dumps(
                                {"jsonrpc": "2.0", "id": request["id"], "result": result}
                            ).encode()
                        )
                        self.authenticated.set()
            sock.settimeout(10)  # a few KiB to a client that reads
            sock.sendall(b"".join(proto.data_to_send()))
        # ...and from now on nothing is read or written; the socket stays open.

    def _accept(self) -> socket.socket | None:
        while not self._closing.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.sockets.append(sock)
            return sock
        return None

    def _recv(self, sock: socket.socket) -> bytes | None:
        sock.settimeout(self.POLL)
        while not self._closing.is_set():
            try:
                return sock.recv(65536)
            except TimeoutError:
                continue
        return None


@pytest.fixture
def stalled_peer(transport: TransportName) -> Iterator[StalledRelayPeer]:
    # Depends on ``transport`` so that its skip comes first: a peer started for a
    # skipped test would have nothing to serve.
    peer = StalledRelayPeer()
    try:
        yield peer
    finally:
        peer.close()


async def test_half_open_with_full_send_buffers_detected_within_0_3_s_window(
    stalled_peer: StalledRelayPeer, transport: TransportName
) -> None:
    """The client keeps writing until its socket buffer is full; the keepalive's ping
    cannot even be written. Detection still takes one window, every write blocked on
    the dead peer ends with ConnectionLost, and the client shuts down at once."""
    client = RelayClient(
        project="p",
        token="t",
        url=f"ws://127.0.0.1:{stalled_peer.port}",
        transport=transport,
        request_timeout=10.0,  # longer than the test: only the keepalive may end it
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        reconnect_min_delay=5.0,
        reconnect_max_delay=5.0,
    )
    states: list[tuple[ConnectionState, float]] = []
    client.on_connection_state(lambda s: states.append((s, anyio.current_time())))
    outcomes: list[str] = []
    payload = {"data": "x" * 65536}
    with anyio.fail_after(10):
        async with client:

            async def flood() -> None:
                try:
                    await client.execute("test.big", payload)
                except ConnectionLost:
                    outcomes.append("lost")

            async with anyio.create_task_group() as tg:
                started = anyio.current_time()
                for _ in range(400):  # 25 MiB: far beyond any socket buffer
                    tg.start_soon(flood)
            detected = next(t for s, t in states if s is ConnectionState.RECONNECTING)
            closing = anyio.current_time()
        shutdown = anyio.current_time() - closing
    assert outcomes == ["lost"] * 400
    assert detected - started <= WINDOW + SLACK
    assert shutdown < PROMPT_SHUTDOWN  # nothing stays blocked on the dead peer


async def test_shutdown_is_prompt_while_writes_are_blocked_on_a_dead_peer(
    stalled_peer: StalledRelayPeer, transport: TransportName
) -> None:
    """Writes are shielded (a cancelled partial write would corrupt the link), so
    leaving the client must close the link to end them rather than wait for them."""
    client = RelayClient(
        project="p",
        token="t",
        url=f"ws://127.0.0.1:{stalled_peer.port}",
        transport=transport,
        request_timeout=10.0,
        ping_interval=3600.0,  # no keepalive: only the shutdown can end the writes
    )
    payload = {"data": "x" * 65536}
    outcomes: list[str] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with client:

                async def flood() -> None:
                    try:
                        await client.execute("test.big", payload)
                    except ConnectionLost:
                        outcomes.append("lost")

                for _ in range(400):
                    tg.start_soon(flood)
                # Every task waits: the writer on the full socket, the rest behind it.
                await anyio.wait_all_tasks_blocked()
                closing = anyio.current_time()
            shutdown = anyio.current_time() - closing
    assert outcomes == ["lost"] * 400
    assert shutdown < PROMPT_SHUTDOWN
