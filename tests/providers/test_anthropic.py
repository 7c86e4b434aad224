"""The Anthropic adapter against a real local server speaking the Messages API, and the
official ``anthropic`` SDK against the same server, so the fake cannot drift from the
format the SDK accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest

from tests.support.fake_anthropic import (
    REPLY_WORDS,
    SECOND_TOOL_INPUT,
    TOOL_INPUT,
    FakeAnthropic,
    Recorded,
)
from vaultgate.errors import UpstreamError
from vaultgate.providers.anthropic import AnthropicAdapter
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig
from vaultgate.providers.http import HttpClient, Timeouts

pytestmark = pytest.mark.anyio

API_KEY = "sk-ant-fake-secret-0123456789"
REPLY = "".join(REPLY_WORDS)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PNG_DATA = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


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
def adapter(http: HttpClient, fake_anthropic: FakeAnthropic) -> AnthropicAdapter:
    """The adapter pointed at the fake, with an extra configured header."""
    config = ProviderConfig(
        name="anthropic",
        wire_format="anthropic",
        base_url=fake_anthropic.base_url,
        api_key=API_KEY,
        headers=(("anthropic-beta", "test-beta"),),
    )
    return AnthropicAdapter(config, http)


def make_call(
    adapter: AnthropicAdapter, upstream: str, *, limit: int | None = None, **extra: Any
) -> ChatCall:
    """A call for ``claude-<upstream>-text``; ``user`` tags the request for ``received``."""
    body: JsonObject = {
        "model": f"claude-{upstream}-text",
        "messages": [{"role": "user", "content": "hi"}],
        "user": uuid.uuid4().hex,
        **extra,
    }
    return ChatCall(f"claude-{upstream}-text", upstream, body, adapter.config, limit)


def received(fake: FakeAnthropic, call: ChatCall) -> Recorded:
    """The request the fake recorded for ``call``."""
    tag = call.body["user"]
    matches = [r for r in fake.requests if r.body.get("metadata", {}).get("user_id") == tag]
    assert len(matches) == 1
    return matches[0]


async def collect(
    adapter: AnthropicAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
) -> list[JsonObject]:
    """Every chunk of a streamed answer, also appended to ``into`` as it arrives."""
    chunks = [] if into is None else into
    async for chunk in adapter.chat_stream(call):
        chunks.append(chunk)
    return chunks


def deltas(chunks: list[JsonObject]) -> list[JsonObject]:
    """The deltas of the chunks that have a choice."""
    return [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]


def streamed_tool_calls(chunks: list[JsonObject]) -> dict[int, JsonObject]:
    """Tool calls reassembled from stream deltas, by OpenAI index."""
    calls: dict[int, JsonObject] = {}
    for delta in deltas(chunks):
        for piece in delta.get("tool_calls") or ():
            call = calls.setdefault(piece["index"], {"arguments": ""})
            for key in ("id", "type"):
                if key in piece:
                    call[key] = piece[key]
            if "name" in piece["function"]:
                call["name"] = piece["function"]["name"]
            call["arguments"] += piece["function"].get("arguments", "")
    return calls


# The request VaultGate sends.


async def test_chat_request_plain_sends_path_headers_and_model(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    sent = received(fake_anthropic, call)
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["anthropic-beta"] == "test-beta"
    assert "authorization" not in sent.headers
    assert sent.body["model"] == "plain"
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "stream" not in sent.body


async def test_chat_request_system_messages_anywhere_join_in_order(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "un"},
        {"role": "assistant", "content": [{"type": "text", "text": "deux"}]},
        {"role": "user", "content": "three"},
    ]
    call = make_call(adapter, "plain", messages=messages)

    await adapter.chat(call)

    sent = received(fake_anthropic, call).body
    assert sent["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    assert sent["messages"][1]["content"] == [
        {"type": "text", "text": "un"},
        {"type": "text", "text": "deux"},
    ]


async def test_chat_request_tool_history_becomes_tool_use_and_one_tool_result_turn(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
        {"role": "user", "content": "Thanks"},
    ]  # fmt: skip
    call = make_call(adapter, "plain", messages=messages, tools=[WEATHER_TOOL])

    await adapter.chat(call)

    turns = received(fake_anthropic, call).body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Tokyo"}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_2",
         "content": [{"type": "text", "text": "25C"}]},
        {"type": "text", "text": "Thanks"},
    ]  # fmt: skip


async def test_chat_request_images_become_url_and_base64_sources(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_DATA}"}},
    ]
    call = make_call(adapter, "plain", messages=[{"role": "user", "content": content}])

    await adapter.chat(call)

    blocks = received(fake_anthropic, call).body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.invalid/a.jpg"},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA},
    }


@pytest.mark.parametrize(
    ("limit", "extra", "expected"),
    [
        (None, {}, 4096),
        (8192, {}, 8192),
        (8192, {"max_tokens": 100}, 100),
        (None, {"max_tokens": 100, "max_completion_tokens": 50}, 50),
    ],
)
async def test_chat_request_max_tokens_defaults_to_model_limit_then_4096(
    adapter: AnthropicAdapter,
    fake_anthropic: FakeAnthropic,
    limit: int | None,
    extra: JsonObject,
    expected: int,
) -> None:
    call = make_call(adapter, "plain", limit=limit, **extra)

    await adapter.chat(call)

    assert received(fake_anthropic, call).body["max_tokens"] == expected


async def test_chat_request_sampling_params_translate_and_temperature_clamps(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(adapter, "plain", temperature=1.7, top_p=0.9, stop="END")

    await adapter.chat(call)

    sent = received(fake_anthropic, call).body
    assert sent["temperature"] == 1.0
    assert sent["top_p"] == 0.9
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": call.body["user"]}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, {"type": "auto"}),
        ("none", False, {"type": "none"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ({"type": "function", "function": {"name": "get_weather"}}, None,
         {"type": "tool", "name": "get_weather"}),
    ],
)  # fmt: skip
async def test_chat_request_tools_and_tool_choice_translate(
    adapter: AnthropicAdapter,
    fake_anthropic: FakeAnthropic,
    choice: Any,
    parallel: bool | None,
    expected: JsonObject,
) -> None:
    extra: JsonObject = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    call = make_call(adapter, "plain", **extra)

    await adapter.chat(call)

    sent = received(fake_anthropic, call).body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert sent["tool_choice"] == expected


async def test_unsupported_params_lists_dropped_parameters_only(adapter: AnthropicAdapter) -> None:
    body = {
        "model": "m", "messages": [], "n": 1, "response_format": {"type": "text"},
        "seed": 7, "logprobs": True, "top_logprobs": 2, "presence_penalty": 0.5,
        "frequency_penalty": 0.5, "logit_bias": {"1": 2}, "temperature": 0.2, "store": None,
    }  # fmt: skip

    dropped = adapter.unsupported_params(body)

    assert dropped == [
        "seed", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty",
        "logit_bias",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ],
)
async def test_chat_request_refused_params_raise_400_without_sending(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic, extra: JsonObject, param: str
) -> None:
    call = make_call(adapter, "plain", **extra)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(call)

    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.retryable is False
    tag = call.body["user"]
    assert not [
        r for r in fake_anthropic.requests if r.body.get("metadata", {}).get("user_id") == tag
    ]


# The OpenAI answer it returns.


async def test_chat_response_plain_is_openai_completion(adapter: AnthropicAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "plain"))

    body = result.body
    assert body["id"] == "msg_fake01"
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-plain-text"
    assert isinstance(body["created"], int)
    assert body["choices"][0]["message"] == {
        "role": "assistant", "content": REPLY, "refusal": None,
    }  # fmt: skip
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == 12
    assert body["usage"]["completion_tokens"] == 7
    assert result.usage is not None
    assert result.usage.total_tokens == 19


async def test_chat_response_tool_use_becomes_tool_calls(adapter: AnthropicAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "tool", tools=[WEATHER_TOOL]))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["id"] == "toolu_01"
    assert tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == TOOL_INPUT


async def test_chat_response_parallel_tool_use_has_null_content_and_two_calls(
    adapter: AnthropicAdapter,
) -> None:
    result = await adapter.chat(make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    message = result.body["choices"][0]["message"]
    assert message["content"] is None
    arguments = [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]]
    assert arguments == [TOOL_INPUT, SECOND_TOOL_INPUT]
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_01", "toolu_02"]


@pytest.mark.parametrize(
    ("upstream", "finish_reason"),
    [("stop-sequence", "stop"), ("length", "length"), ("refusal", "content_filter")],
)
async def test_chat_response_stop_reason_maps_to_finish_reason(
    adapter: AnthropicAdapter, upstream: str, finish_reason: str
) -> None:
    result = await adapter.chat(make_call(adapter, upstream, stop=["END"]))

    assert result.body["choices"][0]["finish_reason"] == finish_reason


async def test_chat_response_cache_tokens_count_once_as_prompt(adapter: AnthropicAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "cached"))

    assert result.usage is not None
    assert result.usage.prompt_tokens == 5 + 100 + 20
    assert result.usage.cached_tokens == 100
    assert result.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


# Streams.


async def test_chat_stream_plain_role_text_finish_then_usage(
    adapter: AnthropicAdapter, fake_anthropic: FakeAnthropic
) -> None:
    call = make_call(adapter, "plain")

    chunks = await collect(adapter, call)

    assert received(fake_anthropic, call).body["stream"] is True
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == REPLY
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "stop"
    assert finish.count("stop") == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert {c["id"] for c in chunks} == {"msg_fake01"}
    assert {c["model"] for c in chunks} == {"claude-plain-text"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


async def test_chat_stream_tool_use_streams_one_indexed_call(adapter: AnthropicAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "tool", tools=[WEATHER_TOOL]))

    calls = streamed_tool_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["id"] == "toolu_01"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_INPUT
    first = next(d for d in deltas(chunks) if d.get("tool_calls"))
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "Let me check."
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_chat_stream_parallel_tool_use_gets_one_index_per_call(
    adapter: AnthropicAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    calls = streamed_tool_calls(chunks)
    assert [calls[i]["id"] for i in (0, 1)] == ["toolu_01", "toolu_02"]
    assert json.loads(calls[0]["arguments"]) == TOOL_INPUT
    assert json.loads(calls[1]["arguments"]) == SECOND_TOOL_INPUT


async def test_chat_stream_tool_use_without_input_streams_empty_object_arguments(
    adapter: AnthropicAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "tool-no-args", tools=[WEATHER_TOOL]))

    calls = streamed_tool_calls(chunks)
    assert calls == {0: {"id": "toolu_03", "type": "function", "name": "get_time",
                         "arguments": "{}"}}  # fmt: skip


@pytest.mark.parametrize(
    ("upstream", "finish_reason"),
    [("stop-sequence", "stop"), ("length", "length"), ("refusal", "content_filter")],
)
async def test_chat_stream_stop_reason_maps_to_finish_reason(
    adapter: AnthropicAdapter, upstream: str, finish_reason: str
) -> None:
    chunks = await collect(adapter, make_call(adapter, upstream, stop=["END"]))

    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert reasons[-1] == finish_reason


async def test_chat_stream_cache_tokens_in_final_usage(adapter: AnthropicAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "cached"))

    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == 125
    assert usage["prompt_tokens_details"] == {"cached_tokens": 100}
    assert usage["completion_tokens"] == 7


async def test_chat_stream_error_event_raises_after_content(adapter: AnthropicAdapter) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "stream-error"), into=seen)

    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert "Overloaded" in caught.value.message
    assert any(d.get("content") for d in deltas(seen))
    assert not any(c["choices"] and c["choices"][0]["finish_reason"] for c in seen)


# Errors.


@pytest.mark.parametrize(
    ("upstream_status", "status", "retryable"),
    [(400, 400, False), (401, 502, True), (429, 429, True), (500, 502, True), (529, 503, True)],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_error_status_maps_by_status(
    adapter: AnthropicAdapter, upstream_status: int, status: int, retryable: bool, stream: bool
) -> None:
    call = make_call(adapter, f"error-{upstream_status}")

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert API_KEY not in caught.value.message
    if upstream_status == 429:
        assert caught.value.headers == {"retry-after": "7"}
    if upstream_status in (400, 429, 500, 529):
        assert f"fake Anthropic error {upstream_status}" in caught.value.message


async def test_chat_error_body_echoing_key_is_scrubbed(adapter: AnthropicAdapter) -> None:
    raw = json.dumps(
        {"type": "error", "error": {"type": "api_error", "message": f"bad key {API_KEY}"}}
    ).encode()

    error = adapter.map_error(500, raw, {})

    assert API_KEY not in error.message
    assert "***" in error.message


# The official SDK accepts everything the fake sends.

SDK_MODELS = ["plain", "tool", "parallel-tools", "stop-sequence", "length", "refusal", "cached"]


@pytest.fixture(scope="module")
def sdk(fake_anthropic: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    """The official client pointed at the fake, without retries."""
    with anthropic.Anthropic(
        base_url=fake_anthropic.base_url, api_key=API_KEY, max_retries=0
    ) as client:
        yield client


def _sdk_request(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["END"],
    }


def _blocks(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """Content blocks as plain data; the streaming helper's parsed variants add a field."""
    return [block.model_dump(exclude={"parsed_output"}) for block in message.content]


