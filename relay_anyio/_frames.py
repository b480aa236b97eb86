"""RFC 6455 frames for the data phase of a WebSocket, both roles, sans-I/O.

Why our own codec: the client reads thousands of small JSON text frames a second
and writes small acks, and the ``websockets`` protocol spent ~15% of its CPU on them
(a generator-based parser, an ``Opcode`` enum and a ``Frame`` object per frame).
Here a whole socket read becomes a list of messages in one call, and the common
frame (final unmasked text, length < 64 KiB) takes one tight branch: two byte
reads, a slice, a decode. The opening handshake stays with ``websockets``.

Covered, for an endpoint without extensions: fragmentation with control frames
between fragments, pings answered with the same payload, the close handshake (the
peer's close is echoed, its code and reason checked), masking (clients mask with a
fresh key per frame; each role refuses the other's wrong masking), UTF-8 of text
messages and close reasons, and a size limit on reassembled messages. A violation
fails the connection with its close code: 1002 protocol error, 1007 bad UTF-8, 1009
too big. Non-minimal length encodings are accepted: the RFC only forbids sending
them, and ``websockets`` accepts them too.
"""

from __future__ import annotations

import os
import struct
from codecs import getincrementaldecoder
from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "FrameCodec", "FrameError", "apply_mask"]

#: The official client's inbound limit (10 MiB); a bigger message fails with 1009.
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024

_Utf8Decoder = getincrementaldecoder("utf-8")
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")
_OPCODES = frozenset((0, 1, 2, 8, 9, 10))


class FrameError(Exception):
    """The peer broke RFC 6455: the connection fails with close code ``code``."""

    code = 1002


class InvalidUTF8(FrameError):
    """A text message or a close reason that is not UTF-8."""

    code = 1007


class PayloadTooBig(FrameError):
    """A message over the size limit, all its fragments together."""

    code = 1009


def apply_mask_py(data: bytes, key: bytes) -> bytes:
    """XOR with ``key`` repeated, as one big-integer XOR: the loop runs in C.

    The fallback when ``websockets`` lacks its C helper (a byte loop is ~50x slower).
    """
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


apply_mask: Callable[[bytes, bytes], bytes] = apply_mask_py
try:
    from websockets import speedups as _speedups
except ImportError:  # pragma: no cover - websockets built without its C extension
    pass
else:
    apply_mask = _speedups.apply_mask


def _valid_close_code(code: int) -> bool:
    """May a close frame carry this code? (RFC 6455 7.4, plus 1012-1014 from IANA.)"""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame's payload; 1005 when it has no code."""
    if not payload:
        return 1005, ""
    code = int.from_bytes(payload[:2], "big")  # from a 1-byte payload: < 256, invalid
    if not _valid_close_code(code):
        raise FrameError(f"invalid close frame payload {payload[:2]!r}")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise InvalidUTF8("invalid UTF-8 in the close reason") from None


