"""An incremental decoder of AWS's binary event stream (``application/vnd.amazon.eventstream``).

Each message is framed as described in
https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html and
https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html (event stream
encoding), all integers big-endian:

- prelude: total length (uint32), headers length (uint32), CRC32 of those eight bytes;
- headers: name length (uint8), name (UTF-8), value type (uint8), value;
- payload: the rest of the message before its last four bytes;
- message CRC32 over everything before it, prelude included.

Header value types: 0 true, 1 false, 2 byte, 3 short, 4 integer, 5 long (signed), 6 byte
array and 7 string (uint16 length first), 8 timestamp (int64 milliseconds since the epoch),
9 UUID (16 bytes). Bytes may arrive split anywhere; a message is decoded once it is whole.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vaultgate.errors import UpstreamError

PRELUDE_LENGTH = 12
CRC_LENGTH = 4
MIN_MESSAGE_LENGTH = PRELUDE_LENGTH + CRC_LENGTH
# The limits the AWS SDKs enforce on one message (botocore's ``eventstream`` module).
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
MAX_MESSAGE_LENGTH = MIN_MESSAGE_LENGTH + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

HeaderValue = bool | int | bytes | str | datetime | uuid.UUID

# Fixed-size integer types: (struct format, size).
_INTEGER_TYPES = {2: (">b", 1), 3: (">h", 2), 4: (">i", 4), 5: (">q", 8)}


def _broken(reason: str) -> UpstreamError:
    return UpstreamError(f"the upstream event stream is broken: {reason}")


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _broken("a header is not UTF-8") from None


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One decoded message: its headers and its raw payload."""

    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header, or None when absent or of another type."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class _HeaderReader:
    """Reads the typed values of one message's header block."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._data):
            raise _broken("a header runs past its block")
        piece = self._data[self._at : self._at + size]
        self._at += size
        return piece

    def done(self) -> bool:
        return self._at >= len(self._data)

    def sized(self) -> bytes:
        (length,) = struct.unpack(">H", self.take(2))
        return self.take(length)

    def value(self, kind: int) -> HeaderValue:
        if kind in (0, 1):
            return kind == 0
        if kind in _INTEGER_TYPES:
            fmt, size = _INTEGER_TYPES[kind]
            return int(struct.unpack(fmt, self.take(size))[0])
        if kind == 6:
            return self.sized()
        if kind == 7:
            return _utf8(self.sized())
        if kind == 8:
            (millis,) = struct.unpack(">q", self.take(8))
            return EPOCH + timedelta(milliseconds=millis)
        if kind == 9:
            return uuid.UUID(bytes=self.take(16))
        raise _broken(f"unknown header value type {kind}")


def decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """Every header of a header block, in order; a repeated name is an error."""
    reader = _HeaderReader(data)
    headers: dict[str, HeaderValue] = {}
    while not reader.done():
        (name_length,) = reader.take(1)
        name = _utf8(reader.take(name_length))
        (kind,) = reader.take(1)
        if name in headers:
            raise _broken(f"header {name!r} appears twice")
        headers[name] = reader.value(kind)
    return headers


def _check_prelude(prelude: bytes) -> tuple[int, int]:
    total, headers_length, crc = struct.unpack(">III", prelude)
    if zlib.crc32(prelude[:8]) != crc:
        raise _broken("prelude checksum mismatch")
    if not MIN_MESSAGE_LENGTH <= total <= MAX_MESSAGE_LENGTH:
        raise _broken(f"impossible message length {total}")
    if headers_length > min(MAX_HEADERS_LENGTH, total - MIN_MESSAGE_LENGTH):
        raise _broken(f"impossible headers length {headers_length}")
    return total, headers_length


def decode_message(frame: bytes) -> EventMessage:
    """One whole message, its checksums verified."""
    total, headers_length = _check_prelude(frame[:PRELUDE_LENGTH])
    if len(frame) != total:
        raise _broken("message length does not match its prelude")
    (crc,) = struct.unpack(">I", frame[-CRC_LENGTH:])
    if zlib.crc32(frame[:-CRC_LENGTH]) != crc:
        raise _broken("message checksum mismatch")
    headers_end = PRELUDE_LENGTH + headers_length
    headers = decode_headers(frame[PRELUDE_LENGTH:headers_end])
    return EventMessage(headers, frame[headers_end:-CRC_LENGTH])


class EventStreamDecoder:
    """Turns body bytes, split anywhere, into ``EventMessage`` values (a StreamDecoder)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._expected: int | None = None

    def feed(self, chunk: bytes) -> list[EventMessage]:
        """Consume bytes; return the messages they completed."""
        self._buffer += chunk
        messages = []
        while True:
            if self._expected is None:
                if len(self._buffer) < PRELUDE_LENGTH:
                    break
                # The prelude is checked as soon as it is whole, so a corrupt length is
                # refused at once instead of waiting for megabytes that never come.
                self._expected, _ = _check_prelude(bytes(self._buffer[:PRELUDE_LENGTH]))
            if len(self._buffer) < self._expected:
                break
            frame = bytes(self._buffer[: self._expected])
            del self._buffer[: self._expected]
            self._expected = None
            messages.append(decode_message(frame))
        return messages

    def close(self) -> list[EventMessage]:
        """The body ended: anything left over is a truncated message."""
        if self._buffer:
            raise _broken(f"the body ended inside a message ({len(self._buffer)} bytes left)")
        return []
