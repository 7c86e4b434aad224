"""The incremental SSE parser and the event encoder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from vaultgate.errors import UpstreamError
from vaultgate.providers.sse import SseEvent, SseParser, encode_event, parse_sse


def parse_whole(stream: bytes) -> list[SseEvent]:
    """Events of a stream fed in one piece, including what close() flushes."""
    parser = SseParser()
    return parser.feed(stream) + parser.close()


def parse_bytewise(stream: bytes) -> list[SseEvent]:
    """Events of a stream fed one byte at a time."""
    parser = SseParser()
    events: list[SseEvent] = []
    for index in range(len(stream)):
        events += parser.feed(stream[index : index + 1])
    return events + parser.close()


def parse_split(stream: bytes, at: int) -> list[SseEvent]:
    """Events of a stream fed in two pieces, split at ``at``."""
    parser = SseParser()
    return parser.feed(stream[:at]) + parser.feed(stream[at:]) + parser.close()


STREAMS = {
    "lf": b'data: {"a": 1}\n\ndata: {"b": 2}\n\n',
    "crlf": b"data: one\r\n\r\ndata: two\r\n\r\n",
    "lone-cr": b"data: one\r\rdata: two\r\r",
    "mixed-line-ends": b"data: one\r\ndata: more\n\rdata: two\r\r\n",
    "comments": b": keep-alive\n\ndata: x\n: ping\ndata: y\n\n:\n\n",
    "multiline": b"data: first\ndata: second\ndata:third\n\n",
    "fields": b"event: update\nid: 42\ndata: payload\n\ndata: after\n\n",
    "unknown-fields": b"retry: 1000\nfoo: bar\nnocolon\ndata: kept\n\n",
    "utf8": "data: héllo wörld ✓ 🎉\n\n".encode(),
    "no-trailing-blank": b"data: one\n\ndata: last",
    "done": b"data: [DONE]\n\n",
}


def test_parser_multiline_data_joins_with_newlines() -> None:
    assert parse_whole(STREAMS["multiline"]) == [SseEvent("first\nsecond\nthird")]


def test_parser_comments_and_keepalives_are_skipped() -> None:
    assert parse_whole(STREAMS["comments"]) == [SseEvent("x\ny")]


def test_parser_crlf_line_ends_give_same_events_as_lf() -> None:
    assert parse_whole(STREAMS["crlf"]) == [SseEvent("one"), SseEvent("two")]


def test_parser_lone_cr_line_ends_are_accepted() -> None:
    assert parse_whole(STREAMS["lone-cr"]) == [SseEvent("one"), SseEvent("two")]


def test_parser_mixed_line_ends_are_accepted() -> None:
    assert parse_whole(STREAMS["mixed-line-ends"]) == [SseEvent("one\nmore"), SseEvent("two")]


def test_parser_event_and_id_fields_are_reported() -> None:
    events = parse_whole(STREAMS["fields"])

    assert events[0] == SseEvent("payload", event="update", id="42")
    # The event type resets after dispatch; the last event id persists, as the standard says.
    assert events[1] == SseEvent("after", event="message", id="42")


def test_parser_unknown_fields_are_ignored() -> None:
    assert parse_whole(STREAMS["unknown-fields"]) == [SseEvent("kept")]


def test_parser_data_without_space_after_colon_keeps_value() -> None:
    assert parse_whole(b"data:tight\n\ndata:  two spaces\n\n") == [
        SseEvent("tight"),
        SseEvent(" two spaces"),
    ]


def test_parser_final_event_without_blank_line_is_flushed_by_close() -> None:
    parser = SseParser()

    assert parser.feed(STREAMS["no-trailing-blank"]) == [SseEvent("one")]
    assert parser.close() == [SseEvent("last")]


def test_parser_final_event_ended_by_lone_cr_is_flushed_by_close() -> None:
    parser = SseParser()

    assert parser.feed(b"data: last\r") == []
    assert parser.close() == [SseEvent("last")]


def test_parser_close_without_pending_data_yields_nothing() -> None:
    parser = SseParser()
    parser.feed(b"data: x\n\n: trailing comment\n")

    assert parser.close() == []


def test_parser_event_field_without_data_dispatches_nothing() -> None:
    assert parse_whole(b"event: ping\n\ndata: real\n\n") == [SseEvent("real")]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_parser_fed_byte_by_byte_gives_identical_events(name: str) -> None:
    stream = STREAMS[name]

    assert parse_bytewise(stream) == parse_whole(stream)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_parser_split_at_every_position_gives_identical_events(name: str) -> None:
    stream = STREAMS[name]
    expected = parse_whole(stream)

    for at in range(len(stream) + 1):
        assert parse_split(stream, at) == expected, f"split at byte {at}"


def test_parser_multibyte_character_split_across_feeds_is_reassembled() -> None:
    stream = "data: ✓🎉\n\n".encode()
    parser = SseParser()
    check_start = stream.index("✓".encode())

    events = parser.feed(stream[: check_start + 1])
    events += parser.feed(stream[check_start + 1 : check_start + 5])
    events += parser.feed(stream[check_start + 5 :])

    assert events == [SseEvent("✓🎉")]
    assert "\ufffd" not in events[0].data


def test_parse_sse_async_stream_yields_events_and_flushes_tail() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b"data: a\r", b"\n\r\ndata: ", b"b\n\ndata: c"):
            yield piece

    async def collect() -> list[SseEvent]:
        return [event async for event in parse_sse(chunks())]

    assert asyncio.run(collect()) == [SseEvent("a"), SseEvent("b"), SseEvent("c")]


def test_encode_event_round_trips_through_parser() -> None:
    payload = {"choices": [{"delta": {"content": "line\nbreak ✓"}}]}
    encoded = encode_event(payload)

    assert encoded.startswith(b"data: ")
    assert encoded.endswith(b"\n\n")
    assert [orjson.loads(e.data) for e in parse_whole(encoded)] == [payload]


def test_parser_line_without_end_beyond_limit_raises_upstream_error() -> None:
    parser = SseParser(max_event_bytes=1024)
    parser.feed(b"data: " + b"a" * 1000)

    with pytest.raises(UpstreamError) as caught:
        parser.feed(b"a" * 100)

    assert caught.value.status == 502
    assert "larger than 1024 bytes" in caught.value.message


def test_parser_event_of_many_lines_beyond_limit_raises_upstream_error() -> None:
    parser = SseParser(max_event_bytes=1024)
    for _ in range(10):
        parser.feed(b"data: " + b"a" * 100 + b"\n")

    with pytest.raises(UpstreamError):
        parser.feed(b"data: " + b"a" * 100 + b"\n")


def test_parser_events_up_to_limit_are_accepted_one_after_another() -> None:
    parser = SseParser(max_event_bytes=1024)
    event = b"data: " + b"a" * 1000 + b"\n\n"

    events = [e for _ in range(50) for e in parser.feed(event)]

    assert len(events) == 50
    assert events[0].data == "a" * 1000
