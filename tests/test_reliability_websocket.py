"""Regression tests for the WebSocket layer's failure paths, over in-memory streams.

Each test pins a bug that a loopback run only hits by chance: a race with the peer's
close, a write that fails in the middle of answering a ping, an engine that waits for
EOF after a non-HTTP answer.
"""

from __future__ import annotations

import struct

import anyio
import pytest

from relay_anyio import ConnectionLost, TransportError
from relay_anyio.lowlevel import WebSocket, open_websocket

from .test_websocket import MemoryByteStream, byte_stream_pair, pair, server_frame

pytestmark = pytest.mark.anyio

__all__ = ["pair"]  # the fixture, re-used from test_websocket


class GatedStream(MemoryByteStream):
    """A byte stream whose sends wait until ``gate`` is set (a slow or full socket)."""

    def __init__(self, inner: MemoryByteStream) -> None:
        super().__init__(inner._send, inner._receive)
        self.gate = anyio.Event()
        self.gate.set()
        self.fail_sends = False

    async def send(self, item: bytes) -> None:
        await self.gate.wait()
        if self.fail_sends:
            raise anyio.BrokenResourceError
        await super().send(item)


async def test_a_send_racing_the_peers_close_is_connection_lost(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    """While the reader echoes a close frame, a concurrent send must not reach the
    engine, which is CLOSING and would raise its own ``InvalidState``."""
    ws, raw = pair
    gated = GatedStream(ws._stream)  # type: ignore[arg-type]
    ws._stream = gated
    gated.gate = anyio.Event()  # the echo of the close frame blocks
    await raw.send(server_frame(8, struct.pack("!H", 4000) + b"bye"))
    outcome: list[BaseException] = []
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                with pytest.raises(ConnectionLost):
                    await ws.receive_batch()

            async def send() -> None:
                try:
                    await ws.send_text("racing the close")
                except Exception as exc:
                    outcome.append(exc)

            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()  # the reader is stuck echoing the close
            tg.start_soon(send)
            await anyio.wait_all_tasks_blocked()  # the send is in, racing the close
            gated.gate.set()
    [error] = outcome
    assert isinstance(error, ConnectionLost)
    assert error.close_code == 4000


async def test_messages_of_a_read_survive_a_failed_pong(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    """The link dies while the engine answers a ping that came with events: the
    events of that read are still handed over, then the loss is reported."""
    ws, raw = pair
    gated = GatedStream(ws._stream)  # type: ignore[arg-type]
    ws._stream = gated
    gated.fail_sends = True
    await raw.send(server_frame(1, b'{"n":1}') + server_frame(9, b"ping") + server_frame(1, b"2"))
    with anyio.fail_after(1):
        assert await ws.receive_batch() == ['{"n":1}', "2"]
        with pytest.raises(ConnectionLost) as lost:
            await ws.receive_batch()
    assert lost.value.close_code == 1006


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["ssh", "http-200", "http-404"],
)
async def test_a_non_websocket_answer_fails_at_once(answer: bytes) -> None:
    """The engine records the failure and waits for EOF; the peer may never close."""
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:

        async def peer() -> None:
            await server_end.receive()
            await server_end.send(answer)  # ...and the stream stays open

        tg.start_soon(peer)
        with anyio.fail_after(1), pytest.raises(TransportError) as failed:
            await open_websocket(client_end, "relay.test")
    await server_end.aclose()
    assert "WebSocket handshake with relay.test failed" in failed.value.message
    # Only an HTTP 4xx means "this URL is wrong": retrying cannot fix it.
    assert failed.value.fatal is answer.startswith(b"HTTP/1.1 404")