@pytest.mark.parametrize("model", SDK_MODELS)
def test_sdk_create_accepts_fake_message(sdk: anthropic.Anthropic, model: str) -> None:
    message = sdk.messages.create(**_sdk_request(model))

    assert message.type == "message"
    assert message.stop_reason is not None
    assert message.usage.output_tokens == 7


@pytest.mark.parametrize("model", SDK_MODELS)
def test_sdk_stream_accepts_fake_events_and_rebuilds_message(
    sdk: anthropic.Anthropic, model: str
) -> None:
    whole = sdk.messages.create(**_sdk_request(model))

    with sdk.messages.stream(**_sdk_request(model)) as stream:
        streamed = stream.get_final_message()

    assert _blocks(streamed) == _blocks(whole)
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.stop_sequence == whole.stop_sequence
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    assert streamed.usage.cache_read_input_tokens == whole.usage.cache_read_input_tokens


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_sdk_create_parses_fake_error_body(
    sdk: anthropic.Anthropic, status: int, error_class: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(error_class) as caught:
        sdk.messages.create(**_sdk_request(f"error-{status}"))

    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["message"] == f"fake Anthropic error {status}"


def test_sdk_stream_raises_on_fake_error_event(sdk: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        sdk.messages.stream(**_sdk_request("stream-error")) as stream,
    ):
        stream.get_final_message()
