"""Cancellation at every phase: connect, TLS, WebSocket handshake, authentication, a
request in flight, an action wait, a dial, a handler at shutdown.

Each test runs inside ``no_leaks()``: the number of open file descriptors and of
running tasks is the same after as before (and ``filterwarnings = error`` turns an
unclosed socket's ResourceWarning into a failure when ``gc.collect()`` finds it).
The phases that need a peer stalling at a precise point use raw listeners that
accept and then do nothing more.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme

from relay_anyio import Call, ConnectionState, PlayAction, RelayClient
from relay_anyio.lowlevel import Session, SessionOptions
from relay_anyio.testing import FakeRelayServer

from .helpers import FAST, eventually, make_client

pytestmark = pytest.mark.anyio


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def no_leaks() -> AsyncIterator[None]:
    gc.collect()
    fds = _fd_count()
    tasks = len(anyio.get_running_tasks())
    yield
    gc.collect()
    # Peers close their side when they see ours close: give them a moment.
    await eventually(lambda: _fd_count() == fds)
    await eventually(lambda: len(anyio.get_running_tasks()) == tasks)


def _client(url: str, **kwargs: Any) -> RelayClient:
    options: dict[str, Any] = {"project": "p", "token": "t", "url": url, **FAST}
    options.update(kwargs)
    return RelayClient(**options)


class _Quiet:
    """A session listener that ignores everything."""

    def session_event(self, event_type: str, params: dict[str, Any], timestamp: float) -> None:
        pass

    def session_state(self, state: ConnectionState, *, fresh_session: bool) -> None:
        pass


def _session(url: str, **kwargs: Any) -> Session:
    options: dict[str, Any] = {
        "url": url,
        "authentication": {"project": "p", "token": "t"},
        "request_timeout": 2.0,
        "reconnect_min_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "ping_interval": 3600.0,
    }
    options.update(kwargs)
    return Session(SessionOptions(**options), _Quiet())


async def _cancelled_while_connecting(session: Session, after: float) -> None:
    """Run the session under a deadline that expires while it connects."""
    with anyio.move_on_after(after) as scope:
        await session.run()
        pytest.fail("must not connect")
    assert scope.cancelled_caught
    assert session.state is ConnectionState.CLOSED
    assert not session.connected


# -- phases of opening ------------------------------------------------------------------


@contextmanager
def full_backlog() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: the kernel drops further SYNs, so a
    TCP connect to it hangs in the handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(address)
            except BlockingIOError:
                pass
            fillers.append(filler)
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_cancel_during_tcp_connect() -> None:
    async with no_leaks():
        with full_backlog() as (host, port):
            await _cancelled_while_connecting(_session(f"ws://{host}:{port}"), 0.3)


class Stall:
    port = 0
    accepted = 0


@asynccontextmanager
async def stalling_listener(*, read_request: bool) -> AsyncIterator[Stall]:
    """Accepts, optionally reads the first bytes (a ClientHello, an HTTP request),
    then answers nothing until the client leaves."""
    stalls = Stall()

    async def stall(stream: anyio.abc.SocketStream) -> None:
        stalls.accepted += 1
        async with stream:
            try:
                while True:
                    await stream.receive()
                    if not read_request:
                        break
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            try:  # only a close from the client ends this
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        stalls.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, stall)
            yield stalls
            tg.cancel_scope.cancel()


async def test_cancel_during_tls_handshake() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with no_leaks():
        async with stalling_listener(read_request=False) as stall:
            session = _session(f"wss://localhost:{stall.port}", ssl_context=context)
            await _cancelled_while_connecting(session, 0.3)


async def test_cancel_during_websocket_handshake() -> None:
    async with no_leaks():
        async with stalling_listener(read_request=True) as stall:
            await _cancelled_while_connecting(_session(f"ws://127.0.0.1:{stall.port}"), 0.3)


async def test_a_stalled_handshake_times_out_and_is_retried() -> None:
    """Without a deadline of its own, a peer that accepts and stalls would hang the
    reconnect loop for good (regression: there was no open timeout)."""
    async with no_leaks():
        async with stalling_listener(read_request=True) as stall:
            session = _session(f"ws://127.0.0.1:{stall.port}", request_timeout=0.2)
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.run)
                # Several attempts, each ended by the open timeout (0.2 s) and retried
                # (the peer never answers: nothing else could end one).
                await eventually(lambda: stall.accepted >= 3)
                tg.cancel_scope.cancel()
            assert session.connection_count == 0


async def test_ctrl_c_just_as_the_session_is_ready(
    monkeypatch: pytest.MonkeyPatch, anyio_backend_name: str
) -> None:
    """Ctrl+C in the instant between "connected" and ``__aenter__`` resuming: the
    client leaves cleanly, nothing connected is left behind, and nothing hangs.

    Regression (asyncio): ``asyncio.Runner`` turns Ctrl+C into ``task.cancel()`` of
    the main task, even when what it waits for is already done; anyio's
    ``TaskGroup.start`` then cancels the task it started and waits for it, and the
    session's scope, shielded as the session reported ready, made that wait last for
    ever. ``client.run()`` ignored a Ctrl+C sent just after its first event.
    """
    if anyio_backend_name != "asyncio":
        pytest.skip("asyncio.Runner's Ctrl+C is a native cancel; trio raises KeyboardInterrupt")
    async with no_leaks():
        async with FakeRelayServer() as server:
            client = make_client(server)
            session = client._session
            run = session.run
            entering: list[asyncio.Task[Any]] = []
            outcome: list[str] = []
            done = anyio.Event()

            async def run_then_interrupt(
                *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                class InterruptAsReady:
                    def started(self, value: None = None) -> None:
                        task_status.started()
                        entering[0].cancel()  # what asyncio.Runner does on SIGINT

                await run(task_status=InterruptAsReady())

            async def enter() -> None:
                task = asyncio.current_task()
                assert task is not None
                entering.append(task)
                try:
                    async with client:
                        outcome.append("entered")
                except asyncio.CancelledError:
                    task.uncancel()  # as asyncio.Runner does, before KeyboardInterrupt
                    outcome.append("interrupted")
                done.set()

            monkeypatch.setattr(session, "run", run_then_interrupt)
            async with anyio.create_task_group() as tg:
                tg.start_soon(enter)
                with anyio.move_on_after(10):  # it takes milliseconds
                    await done.wait()
                stuck = not done.is_set()
                if stuck:  # unstick it, or the test itself would hang
                    scope = client._session_scope
                    assert scope is not None
                    scope.cancel()
            assert not stuck, "an interrupt just as the session was ready hung the client"
            assert outcome == ["interrupted"]
            assert len(server.received("signalwire.connect")) == 1  # it had connected
            assert session.state is ConnectionState.CLOSED
            await server.wait_until(lambda: server.active_connections == 0)


async def test_cancel_during_authentication() -> None:
    async with no_leaks():
        async with FakeRelayServer() as server:
            server.withhold_next("signalwire.connect")
            await _cancelled_while_connecting(_session(server.url), 0.3)
            await server.wait_until(lambda: server.active_connections == 0)
            assert len(server.received("signalwire.connect")) == 1
            assert server.violations == []


# -- phases of a running client -----------------------------------------------------------


async def test_cancel_a_request_in_flight() -> None:
    async with no_leaks():
        async with FakeRelayServer() as server:
            server.withhold_next("test.never")
            async with make_client(server) as client:
                with anyio.move_on_after(0.2) as scope:
                    await client.execute("test.never", {})
                assert scope.cancelled_caught
                assert client._session._conn is not None
                assert client._session._conn.pending == {}
                assert (await client.execute("test.ok", {}))["code"] == "200"
            assert server.connections == 1
            assert server.violations == []


async def test_cancel_an_action_wait_then_a_handler_at_shutdown() -> None:
    """The wait is cancelled, the action lives on; at shutdown the call still being
    handled is hung up (shielded, bounded) and nothing is left running."""
    async with no_leaks():
        async with FakeRelayServer() as server:
            server.play_duration = 3600.0
            client = make_client(server, shutdown_timeout=2.0)
            phases: list[str] = []

            @client.on_call
            async def handle(call: Call) -> None:
                await call.answer()
                play: PlayAction = await call.play([{"type": "tts", "text": "long"}])
                with anyio.move_on_after(0.1):
                    await play.wait()
                phases.append("wait cancelled" if not play.is_done else "done?!")
                await anyio.sleep_forever()  # still handling when the client exits

            with anyio.move_on_after(20) as outer:  # only if something hangs
                async with client:
                    fake = await server.offer_call()
                    await eventually(lambda: phases == ["wait cancelled"])
                    outer.cancel()  # the application is cancelled
            assert outer.cancelled_caught
            [end] = server.received("calling.end")
            assert end["params"]["call_id"] == fake.call_id
            await fake.wait_for_state("ended")
            # The play the handler left running ended with the call, on the server.
            assert all(not a.active for a in fake.actions.values())
            assert server.violations == []


async def test_cancel_a_dial_ends_its_legs() -> None:
    async with no_leaks():
        async with FakeRelayServer() as server:
            server.script_dial(["answer", "answer"], answer_delay=3600.0)
            async with make_client(server) as client:
                device = {"type": "phone", "params": {"to_number": "+1", "from_number": "+2"}}
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.dial, [[device, device]])
                    await eventually(lambda: client.active_calls == 2)  # both legs ringing
                    tg.cancel_scope.cancel()
                legs = [c for c in server.calls.values() if c.direction == "outbound"]
                assert len(legs) == 2
                for leg in legs:
                    await leg.wait_for_state("ended")
                ended = {r["params"]["call_id"] for r in server.received("calling.end")}
                assert ended == {leg.call_id for leg in legs}
                await eventually(lambda: client.active_calls == 0)
            assert server.violations == []


async def test_entering_the_client_can_be_cancelled_while_it_connects() -> None:
    async with no_leaks():
        with full_backlog() as (host, port):
            client = _client(f"ws://{host}:{port}")
            done = anyio.Event()
            async with anyio.create_task_group() as tg:

                async def enter() -> None:
                    with anyio.move_on_after(0.3):
                        async with client:
                            pass
                    done.set()

                tg.start_soon(enter)
                with anyio.move_on_after(10):  # cancelled after 0.3 s, it takes ms to leave
                    await done.wait()
                stuck = not done.is_set()
                if stuck:  # unstick it, or the test itself would hang
                    scope = client._session_scope
                    assert scope is not None
                    scope.shield = False
                    scope.cancel()
            assert not stuck, "entering the client could not be cancelled while connecting"
