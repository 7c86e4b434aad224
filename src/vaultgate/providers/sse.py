"""Server-sent events: an incremental parser for upstream streams, and the encoder.

The parser works on bytes, so an event or a UTF-8 character split across network reads is
reassembled before it is decoded. It accepts LF, CRLF and CR line ends, multi-line ``data``,
comment lines (``: keep-alive``) and fields it does not know, as the SSE standard asks.
An event (or a line still waiting for its end) larger than ``max_event_bytes`` is an
``UpstreamError``: a stream that never ends its line must not grow the buffer without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from vaultgate.errors import UpstreamError

DONE_LINE = b"data: [DONE]\n\n"
BOM = b"\xef\xbb\xbf"  # the standard says a stream may start with one, to be ignored
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None


class SseParser:
    """Feeds on raw bytes and yields complete events."""

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._buffer = b""
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Consume ``chunk``; return the events it completed."""
        self._buffer += chunk
        if not self._started and len(self._buffer) >= len(BOM):
            self._started = True
            if self._buffer.startswith(BOM):
                self._buffer = self._buffer[len(BOM) :]
        elif not self._started and not BOM.startswith(self._buffer):
            self._started = True
        events: list[SseEvent] = []
        while True:
            line, found = self._next_line()
            if not found:
                self._check_size(len(self._buffer))
                return events
            event = self._process_line(line)
            if event is not None:
                events.append(event)

    def _next_line(self) -> tuple[bytes, bool]:
        buffer = self._buffer
        newline = buffer.find(b"\n")
        carriage = buffer.find(b"\r")
        if newline < 0 and carriage < 0:
            return b"", False
        if carriage < 0 or (0 <= newline < carriage):
            end, skip = newline, 1
        elif carriage == len(buffer) - 1:
            return b"", False  # a lone CR may be the first half of CRLF: wait for more
        else:
            end = carriage
            skip = 2 if buffer[carriage + 1 : carriage + 2] == b"\n" else 1
        self._buffer = buffer[end + skip :]
        return buffer[:end], True

    def _process_line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            return self._dispatch()
        if raw.startswith(b":"):
            return None
        name, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", errors="replace")
        if name == b"data":
            self._check_size(self._data_size + len(value))
            self._data_size += len(value) + 1
            self._data.append(text)
        elif name == b"event":
            self._event = text
        elif name == b"id":
            self._id = text
        return None

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SseEvent("\n".join(self._data), self._event or "message", self._id)
        self._data = []
        self._data_size = 0
        self._event = ""
        return event

    def _check_size(self, size: int) -> None:
        if size > self.max_event_bytes:
            raise UpstreamError(
                f"the upstream stream sent an event larger than {self.max_event_bytes} bytes "
                "(the upstream_max_event_bytes setting)"
            )

    def close(self) -> list[SseEvent]:
        """Flush a final event that was not followed by a blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events


async def parse_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SseEvent]:
    """Turn a byte stream into SSE events."""
    parser = SseParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


def encode_event(payload: Any) -> bytes:
    """One ``data:`` event of OpenAI's stream format."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"