class FrameCodec:
    """The data phase of one WebSocket connection, client or server side.

    ``receive`` takes bytes as the socket delivers them and returns the messages
    they complete (``str`` for text, ``bytes`` for binary); then write
    ``data_to_send`` (pongs, the echo of the peer's close, a failure's close
    frame). After the peer's close (``close_received``) or a violation
    (``error``) nothing more is parsed. Encode data frames only while ``open``.
    """

    def __init__(self, client: bool, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.client = client
        self.max_message_size = max_message_size
        self.close_received: tuple[int, str] | None = None  #: the peer's (code, reason)
        self.close_sent: tuple[int, str] | None = None  #: ours: a close, an echo, a failure
        self.error: FrameError | None = None  #: the violation that failed the connection
        self._outgoing: list[bytes] = []
        self._stopped = False
        # An incomplete frame's bytes, kept as chunks until `_needed` bytes are there:
        # a big frame that arrives in many reads is joined once, not once per read.
        self._held: list[bytes] = []
        self._held_size = self._needed = 0
        # The fast path takes frames starting with this byte (final text); only a
        # client may take them unmasked, and not inside a fragmented message (-1).
        self._fast_b0 = self._fast = 0x81 if client else -1
        self._frag = self._frag_size = 0  # a fragmented message: its opcode, its size
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []
        self._utf8 = _Utf8Decoder()  # validates text fragments as they come, like wsproto

    @property
    def open(self) -> bool:
        """No close frame went either way yet: data frames may be sent."""
        return self.close_sent is None and self.close_received is None

    def data_to_send(self) -> bytes:
        """The control frames that ``receive`` queued; they are sent only once."""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    # -- decoding ------------------------------------------------------------------

    def receive(self, data: bytes) -> list[str | bytes]:
        """Parse the next bytes of the stream; return the messages they complete.

        The messages before a close frame or a violation are returned too; the caller
        checks ``close_received`` and ``error`` afterwards.
        """
        messages: list[str | bytes] = []
        if self._stopped:
            return messages
        if self._held:
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size < self._needed:
                return messages
            data = b"".join(self._held)
        pos, end, needed, fast, limit = 0, len(data), 2, self._fast, self.max_message_size
        try:
            while end - pos >= 2:
                b1 = data[pos + 1]
                if data[pos] == fast and b1 <= 126:  # the common frame, see the docstring
                    if b1 < 126:
                        start, stop = pos + 2, pos + 2 + b1
                    elif end - pos >= 4:
                        start, stop = pos + 4, pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
                    else:
                        needed = 4
                        break
                    if stop - start > limit:
                        raise PayloadTooBig(f"message of {stop - start} bytes, limit {limit}")
                    if stop > end:
                        needed = stop - pos
                        break
                    messages.append(data[start:stop].decode())
                    pos = stop
                    continue
                stop = self._frame(data, pos, end, messages)
                if stop > end:
                    needed = stop - pos
                    break
                pos, fast = stop, self._fast
                if self._stopped:  # the peer's close: nothing follows it
                    break
        except UnicodeDecodeError as exc:
            self._fail(InvalidUTF8(f"invalid UTF-8 in a text message ({exc.reason})"))
        except FrameError as exc:
            self._fail(exc)
        if self._stopped:
            self._held = []
        else:
            self._held = [data[pos:]] if pos < end else []
            self._held_size, self._needed = end - pos, needed
        return messages

    def _frame(self, data: bytes, pos: int, end: int, messages: list[str | bytes]) -> int:
        """Check and handle the frame at ``pos``; return its end (> ``end``: incomplete)."""
        b0, b1 = data[pos], data[pos + 1]
        opcode, fin, masked, length = b0 & 0x0F, b0 & 0x80, b1 & 0x80, b1 & 0x7F
        if b0 & 0x70:
            raise FrameError("reserved bits set, but no extension was negotiated")
        if opcode not in _OPCODES:
            raise FrameError(f"unknown opcode {opcode:#x}")
        if opcode >= 8 and (not fin or length > 125):
            raise FrameError("control frame fragmented or longer than 125 bytes")
        if opcode < 8 and (opcode == 0) != (self._frag != 0):
            raise FrameError("data frame out of order (continuation or fragmented message)")
        if bool(masked) == self.client:
            raise FrameError(
                "masked frame from a server" if masked else "unmasked frame from a client"
            )
        start = pos + 2
        if length >= 126:
            start = pos + (4 if length == 126 else 10)
            if start > end:
                return end + 1
            length = int.from_bytes(data[pos + 2 : start], "big")
            if length >> 63:
                raise FrameError("64-bit length with its most significant bit set")
        if opcode < 8 and self._frag_size + length > self.max_message_size:
            size = self._frag_size + length
            raise PayloadTooBig(f"message of {size} bytes, limit {self.max_message_size}")
        stop = start + (4 if masked else 0) + length
        if stop > end:
            return stop
        payload = data[stop - length : stop]
        if masked:
            payload = apply_mask(payload, data[start : start + 4])

        if (opcode == 1 or opcode == 2) and fin:
            messages.append(payload.decode() if opcode == 1 else payload)
        elif opcode < 8:  # a fragment
            if opcode:  # the first one
                self._frag, self._fast = opcode, -1
            self._frag_size += length
            if self._frag == 1:
                self._text_parts.append(self._utf8.decode(payload, bool(fin)))
            else:
                self._binary_parts.append(payload)
            if fin:
                text = self._frag == 1
                messages.append("".join(self._text_parts) if text else b"".join(self._binary_parts))
                self._text_parts, self._binary_parts = [], []
                self._frag, self._frag_size, self._fast = 0, 0, self._fast_b0
        elif opcode == 9 and self.close_sent is None:
            self._outgoing.append(self._encode(0x8A, payload))
        elif opcode == 8:
            self.close_received = _parse_close(payload)
            self._stopped = True
            if self.close_sent is None:  # echo the peer's close (RFC 6455 5.5.1)
                self.close_sent = self.close_received
                self._outgoing.append(self._encode(0x88, payload))
        return stop  # a pong (or a ping after our close): nothing to do

    def _fail(self, error: FrameError) -> None:
        self.error, self._stopped = error, True
        if self.close_sent is None:
            self._outgoing.append(self.encode_close(error.code, str(error)))

    # -- encoding ------------------------------------------------------------------

    def encode_text(self, text: str) -> bytes:
        """One text frame (FIN set), masked when this codec is the client's."""
        return self._encode(0x81, text.encode())

    def encode_binary(self, data: bytes) -> bytes:
        """One binary frame (FIN set), masked when this codec is the client's."""
        return self._encode(0x82, bytes(data))

    def encode_texts(self, texts: Sequence[str]) -> bytes:
        """Text frames for all ``texts`` in one buffer, masked with keys of one draw."""
        keys = os.urandom(4 * len(texts)) if self.client else b""
        encode = self._encode
        return b"".join(
            [encode(0x81, t.encode(), keys[i * 4 : i * 4 + 4]) for i, t in enumerate(texts)]
        )

    def encode_close(self, code: int = 1000, reason: str = "") -> bytes:
        """A close frame (the reason cut to fit 125 bytes); marks the close as sent."""
        if not _valid_close_code(code):
            raise ValueError(f"close code {code} may not be sent in a close frame")
        raw = reason.encode()
        if len(raw) > 123:  # cut at a character boundary
            raw = raw[:123].decode(errors="ignore").encode()
        self.close_sent = (code, reason)
        return self._encode(0x88, code.to_bytes(2, "big") + raw)

    def _encode(self, b0: int, payload: bytes, key: bytes = b"") -> bytes:
        """One frame; a client masks it with a fresh random key (RFC 6455 5.3)."""
        n, mask_bit = len(payload), 0x80 if self.client else 0
        if n < 126:
            head = bytes((b0, mask_bit | n))
        elif n < 65536:
            head = _LEN16.pack(b0, mask_bit | 126, n)
        else:
            head = _LEN64.pack(b0, mask_bit | 127, n)
        if not mask_bit:
            return head + payload
        key = key or os.urandom(4)
        return head + key + apply_mask(payload, key)
