"""The WebSocket layer over in-memory byte streams: frames written by hand."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from relay_anyio import ConnectionLost, ProtocolError
from relay_anyio._frames import FrameCodec
from relay_anyio._websocket import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocket,
    accept_websocket,
    open_websocket,
)

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


def switching_protocols(request: bytes) -> bytes:
    """The server's 101 answer to a client's opening handshake ``request``."""
    assert request.startswith(b"GET / HTTP/1.1")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def open_pair(after_101: bytes = b"") -> tuple[WebSocket, MemoryByteStream]:
    """A client WebSocket and the raw server end; ``after_101`` comes in the same write."""
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        result: list[WebSocket] = []

        async def connect() -> None:
            result.append(await open_websocket(client_end, "relay.test"))

        tg.start_soon(connect)
        await server_end.send(switching_protocols(await server_end.receive()) + after_101)
    return result[0], server_end


@pytest.fixture
async def pair() -> AsyncIterator[tuple[WebSocket, MemoryByteStream]]:
    """A client WebSocket and the raw server end of its stream (handshake done)."""
    ws, server_end = await open_pair()
    yield ws, server_end
    await ws.abort()
    await server_end.aclose()


async def our_roles(
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> tuple[WebSocket, WebSocket]:
    """A client and a server of this module, handshaken over in-memory streams."""
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        accepted: list[WebSocket] = []

        async def serve() -> None:
            accepted.append(await accept_websocket(server_end))

        tg.start_soon(serve)
        client = await open_websocket(client_end, "relay.test", max_message_size=max_message_size)
    return client, accepted[0]


def unmask_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, unmasked payload) of each client frame in ``data`` (lengths < 126)."""
    frames, offset = [], 0
    while offset < len(data):
        assert data[offset + 1] & 0x80, "client frames are masked"
        n = data[offset + 1] & 0x7F
        mask = data[offset + 2 : offset + 6]
        body = data[offset + 6 : offset + 6 + n]
        frames.append((data[offset], bytes(b ^ mask[i % 4] for i, b in enumerate(body))))
        offset += 6 + n
    return frames


def close_payload_of(data: bytes) -> bytes:
    """The payload of the one (client) close frame in ``data``."""
    [(first, payload)] = unmask_frames(data)
    assert first == 0x88
    return payload


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
    assert unmask_frames(pong) == [(0x8A, b"are you there")]  # FIN + pong, same payload


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
    client, server = await our_roles(max_message_size=1000)
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
    assert unmask_frames(data) == [(0x81, b"a"), (0x81, b"bb"), (0x81, b"ccc")]  # one write


async def test_random_round_trip_between_our_roles() -> None:
    client, server = await our_roles()
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


async def test_frames_in_the_same_read_as_the_101_response() -> None:
    ws, raw = await open_pair(server_frame(1, b"early") + server_frame(9, b"hi"))
    with anyio.fail_after(1):
        assert await ws.receive_batch() == ["early"]
        assert unmask_frames(await raw.receive()) == [(0x8A, b"hi")]
        await raw.send(server_frame(1, b"next"))
        assert await ws.receive_batch() == ["next"]
    await ws.abort()
    await raw.aclose()


async def test_a_close_in_the_same_read_as_the_101_response() -> None:
    client_end, server_end = byte_stream_pair()
    async with anyio.create_task_group() as tg:

        async def serve() -> None:
            close = server_frame(8, struct.pack("!H", 1001))
            await server_end.send(switching_protocols(await server_end.receive()) + close)

        tg.start_soon(serve)
        with anyio.fail_after(1), pytest.raises(ConnectionLost, match="1001"):
            await open_websocket(client_end, "relay.test")
    assert close_payload_of(await server_end.receive()) == struct.pack("!H", 1001)
    await server_end.aclose()


async def test_the_server_role_decodes_frames_sent_with_the_request() -> None:
    raw_client, raw_server = byte_stream_pair()
    async with anyio.create_task_group() as tg:
        accepted: list[WebSocket] = []

        async def serve() -> None:
            accepted.append(await accept_websocket(raw_server))

        tg.start_soon(serve)
        request = (
            b"GET / HTTP/1.1\r\nHost: relay.test\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await raw_client.send(request + FrameCodec(True).encode_text("piggyback"))
        assert (await raw_client.receive()).startswith(b"HTTP/1.1 101")
    with anyio.fail_after(1):
        assert await accepted[0].receive_batch() == ["piggyback"]
    await accepted[0].abort()
    await raw_client.aclose()


async def test_a_masked_server_frame_fails_with_1002(
    pair: tuple[WebSocket, MemoryByteStream],
) -> None:
    ws, raw = pair
    masked = bytes([0x81, 0x81]) + b"\x00\x00\x00\x00" + b"x"
    await raw.send(masked)
    with anyio.fail_after(1), pytest.raises(ProtocolError, match="masked"):
        await ws.receive_batch()
    assert ws.close_code == 1002
    assert close_payload_of(await raw.receive())[:2] == struct.pack("!H", 1002)
    with pytest.raises(ConnectionLost):
        await ws.send_text("late")


async def test_aclose_sends_code_and_reason_to_the_peer() -> None:
    client, server = await our_roles()
    await client.send_bytes(b"\x00bin")
    await client.aclose(4001, "going")
    with anyio.fail_after(1):
        assert await server.receive_batch() == [b"\x00bin"]
        with pytest.raises(ConnectionLost, match="4001"):
            await server.receive_batch()
    assert server.peer_close_code == 4001
    assert (server.close_code, server.close_reason) == (4001, "going")
    assert client.closed and client.peer_close_code is None
    await server.abort()


async def test_a_big_message_over_many_reads(pair: tuple[WebSocket, MemoryByteStream]) -> None:
    ws, raw = pair
    text = "ü" * 1_000_000
    wire = server_frame(1, text.encode())
    for at in range(0, len(wire), 65536):
        await raw.send(wire[at : at + 65536])
    with anyio.fail_after(5):
        assert await ws.receive_batch() == [text]
