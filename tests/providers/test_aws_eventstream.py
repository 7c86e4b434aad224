"""The event stream decoder: every header type, frames split at every byte, checksum and
truncation failures, and agreement with botocore's own parser."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime

import pytest
from botocore.eventstream import EventStreamBuffer

from tests.support.fake_bedrock import encode_message, event_message, exception_message
from vaultgate.errors import UpstreamError
from vaultgate.providers.aws_eventstream import (
    EventMessage,
    EventStreamDecoder,
    decode_message,
)

EVENT_ID = uuid.UUID("0f2b7c3e-8f0a-4e57-9d1b-5a6c7d8e9f10")
ALL_TYPES = [
    ("true", 0, True),
    ("false", 1, False),
    ("byte", 2, -7),
    ("short", 3, -1234),
    ("integer", 4, 123456789),
    ("long", 5, -(2**40)),
    ("bytes", 6, b"\x00\xffraw"),
    ("string", 7, "héllo"),
    ("timestamp", 8, 1_796_380_215_123),
    ("uuid", 9, EVENT_ID.bytes),
]


def _stream() -> bytes:
    return b"".join([
        event_message("messageStart", {"role": "assistant"}),
        encode_message(ALL_TYPES, b'{"payload": true}'),
        encode_message([], b""),
        exception_message("throttlingException", "slow down"),
    ])  # fmt: skip


def _decode_all(data: bytes, cut: int | None = None) -> list[EventMessage]:
    decoder = EventStreamDecoder()
    pieces = [data] if cut is None else [data[:cut], data[cut:]]
    messages = [m for piece in pieces for m in decoder.feed(piece)]
    return messages + decoder.close()


def test_decoder_all_header_types_decode_to_python_values() -> None:
    [message] = _decode_all(encode_message(ALL_TYPES, b"body"))

    assert message.headers == {
        "true": True,
        "false": False,
        "byte": -7,
        "short": -1234,
        "integer": 123456789,
        "long": -(2**40),
        "bytes": b"\x00\xffraw",
        "string": "héllo",
        "timestamp": datetime(2026, 12, 4, 10, 30, 15, 123000, tzinfo=UTC),
        "uuid": EVENT_ID,
    }
    assert message.payload == b"body"
    assert message.header("string") == "héllo"
    assert message.header("integer") is None


def test_decoder_agrees_with_botocore_parser() -> None:
    data = _stream()
    buffer = EventStreamBuffer()
    buffer.add_data(data)

    theirs = list(buffer)
    ours = _decode_all(data)

    assert [m.payload for m in ours] == [m.payload for m in theirs]
    for mine, botocore_message in zip(ours, theirs, strict=True):
        expected = dict(botocore_message.headers)
        # botocore leaves timestamps as epoch milliseconds and UUIDs as bytes.
        if "timestamp" in expected:
            expected["timestamp"] = mine.headers["timestamp"]
            assert expected["uuid"] == EVENT_ID.bytes
            expected["uuid"] = EVENT_ID
        assert mine.headers == expected


def test_decoder_split_at_every_byte_gives_same_messages() -> None:
    data = _stream()
    whole = _decode_all(data)

    for cut in range(len(data) + 1):
        assert _decode_all(data, cut) == whole, f"split at byte {cut}"


def test_decoder_one_byte_at_a_time_gives_same_messages() -> None:
    data = _stream()
    decoder = EventStreamDecoder()

    messages = [m for i in range(len(data)) for m in decoder.feed(data[i : i + 1])]

    assert messages == _decode_all(data)
    assert len(messages) == 4


def test_decoder_message_crc_mismatch_raises() -> None:
    frame = bytearray(encode_message([(":event-type", 7, "x")], b'{"a": 1}'))
    frame[-6] ^= 0x01  # a payload byte

    with pytest.raises(UpstreamError, match="message checksum mismatch"):
        EventStreamDecoder().feed(bytes(frame))


def test_decoder_prelude_crc_mismatch_raises_before_body_arrives() -> None:
    frame = bytearray(encode_message([], b"payload"))
    frame[3] ^= 0x01  # the total length

    with pytest.raises(UpstreamError, match="prelude checksum mismatch"):
        EventStreamDecoder().feed(bytes(frame[:12]))


@pytest.mark.parametrize("cut", [1, 11, 12, 20])
def test_decoder_truncated_body_raises_on_close(cut: int) -> None:
    frame = encode_message([(":event-type", 7, "messageStop")], b'{"stopReason":"end_turn"}')
    decoder = EventStreamDecoder()

    assert decoder.feed(frame[:-cut]) == []
    with pytest.raises(UpstreamError, match="ended inside a message"):
        decoder.close()


def _framed(total: int, headers_length: int, rest: bytes = b"") -> bytes:
    lengths = struct.pack(">II", total, headers_length)
    return lengths + struct.pack(">I", zlib.crc32(lengths)) + rest


@pytest.mark.parametrize(
    ("total", "headers_length"), [(15, 0), (16, 1), (2**31, 0), (200_000, 150_000)]
)
def test_decoder_impossible_lengths_raise(total: int, headers_length: int) -> None:
    with pytest.raises(UpstreamError, match="impossible"):
        EventStreamDecoder().feed(_framed(total, headers_length))


def test_decoder_duplicate_header_raises() -> None:
    frame = encode_message([("a", 7, "x"), ("a", 7, "y")], b"")

    with pytest.raises(UpstreamError, match="appears twice"):
        decode_message(frame)


def test_decoder_unknown_header_type_raises() -> None:
    header = bytes([1]) + b"a" + bytes([10])
    body = _framed(12 + len(header) + 4, len(header), header)
    frame = body + struct.pack(">I", zlib.crc32(body))

    with pytest.raises(UpstreamError, match="unknown header value type 10"):
        decode_message(frame)


def test_decoder_header_past_its_block_raises() -> None:
    header = bytes([1]) + b"a" + bytes([7]) + struct.pack(">H", 50) + b"short"
    body = _framed(12 + len(header) + 4, len(header), header)
    frame = body + struct.pack(">I", zlib.crc32(body))

    with pytest.raises(UpstreamError, match="runs past"):
        decode_message(frame)


def test_decoder_empty_close_returns_nothing() -> None:
    assert EventStreamDecoder().close() == []
