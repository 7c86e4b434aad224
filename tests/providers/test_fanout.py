"""Gateway-side fan-out of ``n`` for providers that answer one choice per request: against
the fake Anthropic server, and against a scripted provider for failures and closing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.fake_anthropic import REPLY_WORDS, FakeAnthropic
from tests.support.fake_openai import FakeOpenAI
from vaultgate.errors import UpstreamError
from vaultgate.providers import fanout
from vaultgate.providers.anthropic import AnthropicAdapter
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    ImageCall,
    ImageResult,
    JsonObject,
    ProviderConfig,
    Usage,
)
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter

pytestmark = pytest.mark.anyio

REPLY = "".join(REPLY_WORDS)
SCRIPTED = ProviderConfig(name="scripted", wire_format="offline")


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """The fake Messages API, shared by the module."""
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """A pooled client, closed after the test."""
    client = HttpClient(
        pool_size=8, pool_per_host=8, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    yield client
    await client.aclose()


@pytest.fixture
def anthropic(http: HttpClient, fake_anthropic: FakeAnthropic) -> AnthropicAdapter:
    """The Anthropic adapter on the fake."""
    config = ProviderConfig(
        name="anthropic", wire_format="anthropic", base_url=fake_anthropic.base_url,
        api_key="sk-ant-fanout-0123456789",
    )  # fmt: skip
    return AnthropicAdapter(config, http)


def make_call(config: ProviderConfig, upstream: str, **body: Any) -> ChatCall:
    """A call for ``upstream`` (tagged so the fake's records can be told apart)."""
    tagged = f"{upstream}~{uuid.uuid4().hex[:12]}"
    full = {"model": "claude-text", "messages": [{"role": "user", "content": "hi"}], **body}
    return ChatCall("claude-text", tagged, full, config, 1024)


def sent_for(fake: FakeAnthropic, call: ChatCall) -> list[JsonObject]:
    """The bodies the fake received for ``call``."""
    return [r.body for r in fake.requests if r.body.get("model") == call.upstream_model]


async def collect(stream: AsyncIterator[JsonObject], into: list[JsonObject]) -> None:
    """Every chunk of a stream, appended to ``into`` as it arrives."""
    async for chunk in stream:
        into.append(chunk)


# Whole answers.


async def test_chat_n3_for_one_choice_provider_merges_three_calls(
    anthropic: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(anthropic.config, "plain", n=3)

    result = await fanout.chat(anthropic, call)

    bodies = sent_for(fake_anthropic, call)
    assert len(bodies) == 3
    assert all("n" not in body for body in bodies)
    assert [c["index"] for c in result.body["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in result.body["choices"]] == [REPLY] * 3
    assert result.body["id"] == "msg_fake01"
    # Each call is billed its prompt upstream: the prompt counts three times.
    assert result.usage == Usage(prompt_tokens=36, completion_tokens=21)
    assert result.body["usage"] == result.usage.as_openai()


async def test_chat_n3_cached_usage_sums_cached_tokens(anthropic: AnthropicAdapter) -> None:
    result = await fanout.chat(anthropic, make_call(anthropic.config, "cached", n=3))

    assert result.usage == Usage(prompt_tokens=375, completion_tokens=21, cached_tokens=300)


async def test_chat_n2_upstream_error_raises_it(anthropic: AnthropicAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await fanout.chat(anthropic, make_call(anthropic.config, "error-429", n=2))

    assert caught.value.status == 429
    assert caught.value.headers == {"retry-after": "7"}


async def test_chat_n1_for_one_choice_provider_makes_one_call(
    anthropic: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(anthropic.config, "plain", n=1)

    result = await fanout.chat(anthropic, call)

    assert len(sent_for(fake_anthropic, call)) == 1
    assert len(result.body["choices"]) == 1


async def test_chat_native_n_provider_gets_one_call_with_n(http: HttpClient) -> None:
    fake = FakeOpenAI().start()
    try:
        config = ProviderConfig(name="openai", wire_format="openai", base_url=fake.base_url)
        adapter = OpenAICompatibleAdapter(config, http)
        call = make_call(config, "plain", n=2)

        result = await fanout.chat(adapter, call)
        stream: list[JsonObject] = []
        await collect(fanout.chat_stream(adapter, make_call(config, "plain", n=2)), stream)
    finally:
        fake.stop()

    assert [r.body["n"] for r in fake.requests] == [2, 2]
    assert len(result.body["choices"]) == 2
    assert {c["index"] for chunk in stream for c in chunk["choices"]} == {0, 1}


async def test_chat_n_above_bound_refused_without_calls(
    anthropic: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(anthropic.config, "plain", n=fanout.MAX_FANOUT + 1)

    with pytest.raises(UpstreamError) as caught:
        await fanout.chat(anthropic, call)
    with pytest.raises(UpstreamError):
        fanout.chat_stream(anthropic, call)

    assert (caught.value.status, caught.value.param, caught.value.retryable) == (400, "n", False)
    assert sent_for(fake_anthropic, call) == []


def test_sum_usage_without_every_calls_usage_is_none() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4)

    assert fanout.sum_usage([usage, None]) is None
    assert fanout.sum_usage([usage, usage]) == Usage(prompt_tokens=6, completion_tokens=8)


# Streams.


async def test_stream_n2_interleaves_choices_role_first_finish_each_usage_summed(
    anthropic: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(anthropic.config, "plain", n=2, stream=True)
    chunks: list[JsonObject] = []

    await collect(fanout.chat_stream(anthropic, call), chunks)

    assert len(sent_for(fake_anthropic, call)) == 2
    assert {chunk["id"] for chunk in chunks} == {"msg_fake01"}
    for index in (0, 1):
        mine = [
            c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index
        ]
        assert mine[0]["delta"]["role"] == "assistant"
        assert "".join(c["delta"].get("content") or "" for c in mine) == REPLY
        assert [c["finish_reason"] for c in mine if c["finish_reason"]] == ["stop"]
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    assert usage_chunks == [chunks[-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == Usage(prompt_tokens=24, completion_tokens=14).as_openai()


async def test_stream_n2_error_inside_streams_ends_merged_stream(
    anthropic: AnthropicAdapter,
) -> None:
    call = make_call(anthropic.config, "stream-error", n=2, stream=True)
    chunks: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(fanout.chat_stream(anthropic, call), chunks)

    assert caught.value.status == 503
    assert not any(c.get("finish_reason") for chunk in chunks for c in chunk["choices"])


class Scripted:
    """A provider answering one choice per request, each stream from its own script:
    chunks, an error to raise, or ``HANG`` to wait until closed. It records which streams
    were closed."""

    supports_n = False
    config = SCRIPTED

    def __init__(self, scripts: list[list[Any]]) -> None:
        self._scripts = scripts
        self._started = 0
        self.closed: list[int] = []

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Nothing is dropped."""
        return []

    async def chat(self, call: ChatCall) -> ChatResult:
        """Not scripted."""
        raise NotImplementedError

    async def chat_stream(self, call: ChatCall) -> AsyncIterator[JsonObject]:
        """The next script, one item at a time."""
        position = self._started
        self._started += 1
        try:
            for item in self._scripts[position]:
                await asyncio.sleep(0)
                if isinstance(item, Exception):
                    raise item
                if item == "HANG":
                    await asyncio.Event().wait()
                yield item
        finally:
            self.closed.append(position)

    async def images(self, call: ImageCall) -> ImageResult:
        """Not scripted."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Nothing to release."""


def chunk(text: str | None = None, finish: str | None = None, **delta: Any) -> JsonObject:
    """A one-choice chunk at index 0, as one-choice providers send them."""
    if text is not None:
        delta["content"] = text
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [choice]}  # fmt: skip


async def test_stream_one_failing_call_ends_stream_and_closes_the_others() -> None:
    provider = Scripted([
        [chunk(role="assistant"), chunk("a"), "HANG"],
        [chunk(role="assistant"), chunk("b"), UpstreamError("broke", status=502)],
    ])  # fmt: skip
    chunks: list[JsonObject] = []

    with pytest.raises(UpstreamError, match="broke"):
        await collect(fanout.chat_stream(provider, make_call(SCRIPTED, "x", n=2)), chunks)

    assert sorted(provider.closed) == [0, 1]
    assert {c["index"] for chunk in chunks for c in chunk["choices"]} <= {0, 1}


async def test_stream_closed_by_client_closes_every_call() -> None:
    provider = Scripted([[chunk(role="assistant"), "HANG"] for _ in range(3)])
    stream = fanout.chat_stream(provider, make_call(SCRIPTED, "x", n=3))

    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert sorted(provider.closed) == [0, 1, 2]


async def test_stream_choice_without_role_gets_one_first() -> None:
    provider = Scripted([[chunk("a"), chunk(finish="stop")] for _ in range(2)])
    chunks: list[JsonObject] = []

    await collect(fanout.chat_stream(provider, make_call(SCRIPTED, "x", n=2)), chunks)

    firsts: dict[int, JsonObject] = {}
    for item in chunks:
        for choice in item["choices"]:
            firsts.setdefault(choice["index"], choice["delta"])
    assert firsts == {
        0: {"role": "assistant", "content": "a"},
        1: {"role": "assistant", "content": "a"},
    }
    assert not any("usage" in item for item in chunks)
