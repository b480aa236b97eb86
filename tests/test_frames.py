"""The frame codec (relay_anyio._frames): RFC 6455 cases, and differential against wsproto.

The differential tests build random frame sequences (any opcode, fin bit, reserved
bits, mask, payloads with invalid UTF-8, bad close payloads, oversize control
frames, the 64-bit length's top bit), cut the byte stream into random reads, and
check that our decoder and wsproto's ``FrameProtocol`` deliver the same messages,
answer the same pings, and fail with the same close code at the same point.

Where we differ from wsproto on purpose (tested separately below, kept out of the
differential streams): non-minimal length encodings are accepted (wsproto rejects
them; the RFC only forbids sending them, and ``websockets`` accepts them), close code
1014 is accepted (IANA-registered; wsproto rejects it), and we have a message size
limit (wsproto has none).
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed, XorMaskerSimple

import relay_anyio._frames as frames
from relay_anyio._frames import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FrameCodec,
    FrameError,
    InvalidUTF8,
    PayloadTooBig,
    apply_mask,
    apply_mask_py,
)

FAST = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = False,
    length_bytes: int | None = None,
    msb: bool = False,
) -> bytes:
    """One frame as raw bytes; ``length_bytes`` (0, 2 or 8) forces a length encoding."""
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    mask_bit = 0x80 if masked else 0
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    if length_bytes == 0:
        head += bytes([mask_bit | n])
    elif length_bytes == 2:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n | (1 << 63 if msb else 0))
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(XorMaskerSimple(key).process(bytearray(payload)))  # wsproto's


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# -- running both decoders ------------------------------------------------------------


@dataclass
class Outcome:
    """What a decoder made of a byte stream."""

    messages: list[str | bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)  # ping payloads answered
    close: tuple[int, str] | None = None  # the peer's close frame
    error: int | None = None  # the close code of a failure


def decode_ours(
    client: bool, chunks: list[bytes], max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Outcome:
    codec = FrameCodec(client, max_size)
    out = Outcome()
    replies = b""
    for chunk in chunks:
        out.messages += codec.receive(chunk)
        replies += codec.data_to_send()
    out.close = codec.close_received
    out.error = codec.error.code if codec.error is not None else None
    # Our replies, read back by wsproto in the other role: pongs, then maybe a close.
    peer = FrameProtocol(not client, [])
    peer.receive_bytes(replies)
    sent_close = None
    for f in peer.received_frames():
        if f.opcode is Opcode.PONG:
            assert isinstance(f.payload, bytes)
            out.pongs.append(f.payload)
        else:
            assert f.opcode is Opcode.CLOSE and sent_close is None
            sent_close = f.payload
    if out.close is not None:  # the echo
        assert sent_close == out.close
    elif out.error is not None:  # the failure's close frame
        assert isinstance(sent_close, tuple) and sent_close[0] == out.error
    else:
        assert sent_close is None
    return out


def decode_wsproto(client: bool, chunks: list[bytes]) -> Outcome:
    proto = FrameProtocol(client, [])
    out = Outcome()
    parts: list[str | bytes] = []
    try:
        for chunk in chunks:
            proto.receive_bytes(chunk)
            for f in proto.received_frames():
                if f.opcode is Opcode.PING:
                    assert isinstance(f.payload, bytes)
                    out.pongs.append(f.payload)
                elif f.opcode is Opcode.CLOSE:
                    assert isinstance(f.payload, tuple)
                    out.close = (int(f.payload[0]), f.payload[1])
                elif f.opcode in (Opcode.TEXT, Opcode.BINARY):
                    assert not isinstance(f.payload, tuple)
                    parts.append(f.payload)
                    if f.frame_finished and f.message_finished:
                        text = f.opcode is Opcode.TEXT
                        out.messages.append("".join(parts) if text else b"".join(parts))  # type: ignore[arg-type]
                        parts = []
    except ParseFailed as exc:
        out.error = int(exc.code)
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- strategies -----------------------------------------------------------------------

text_payloads = st.text(max_size=40).map(str.encode)
#: Payloads for data frames, by weight (drawn with sampled_from, then drawn from).
PAYLOADS = [
    *[text_payloads] * 4,
    st.binary(max_size=20),  # mostly not UTF-8
    # Multi-byte characters: fragments often cut them, valid only once joined.
    st.text(alphabet="aé€😀", min_size=1, max_size=8).map(str.encode),
    st.text(alphabet="é€😀", min_size=1, max_size=4).map(lambda t: t.encode()[:-1]),
    st.integers(126, 400).map(lambda n: b"x" * n),  # 16-bit length
]
BIG = "é".encode() * 32769  # 64-bit length
close_codes = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013]),
    st.integers(3000, 4999),
    # Invalid: reserved, local-only, unassigned, out of range (not 1014: see above).
    st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]),
)
close_payloads = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=1),
    st.tuples(close_codes, st.one_of(text_payloads, st.binary(max_size=6))).map(
        lambda cr: close_payload(*cr)
    ),
)


def draw_frame(
    draw: st.DrawFn, client: bool, opcode: int, fin: bool, rare: st.SearchStrategy[bool]
) -> bytes:
    """A frame with a payload fit for its opcode, breaking a rule when ``rare`` says so."""
    control = opcode >= 8
    if opcode == 8:
        payload = draw(close_payloads)
    elif control:
        payload = draw(st.binary(max_size=130 if draw(rare) else 125))
    else:
        payload = BIG if draw(rare) else draw(draw(st.sampled_from(PAYLOADS)))
    return frame(
        opcode,
        payload,
        fin=fin if not control or draw(rare) else True,
        rsv=draw(st.integers(1, 7)) if draw(rare) else 0,
        masked=(not client) != draw(rare),  # a client gets unmasked frames
        msb=len(payload) >= 65536 and draw(rare),
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[bool, list[bytes]]:
    """(client role?, the stream cut into reads): messages, mostly in a valid order.

    Fragmented messages with control frames between fragments; now and then a frame
    with any opcode (unknown ones too) and fin bit, which may break the order.
    """
    client = draw(st.booleans())
    faulty = draw(st.booleans())  # else only payloads (UTF-8, close) may be wrong
    rare = st.integers(0, 20).map(lambda n: n == 0) if faulty else st.just(False)
    kinds = ["data"] * 5 + ["control"] * 2 + (["any"] if faulty else [])
    wire: list[bytes] = []
    in_message = False
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(kinds))
        if kind == "data":
            opcode = 0 if in_message else draw(st.sampled_from([1, 2]))
            fin = draw(st.booleans())
            in_message = not fin
        elif kind == "control":
            opcode, fin = draw(st.sampled_from([9, 10, 9, 10, 8])), True
        else:
            opcode, fin = draw(st.integers(0, 15)), draw(st.booleans())
        wire.append(draw_frame(draw, client, opcode, fin, rare))
    data = b"".join(wire)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=8))
    return client, split_at(data, cuts)


# -- differential tests ---------------------------------------------------------------


@settings(FAST, max_examples=400)
@given(streams())
def test_decoder_agrees_with_wsproto(stream: tuple[bool, list[bytes]]) -> None:
    client, chunks = stream
    assert decode_ours(client, chunks) == decode_wsproto(client, chunks)


@FAST
@given(streams(), st.data())
def test_a_truncated_stream_is_a_prefix_of_the_whole(
    stream: tuple[bool, list[bytes]], data: st.DataObject
) -> None:
    """Partial frames wait for their end: nothing is delivered or failed too early."""
    client, chunks = stream
    whole = b"".join(chunks)
    cut = data.draw(st.integers(0, len(whole)))
    full = decode_ours(client, chunks)
    part = decode_ours(client, split_at(whole[:cut], [cut // 2]))
    assert full.messages[: len(part.messages)] == part.messages
    assert full.pongs[: len(part.pongs)] == part.pongs
    if part.error is not None or part.close is not None:
        assert (part.error, part.close) == (full.error, full.close)
        assert part.messages == full.messages


@st.composite
def messages(draw: st.DrawFn) -> list[str | bytes]:
    item = st.one_of(
        st.text(max_size=30),
        st.binary(max_size=30),
        st.integers(120, 70000).map(lambda n: "ü" * (n // 2)),
    )
    return draw(st.lists(item, max_size=8))


@FAST
@given(st.booleans(), messages(), st.data())
def test_our_frames_decode_in_wsproto(
    client: bool, msgs: list[str | bytes], data: st.DataObject
) -> None:
    codec = FrameCodec(client)
    texts = [m for m in msgs if isinstance(m, str)]
    wire = b"".join(
        codec.encode_text(m) if isinstance(m, str) else codec.encode_binary(m) for m in msgs
    )
    wire += codec.encode_texts(texts)
    wire += codec.encode_close(4000, data.draw(st.text(max_size=80)))
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=4))
    got = decode_wsproto(not client, split_at(wire, cuts))
    assert got.messages == [*msgs, *texts]
    assert got.error is None and got.close is not None and got.close[0] == 4000


@FAST
@given(st.booleans(), messages(), st.data())
def test_wsproto_frames_decode_in_ours(
    client: bool, msgs: list[str | bytes], data: st.DataObject
) -> None:
    """wsproto as the peer: fragmented messages with pings between the fragments."""
    peer = FrameProtocol(not client, [])
    wire = b""
    for message in msgs:
        pieces = data.draw(st.integers(1, 3))
        step = max(1, len(message) // pieces)
        for at in range(0, max(len(message), 1), step):
            last = at + step >= len(message)
            wire += peer.send_data(message[at : at + step], fin=last)
            if not last and data.draw(st.booleans()):
                wire += peer.ping(b"between")
    wire += peer.close(1000, "done")
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=6))
    got = decode_ours(client, split_at(wire, cuts))
    assert got.messages == msgs
    assert got.close == (1000, "done") and got.error is None
    assert set(got.pongs) <= {b"between"}


@FAST
@given(
    st.lists(st.binary(max_size=200).filter(bool), min_size=1, max_size=6).map(
        lambda ms: [m.hex() for m in ms]
    ),
    st.integers(0, 600),
    st.data(),
)
def test_the_size_limit_applies_to_the_reassembled_message(
    msgs: list[str], limit: int, data: st.DataObject
) -> None:
    wire = b""
    for message in msgs:
        raw = message.encode()
        cut = data.draw(st.integers(0, len(raw)))
        if cut == 0:
            wire += frame(1, raw)
        else:
            wire += frame(1, raw[:cut], fin=False) + frame(9, b"p") + frame(0, raw[cut:])
    got = decode_ours(True, split_at(wire, data.draw(st.lists(st.integers(0, len(wire))))), limit)
    fit = next((i for i, m in enumerate(msgs) if len(m) > limit), len(msgs))
    assert got.messages == msgs[:fit]
    assert got.error == (1009 if fit < len(msgs) else None)


# -- masking --------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_pure_python_mask_matches_the_definition(data: bytes, key: bytes) -> None:
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert apply_mask_py(data, key) == expected
    assert apply_mask(data, key) == expected


def test_the_c_mask_is_used_when_websockets_has_it() -> None:
    from websockets import speedups

    assert apply_mask is speedups.apply_mask


@FAST
@given(st.booleans(), messages())
def test_round_trip_with_the_pure_python_mask(client: bool, msgs: list[str | bytes]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frames, "apply_mask", apply_mask_py)
        sender, receiver = FrameCodec(client), FrameCodec(not client)
        wire = b"".join(
            sender.encode_text(m) if isinstance(m, str) else sender.encode_binary(m) for m in msgs
        )
        assert receiver.receive(wire) == msgs and receiver.error is None


def test_a_client_masks_every_frame_with_a_fresh_key() -> None:
    wire = FrameCodec(True).encode_texts(["same"] * 50)
    keys = {wire[i + 2 : i + 6] for i in range(0, len(wire), 10)}
    assert all(wire[i + 1] == 0x84 for i in range(0, len(wire), 10))
    assert len(keys) == 50


def test_a_server_does_not_mask() -> None:
    assert FrameCodec(False).encode_text("hi") == b"\x81\x02hi"


@pytest.mark.parametrize(
    ("n", "header"),
    [(125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"), (65535, b"\x81\x7e\xff\xff"),
     (65536, b"\x81\x7f" + (65536).to_bytes(8, "big"))],
)  # fmt: skip
def test_length_encodings(n: int, header: bytes) -> None:
    wire = FrameCodec(False).encode_text("a" * n)
    assert wire.startswith(header) and len(wire) == len(header) + n
    assert FrameCodec(True).receive(wire) == ["a" * n]


# -- RFC 6455 cases, one by one ---------------------------------------------------------


def fails_with(client: bool, wire: bytes) -> int | None:
    codec = FrameCodec(client)
    codec.receive(wire)
    return codec.error.code if codec.error is not None else None


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frame(1, b"x", rsv=4), 1002),
        (frame(3, b"x"), 1002),
        (frame(11), 1002),
        (frame(0, b"x"), 1002),  # a continuation with nothing to continue
        (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),  # a new message inside one
        (frame(9, b"p", fin=False), 1002),  # a fragmented ping
        (frame(9, b"p" * 126), 1002),  # a ping over 125 bytes
        (frame(2, b"x", masked=True), 1002),  # a masked frame from the server
        (frame(2, b"x" * 65536, msb=True), 1002),
        (frame(8, b"\x03"), 1002),  # a 1-byte close payload
        (frame(8, close_payload(1005)), 1002),
        (frame(8, close_payload(999)), 1002),
        (frame(8, close_payload(5000)), 1002),
        (frame(8, close_payload(1000, b"\xff")), 1007),
        (frame(1, b"\xff\xfe"), 1007),
        (frame(1, b"\xe2\x82", fin=False) + frame(0, b"\x41"), 1007),
        (frame(1, b"a", fin=False) + frame(0, b"\xe2\x82"), 1007),  # ends mid-character
        (frame(2, b"\xff", fin=False) + frame(1, b"x"), 1002),
    ],
)
def test_violations_fail_with_their_close_code(wire: bytes, code: int) -> None:
    assert fails_with(True, wire) == code
    assert decode_wsproto(True, [wire]).error == code  # the same verdict as wsproto


def test_a_server_refuses_unmasked_frames() -> None:
    assert fails_with(False, frame(1, b"x")) == 1002
    assert fails_with(False, frame(1, b"x", masked=True)) is None


def test_error_classes() -> None:
    assert (FrameError("x").code, InvalidUTF8("x").code, PayloadTooBig("x").code) == (
        1002,
        1007,
        1009,
    )


def test_non_minimal_lengths_are_accepted() -> None:
    wire = frame(1, b"hi", length_bytes=2) + frame(2, b"yo", length_bytes=8)
    assert FrameCodec(True).receive(wire) == ["hi", b"yo"]
    assert decode_wsproto(True, [wire]).error == 1002  # wsproto is stricter


def test_close_codes_like_wsproto_but_1014() -> None:
    for code in range(0, 5100):
        wire = frame(8, close_payload(code))
        ours, theirs = fails_with(True, wire), decode_wsproto(True, [wire]).error
        assert ours == (None if code == 1014 else theirs), code


def test_close_code_1014_is_accepted() -> None:
    codec = FrameCodec(True)
    codec.receive(frame(8, close_payload(1014, b"bad gateway")))
    assert codec.close_received == (1014, "bad gateway") and codec.error is None


def test_a_ping_between_fragments_is_answered_with_its_payload() -> None:
    codec = FrameCodec(True)
    wire = frame(1, b"hel", fin=False) + frame(9, b"are you there") + frame(0, b"lo")
    assert codec.receive(wire) == ["hello"]
    pong = codec.data_to_send()
    assert pong[0] == 0x8A and pong[1] == 0x80 | 13  # FIN + pong, masked
    assert apply_mask(pong[6:], pong[2:6]) == b"are you there"
    assert codec.data_to_send() == b""


def test_the_peer_close_is_echoed_and_nothing_after_it_is_parsed() -> None:
    codec = FrameCodec(False)
    wire = frame(1, b"last", masked=True) + frame(8, close_payload(4000, b"bye"), masked=True)
    assert codec.receive(wire + frame(1, b"late", masked=True)) == ["last"]
    assert codec.close_received == codec.close_sent == (4000, "bye")
    assert codec.data_to_send() == b"\x88\x05" + close_payload(4000, b"bye")
    assert not codec.open
    assert codec.receive(frame(1, b"later", masked=True)) == []


def test_after_our_close_messages_still_arrive_and_pings_go_unanswered() -> None:
    codec = FrameCodec(True)
    codec.encode_close(1000)
    assert codec.receive(frame(9, b"p") + frame(1, b"late")) == ["late"]
    assert codec.data_to_send() == b""
    codec.receive(frame(8, close_payload(1000)))
    assert codec.close_received == (1000, "") and codec.data_to_send() == b""  # no echo


def test_an_empty_close_is_1005_and_echoed_empty() -> None:
    codec = FrameCodec(False)
    codec.receive(frame(8, masked=True))
    assert codec.close_received == (1005, "")
    assert codec.data_to_send() == b"\x88\x00"


def test_a_failure_queues_a_close_frame_with_its_code() -> None:
    codec = FrameCodec(False)
    assert codec.receive(frame(1, b"ok", masked=True) + frame(1, b"\xff", masked=True)) == ["ok"]
    assert isinstance(codec.error, InvalidUTF8)
    assert codec.data_to_send()[2:4] == b"\x03\xef"  # 1007, then the reason
    assert not codec.open and codec.receive(frame(1, b"x", masked=True)) == []


def test_oversize_is_refused_from_the_header() -> None:
    codec = FrameCodec(True, max_message_size=100)
    assert codec.receive(frame(1, b"x" * 100)) == ["x" * 100]
    codec.receive(frame(1, b"x" * 101)[:4])  # the header alone is enough
    assert isinstance(codec.error, PayloadTooBig) and codec.error.code == 1009


def test_a_big_frame_in_many_reads() -> None:
    payload = os.urandom(3_000_000)
    wire = frame(2, payload)
    codec = FrameCodec(True)
    got: list[str | bytes] = []
    for at in range(0, len(wire), 65536):
        got += codec.receive(wire[at : at + 65536])
    assert got == [payload]


def test_encode_close() -> None:
    codec = FrameCodec(False)
    wire = codec.encode_close(1000, "é" * 100)  # cut to 123 bytes, on a character boundary
    assert wire[:4] == b"\x88\x7c\x03\xe8" and len(wire) == 2 + 2 + 122
    assert codec.close_sent is not None and not codec.open
    for n in (123, 124):
        wire = FrameCodec(False).encode_close(1000, "x" * n)
        assert wire[1] == 2 + 123 and wire.endswith(b"x" * 123)
    with pytest.raises(ValueError, match="1006"):
        FrameCodec(True).encode_close(1006)
