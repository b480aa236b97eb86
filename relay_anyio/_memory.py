"""An in-memory ``MessageTransport`` pair: the session's link without a socket.

The session only needs ``MessageTransport``; a pair of memory object streams gives
it one with the same contract as the WebSocket transports (order, close codes,
``ConnectionLost`` from both directions, ``aclose``/``abort`` ending a send blocked
on a peer that stopped reading). Session and routing logic can then be tested by a
test that plays the server on the other end, deterministically and fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import ConnectionLost

__all__ = ["MemoryClose", "MemoryItem", "MemoryTransport", "memory_transport_pair"]


@attrs.frozen
class MemoryClose:
    """What ``aclose`` puts on the link: the close and its code, after the messages."""

    code: int
    reason: str


#: What travels over a memory link: a message, or the close that ends it.
MemoryItem = str | bytes | MemoryClose


class MemoryTransport:
    """One end of an in-memory message link; see ``memory_transport_pair``.

    ``send_bytes`` exists for tests that send a binary message (RELAY sends text).
    ``peer_close_code`` is the code of the close the other end sent, if any.
    """

    def __init__(
        self,
        send: MemoryObjectSendStream[MemoryItem],
        receive: MemoryObjectReceiveStream[MemoryItem],
    ) -> None:
        self._send = send
        self._receive = receive
        self._closed: ConnectionLost | None = None
        self.peer_close_code: int | None = None

    @property
    def closed(self) -> bool:
        """True once this end closed, aborted or saw the peer go."""
        return self._closed is not None

    async def receive_batch(self) -> list[str | bytes]:
        """Every message already waiting, at least one; ``ConnectionLost`` once closed."""
        if self._closed is not None:
            await anyio.lowlevel.checkpoint()
            raise self._closed
        try:
            first = await self._receive.receive()
        except anyio.EndOfStream:
            raise self._lose(ConnectionLost("peer went away", close_code=1006)) from None
        except anyio.ClosedResourceError:
            raise self._gone() from None
        batch: list[str | bytes] = []
        item: MemoryItem = first
        while True:
            if isinstance(item, MemoryClose):
                self.peer_close_code = item.code
                lost = ConnectionLost(f"peer closed (code {item.code})", close_code=item.code)
                self._lose(lost)
                if batch:
                    return batch  # messages sent before the close come first
                raise lost
            batch.append(item)
            try:
                item = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return batch

    async def send_text(self, text: str) -> None:
        """Send one message; ``ConnectionLost`` if either end has gone."""
        await self._put(text)

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Send several messages in order."""
        for text in texts:
            await self._put(text)

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message (for tests of a peer that misbehaves)."""
        await self._put(data)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close (if the peer has room for it) and stop; idempotent."""
        if self._closed is None:
            self._lose(ConnectionLost(f"closed by this end (code {code})", close_code=code))
            try:
                self._send.send_nowait(MemoryClose(code, reason))
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # a peer that stopped reading sees the link drop instead
        self._shut()
        await anyio.lowlevel.checkpoint()

    async def abort(self) -> None:
        """Drop the link without a close (the peer sees code 1006); idempotent."""
        if self._closed is None:
            self._lose(ConnectionLost("aborted by this end", close_code=1006))
        self._shut()
        await anyio.lowlevel.checkpoint()

    async def _put(self, item: MemoryItem) -> None:
        if self._closed is not None:
            await anyio.lowlevel.checkpoint()
            raise self._closed
        try:
            await self._send.send(item)
        except anyio.BrokenResourceError:
            raise self._lose(ConnectionLost("peer went away", close_code=1006)) from None
        except anyio.ClosedResourceError:
            raise self._gone() from None

    def _gone(self) -> ConnectionLost:
        return self._closed or ConnectionLost("closed by this end", close_code=1006)

    def _lose(self, error: ConnectionLost) -> ConnectionLost:
        if self._closed is None:
            self._closed = error
        return self._closed

    def _shut(self) -> None:
        # Closing our send stream ends a send of ours blocked on a full buffer and
        # tells the peer's reader the stream ended; closing our receive stream makes
        # the peer's blocked sends fail instead of waiting forever.
        self._send.close()
        self._receive.close()


def memory_transport_pair(
    max_buffer: float = math.inf,
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected ends; ``max_buffer`` messages may wait in each direction."""
    a_send, b_receive = anyio.create_memory_object_stream[MemoryItem](max_buffer)
    b_send, a_receive = anyio.create_memory_object_stream[MemoryItem](max_buffer)
    return MemoryTransport(a_send, a_receive), MemoryTransport(b_send, b_receive)
