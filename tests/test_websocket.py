"""The WebSocket layer over in-memory byte streams: frames written by hand."""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from relay_anyio import ConnectionLost, ProtocolError
from relay_anyio._websocket import WebSocket, accept_websocket, open_websocket

pytestmark = pytest.mark.anyio


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-memory byte pipe (anyio has object pipes, not byte pipes)."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive

    async def send(self, item: bytes) -> None:
        try:
            await self._send.send(item)
        except anyio.ClosedResourceError:
            raise anyio.BrokenResourceError from None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise
        except anyio.ClosedResourceError:
            raise anyio.EndOfStream from None

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def byte_stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](100)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](100)
    return MemoryByteStream(a_send, a_receive), MemoryByteStream(b_send, b_receive)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server->client frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


@pytest.fixture
async def pair() -> AsyncIterator[tuple[WebSocket, MemoryByteStream]]:
    """A client WebSocket and the raw server end of its stream (handshake done)."""
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        result: list[WebSocket] = []

        async def connect() -> None:
            result.append(await open_websocket(client_end, "relay.test"))

        tg.start_soon(connect)
        request = await server_end.receive()
        assert request.startswith(b"GET / HTTP/1.1")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        import base64
        import hashlib

        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        await server_end.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
    yield result[0], server_end
    await result[0].abort()
    await server_end.aclose()


async def test_batch_of_messages_from_one_read(pair: tuple[WebSocket, MemoryByteStream]) -> None:
    ws, raw = pair
    await raw.send(b"".join(server_frame(1, f'{{"n":{i}}}'.encode()) for i in range(5)))
    with anyio.fail_after(1):
        assert await ws.receive_batch() == [f'{{"n":{i}}}' for i in range(5)]


async def test_fragments_with_a_ping_between_them(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    await raw.send(
        server_frame(1, b"hel", fin=False)
        + server_frame(9, b"are you there")  # ping between fragments
        + server_frame(0, b"lo ", fin=False)
        + server_frame(0, "wörld".encode())
    )
    with anyio.fail_after(1):
        assert await ws.receive_batch() == ["hello wörld"]
        pong = await raw.receive()
    assert pong[0] == 0x8A  # FIN + pong, masked by the client
    assert pong[1] & 0x80


async def test_binary_message(pair: tuple[WebSocket, MemoryByteStream]) -> None:
    ws, raw = pair
    await raw.send(server_frame(2, b"\x00\x01"))
    with anyio.fail_after(1):
        assert await ws.receive_batch() == [b"\x00\x01"]


async def test_invalid_utf8_closes_with_1007(pair: tuple[WebSocket, MemoryByteStream]) -> None:
    ws, raw = pair
    await raw.send(server_frame(1, b"\xff\xfe"))
    with anyio.fail_after(1), pytest.raises(ProtocolError, match="UTF-8"):
        await ws.receive_batch()
    assert ws.close_code == 1007


async def test_message_over_the_size_limit_closes_with_1009() -> None:
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        accepted: list[WebSocket] = []

        async def serve() -> None:
            accepted.append(await accept_websocket(server_end))

        tg.start_soon(serve)
        client = await open_websocket(client_end, "relay.test", max_message_size=1000)
    server = accepted[0]
    await server.send_text("x" * 1001)
    with anyio.fail_after(1), pytest.raises(ProtocolError, match="PayloadTooBig"):
        await client.receive_batch()
    assert client.close_code == 1009
    await server.aclose()


async def test_close_handshake_reports_code_and_reason(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    await raw.send(server_frame(8, struct.pack("!H", 4000) + b"bye"))
    with anyio.fail_after(1), pytest.raises(ConnectionLost, match="4000"):
        await ws.receive_batch()
    assert (ws.close_code, ws.close_reason) == (4000, "bye")
    echoed = await raw.receive()
    assert echoed[0] == 0x88  # the client echoed the close frame


async def test_eof_without_close_is_connection_lost(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    await raw.send_eof()
    with anyio.fail_after(1), pytest.raises(ConnectionLost):
        await ws.receive_batch()
    with pytest.raises(ConnectionLost):
        await ws.send_text("late")


async def test_messages_before_close_are_delivered(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    await raw.send(server_frame(1, b"last words") + server_frame(8, struct.pack("!H", 1000)))
    with anyio.fail_after(1):
        assert await ws.receive_batch() == ["last words"]
        with pytest.raises(ConnectionLost):
            await ws.receive_batch()


async def test_client_frames_are_masked_and_batched(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    await ws.send_texts(["a", "bb", "ccc"])
    data = await raw.receive()
    offset, payloads = 0, []
    while offset < len(data):
        assert data[offset] == 0x81 and data[offset + 1] & 0x80
        n = data[offset + 1] & 0x7F
        mask = data[offset + 2 : offset + 6]
        body = data[offset + 6 : offset + 6 + n]
        payloads.append(bytes(b ^ mask[i % 4] for i, b in enumerate(body)).decode())
        offset += 6 + n
    assert payloads == ["a", "bb", "ccc"]  # three frames, one write


async def test_random_round_trip_between_our_roles() -> None:
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        accepted: list[WebSocket] = []

        async def serve() -> None:
            accepted.append(await accept_websocket(server_end))

        tg.start_soon(serve)
        client = await open_websocket(client_end, "relay.test")
    server = accepted[0]
    texts = [os.urandom(n).hex() for n in (0, 1, 125, 126, 65535, 70000)]
    for text in texts:
        await client.send_text(text)
    got: list[str | bytes] = []
    with anyio.fail_after(2):
        while len(got) < len(texts):
            got += await server.receive_batch()
    assert got == texts
    await client.aclose()
    with anyio.fail_after(1), pytest.raises(ConnectionLost):
        await server.receive_batch()
