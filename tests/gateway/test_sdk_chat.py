"""Chat completions through the official SDK, sync and async, streamed and not."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from tests.conftest import Gateway

PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping from the sdk"}]


def _content_chunks(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


def test_chat_sync_offline_returns_reply_usage_and_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="offline-small-text", messages=PROMPT
    )
    reply = raw.parse()

    assert raw.headers["x-vaultgate-provider"] == "offline"
    assert raw.headers["x-vaultgate-attempts"] == "1"
    assert raw.headers["x-request-id"].startswith("req_")
    assert reply.model == "offline-small-text"
    assert reply.object == "chat.completion"
    assert len(reply.choices) == 1
    content = reply.choices[0].message.content
    assert content is not None
    assert content.startswith("You said: ping from the sdk")
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == len(content.split())
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_sync_max_tokens_stops_with_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="offline-small-text", messages=PROMPT, max_tokens=5
    )

    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


def test_chat_sync_n_two_returns_two_choices(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="offline-small-text", messages=PROMPT, n=2)

    assert [choice.index for choice in reply.choices] == [0, 1]
    assert reply.usage is not None
    words = sum(len((choice.message.content or "").split()) for choice in reply.choices)
    assert reply.usage.completion_tokens == words


def test_chat_stream_without_include_usage_sends_no_usage_chunk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="offline-small-text", messages=PROMPT, stream=True
    ) as stream:
        chunks = list(stream)

    assert chunks
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(_content_chunks(chunks)).startswith("You said: ping from the sdk")
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_include_usage_false_sends_no_usage_chunk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="fake-plain-text",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": False},
    ) as stream:
        chunks = list(stream)

    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert "".join(_content_chunks(chunks)) == "Hello from the fake upstream."


def test_chat_stream_include_usage_ends_with_one_usage_chunk(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="offline-small-text", messages=PROMPT)
    with client.chat.completions.create(
        model="offline-small-text",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    with_usage = [chunk for chunk in chunks if chunk.usage is not None]
    assert with_usage == [chunks[-1]]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert plain.usage is not None
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert last.usage.completion_tokens == len(_content_chunks(chunks))
    assert "".join(_content_chunks(chunks)) == plain.choices[0].message.content
    assert all(chunk.choices for chunk in chunks[:-1])


def test_chat_stream_fake_upstream_usage_is_relayed(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="fake-plain-text",
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    assert {chunk.model for chunk in chunks} == {"fake-plain-text"}
    assert "".join(_content_chunks(chunks)) == "Hello from the fake upstream."
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 6, 17)


def test_chat_unsupported_param_is_dropped_with_warning_header(client: openai.OpenAI) -> None:
    tools: list[ChatCompletionToolParam] = [
        {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="offline-small-text", messages=PROMPT, tools=tools, logprobs=True
    )

    assert raw.parse().choices[0].message.content
    warning = raw.headers["x-vaultgate-warning"]
    assert "logprobs" in warning
    assert "tools" in warning


def test_chat_hybrid_model_answers_chat(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="offline-omni-hybrid", messages=PROMPT)

    assert reply.model == "offline-omni-hybrid"
    assert (reply.choices[0].message.content or "").startswith("You said:")


def test_chat_failover_model_reports_backup_provider(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="fake-failover-text", messages=PROMPT
    )

    assert raw.parse().choices[0].message.content == "Hello from the fake upstream."
    assert raw.headers["x-vaultgate-provider"] == "fake-backup"
    assert raw.headers["x-vaultgate-attempts"] == "2"


@pytest.mark.anyio
async def test_chat_async_client_completes_and_streams(
    anyio_backend: str, shared: Gateway
) -> None:
    async with openai.AsyncOpenAI(
        base_url=shared.api_base, api_key=shared.key, max_retries=0
    ) as sdk:
        reply = await sdk.chat.completions.create(model="offline-small-text", messages=PROMPT)
        stream = await sdk.chat.completions.create(
            model="offline-small-text",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert reply.choices[0].message.content == "".join(_content_chunks(chunks))
    assert chunks[-1].choices == []
    assert chunks[-1].usage == reply.usage


@pytest.mark.anyio
async def test_chat_async_errors_raise_sdk_classes(anyio_backend: str, shared: Gateway) -> None:
    async with openai.AsyncOpenAI(
        base_url=shared.api_base, api_key=shared.key, max_retries=0
    ) as sdk:
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.chat.completions.create(model="no-such-model-text", messages=PROMPT)
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.chat.completions.create(
                model="offline-small-text", messages=PROMPT, stream=True, top_p=2
            )

    assert missing.value.code == "model_not_found"
    assert bad.value.param == "top_p"
