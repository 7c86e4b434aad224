"""The shared HTTP machinery against a hostile upstream on a real local server: what it sends
is read within limits, and answers no provider could honestly give are failures, not
successes to relay or bill."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.hostile_openai import PIECE, HostileOpenAI, usage
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig, usage_from_openai
from vaultgate.providers.http import HttpClient, Timeouts, error_message_from_body
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter

pytestmark = pytest.mark.anyio

LIMIT = 256 * 1024
# Far more than the limit and than the socket buffers between the two ends, so an
# upstream that got everything out was read to its end.
HUGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileOpenAI]:
    """The hostile upstream, shared by the module."""
    server = HostileOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
async def adapter(hostile: HostileOpenAI) -> AsyncIterator[OpenAICompatibleAdapter]:
    """An adapter whose client reads at most LIMIT bytes per body and per event."""
    http = HttpClient(
        pool_size=4, pool_per_host=4, timeouts=Timeouts(connect=5, read=30, total=60),
        max_response_bytes=LIMIT, max_event_bytes=LIMIT,
    )  # fmt: skip
    config = ProviderConfig(name="hostile", wire_format="openai", base_url=hostile.base_url)
    yield OpenAICompatibleAdapter(config, http)
    await http.aclose()


def make_call(upstream: str, **extra: Any) -> ChatCall:
    """A call for ``upstream``, tagged so that each test's record is its own."""
    tagged = f"{upstream}~{uuid.uuid4().hex}"
    body: JsonObject = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    return ChatCall("hostile-text", tagged, body, ProviderConfig("hostile", "openai"))


async def drain(adapter: OpenAICompatibleAdapter, call: ChatCall) -> list[JsonObject]:
    """Every chunk of a streamed answer."""
    return await collect(adapter, call, into=[])


async def collect(
    adapter: OpenAICompatibleAdapter, call: ChatCall, *, into: list[JsonObject]
) -> list[JsonObject]:
    """Every chunk of a streamed answer, appended to ``into`` as it arrives."""
    async for chunk in adapter.chat_stream(call):
        into.append(chunk)
    return into


async def test_stream_line_without_end_beyond_limit_fails_and_closes_connection(
    adapter: OpenAICompatibleAdapter, hostile: HostileOpenAI
) -> None:
    call = make_call(f"huge-line-{HUGE}", stream=True)

    with pytest.raises(UpstreamError) as caught:
        await drain(adapter, call)

    assert caught.value.status == 502
    assert f"larger than {LIMIT} bytes" in caught.value.message
    assert hostile.finished[call.upstream_model] is False
    assert hostile.sent[call.upstream_model] < HUGE


async def test_body_with_declared_length_beyond_limit_fails_before_reading(
    adapter: OpenAICompatibleAdapter,
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(f"huge-body-{4 * LIMIT}"))

    assert caught.value.status == 502
    assert f"larger than {LIMIT} bytes" in caught.value.message


async def test_chunked_body_beyond_limit_fails_and_closes_connection(
    adapter: OpenAICompatibleAdapter, hostile: HostileOpenAI
) -> None:
    call = make_call(f"huge-chunked-body-{HUGE}")

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(call)

    assert f"larger than {LIMIT} bytes" in caught.value.message
    assert hostile.finished[call.upstream_model] is False
    assert hostile.sent[call.upstream_model] < HUGE


async def test_body_within_limit_is_read_whole(adapter: OpenAICompatibleAdapter) -> None:
    result = await adapter.chat(make_call(f"huge-body-{LIMIT - PIECE}"))

    assert result.body["choices"][0]["message"]["content"] == "Hostile but polite."
    assert len(result.body["pad"]) > LIMIT - 2 * PIECE


@pytest.mark.parametrize("upstream", ["choices-empty", "content-number"])
async def test_completion_without_well_formed_choice_is_upstream_error(
    adapter: OpenAICompatibleAdapter, upstream: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(upstream))

    assert caught.value.status == 502
    assert caught.value.retryable


async def test_stream_chunk_with_choices_not_a_list_fails_before_it_is_yielded(
    adapter: OpenAICompatibleAdapter,
) -> None:
    received: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call("chunk-choices-string", stream=True), into=received)

    assert "malformed stream chunk" in caught.value.message
    assert [chunk["choices"] for chunk in received] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    ]


async def test_html_error_page_gives_short_readable_message(
    adapter: OpenAICompatibleAdapter,
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("html-502"))

    message = caught.value.message
    assert message.startswith("hostile: 502 Bad Gateway 502 Bad Gateway nginx & friends")
    assert "<" not in message
    assert "window.location" not in message
    assert "font-family" not in message
    assert len(message) <= 500


def test_error_message_from_plain_text_body_is_kept() -> None:
    assert error_message_from_body(b"  upstream \n exploded ") == ("upstream exploded", None)


@pytest.mark.parametrize(
    "changes",
    [
        {"prompt_tokens": -5},
        {"completion_tokens": -1},
        {"prompt_tokens": True},
        {"completion_tokens": 1.5},
        {"prompt_tokens": "9"},
        {"prompt_tokens": None},
    ],
)
def test_usage_from_openai_impossible_counts_are_missing(changes: dict[str, Any]) -> None:
    assert usage_from_openai(usage(**changes)) is None


def test_usage_from_openai_cached_beyond_prompt_is_clamped() -> None:
    reported = usage_from_openai(usage(prompt_tokens_details={"cached_tokens": 50}))

    assert reported is not None
    assert reported.cached_tokens == reported.prompt_tokens == 9


async def test_negative_usage_from_upstream_is_not_trusted(
    adapter: OpenAICompatibleAdapter,
) -> None:
    result = await adapter.chat(make_call("usage-prompt--7"))

    assert result.usage is None


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("7", "7"),
        ("1.2", "2"),
        ("-5", "0"),
        ("99999999999999999999", "3600"),
        ("inf", "3600"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "0"),
        ("nan", None),
        ("soon", None),
    ],
)
def test_upstream_error_retry_after_is_whole_seconds_within_an_hour(
    sent: str, kept: str | None
) -> None:
    error = UpstreamError("slow down", status=429, headers={"Retry-After": sent, "x-a": "b"})

    assert error.headers.get("retry-after") == kept
    assert "Retry-After" not in error.headers
    assert error.headers["x-a"] == "b"
