"""The Cohere adapter against a real local server speaking the v2 Chat API, and the official
``cohere`` SDK against the same server, so the fake cannot drift from what the SDK accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cohere
import httpx
import pytest

from tests.support.fake_cohere import (
    BILLED,
    CACHED,
    FINISH_ERROR,
    JSON_REPLY,
    REPLY_WORDS,
    TOOL_PLAN,
    FakeCohere,
    Recorded,
)
from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers import fanout
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig
from vaultgate.providers.cohere import CohereAdapter
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.sse import SseEvent

pytestmark = pytest.mark.anyio

REPLY = "".join(REPLY_WORDS)
PNG_URL = "data:image/png;base64,iVBORw0KGgo="
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER_PARAMETERS,
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


@pytest.fixture(scope="module")
def fake_cohere() -> Iterator[FakeCohere]:
    """The fake v2 Chat API, shared by the module."""
    server = FakeCohere().start()
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
def adapter(http: HttpClient, fake_cohere: FakeCohere) -> CohereAdapter:
    """The adapter pointed at the fake, with an extra configured header."""
    config = ProviderConfig(
        name="cohere",
        wire_format="cohere",
        base_url=fake_cohere.base_url,
        api_key=fake_cohere.api_key,
        headers=(("X-Client-Name", "vaultgate-test"),),
    )
    return CohereAdapter(config, http)


def make_call(adapter: CohereAdapter, upstream: str, **extra: Any) -> ChatCall:
    """A call for ``cohere-<upstream>-text``; its first message is a unique tag."""
    tag = uuid.uuid4().hex
    messages = extra.pop("messages", [{"role": "user", "content": "hi"}])
    body: JsonObject = {
        "model": f"cohere-{upstream}-text",
        "messages": [{"role": "system", "content": tag}, *messages],
        **extra,
    }
    return ChatCall(f"cohere-{upstream}-text", upstream, body, adapter.config)


def received(fake: FakeCohere, call: ChatCall) -> Recorded:
    """The request the fake recorded for ``call`` (found by its tag)."""
    tag = call.body["messages"][0]["content"]
    matches = [r for r in fake.requests if tag in str((r.body.get("messages") or [{}])[0])]
    assert len(matches) == 1
    return matches[0]


async def collect(
    adapter: CohereAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
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
            call.update({k: piece[k] for k in ("id", "type") if k in piece})
            if "name" in piece["function"]:
                call["name"] = piece["function"]["name"]
            call["arguments"] += piece["function"].get("arguments", "")
    return calls


# The request VaultGate sends.


async def test_chat_request_plain_sends_path_headers_and_body(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    sent = received(fake_cohere, call)
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {fake_cohere.api_key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-client-name"] == "vaultgate-test"
    assert sent.body == {
        "model": "plain",
        "messages": [
            {"role": "system", "content": call.body["messages"][0]["content"]},
            {"role": "user", "content": "hi"},
        ],
    }


async def test_chat_request_system_and_developer_join_first(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "un"}]},
        {"role": "user", "content": "two"},
    ]
    call = make_call(adapter, "plain", messages=messages)

    await adapter.chat(call)

    sent = received(fake_cohere, call).body["messages"]
    tag = call.body["messages"][0]["content"]
    assert sent == [
        {"role": "system", "content": f"{tag}\n\nAnswer in French."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "un"},
        {"role": "user", "content": "two"},
    ]


async def test_chat_request_tool_history_uses_tool_plan_and_tool_turns(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 18}'},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok"}]},
    ]  # fmt: skip
    call = make_call(adapter, "plain", messages=messages, tools=[WEATHER_TOOL])

    await adapter.chat(call)

    sent = received(fake_cohere, call).body["messages"][1:]
    assert sent[1] == {
        "role": "assistant",
        "tool_plan": "Let me check.",
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ],
    }  # fmt: skip
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 18}'}
    assert sent[3]["content"] == [{"type": "text", "text": "ok"}]


async def test_chat_request_images_become_image_url_parts(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.jpg"}},
    ]
    call = make_call(adapter, "image-input", messages=[{"role": "user", "content": content}])

    result = await adapter.chat(call)

    assert received(fake_cohere, call).body["messages"][1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.jpg"}},
    ]
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_request_sampling_params_translate_and_clamp(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    call = make_call(
        adapter, "plain", max_tokens=100, max_completion_tokens=50, temperature=1.2,
        top_p=1.0, top_k=40, stop="END", seed=7, frequency_penalty=1.5, presence_penalty=-0.5,
    )  # fmt: skip

    await adapter.chat(call)

    sent = received(fake_cohere, call).body
    sent.pop("messages")
    assert sent == {
        "model": "plain", "max_tokens": 50, "temperature": 1.2, "p": 0.99, "k": 40,
        "stop_sequences": ["END"], "seed": 7, "frequency_penalty": 1.0,
        "presence_penalty": 0.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "expected_choice", "expected_tools"),
    [
        (None, None, ["get_weather", "get_time"]),
        ("auto", None, ["get_weather", "get_time"]),
        ("none", "NONE", ["get_weather", "get_time"]),
        ("required", "REQUIRED", ["get_weather", "get_time"]),
        ({"type": "function", "function": {"name": "get_time"}}, "REQUIRED", ["get_time"]),
    ],
)
async def test_chat_request_tools_and_tool_choice_translate(
    adapter: CohereAdapter,
    fake_cohere: FakeCohere,
    choice: Any,
    expected_choice: str | None,
    expected_tools: list[str],
) -> None:
    extra: JsonObject = {"tools": [WEATHER_TOOL, TIME_TOOL]}
    if choice is not None:
        extra["tool_choice"] = choice
    call = make_call(adapter, "plain", **extra)

    await adapter.chat(call)

    sent = received(fake_cohere, call).body
    assert sent.get("tool_choice") == expected_choice
    assert [t["function"]["name"] for t in sent["tools"]] == expected_tools
    if "get_weather" in expected_tools:
        assert sent["tools"][0] == {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": WEATHER_PARAMETERS,
            },
        }
    assert sent["tools"][-1]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert "strict_tools" not in sent


async def test_chat_request_all_strict_functions_set_strict_tools(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    function: JsonObject = {**WEATHER_TOOL["function"], "strict": True}  # type: ignore[dict-item]
    strict = {"type": "function", "function": function}
    call = make_call(adapter, "plain", tools=[strict])

    await adapter.chat(call)

    sent = received(fake_cohere, call).body
    assert sent["strict_tools"] is True
    assert "strict" not in sent["tools"][0]["function"]


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_PARAMETERS}},
            {"type": "json_object", "json_schema": WEATHER_PARAMETERS},
        ),
    ],
)
async def test_chat_request_response_format_translates(
    adapter: CohereAdapter,
    fake_cohere: FakeCohere,
    response_format: JsonObject,
    expected: JsonObject | None,
) -> None:
    call = make_call(adapter, "json", response_format=response_format)

    result = await adapter.chat(call)

    assert received(fake_cohere, call).body.get("response_format") == expected
    assert json.loads(result.body["choices"][0]["message"]["content"]) == JSON_REPLY


async def test_chat_request_stream_sets_stream_and_accepts_event_stream(
    adapter: CohereAdapter, fake_cohere: FakeCohere
) -> None:
    call = make_call(adapter, "plain", stream_options={"include_usage": True})

    await collect(adapter, call)

    sent = received(fake_cohere, call)
    assert sent.body["stream"] is True
    assert "stream_options" not in sent.body
    assert sent.headers["accept"] == "text/event-stream"


async def test_unsupported_params_lists_dropped_parameters_only(adapter: CohereAdapter) -> None:
    body = {
        "model": "m", "messages": [], "n": 1, "user": "u", "logprobs": True, "top_logprobs": 2,
        "logit_bias": {"1": 2}, "parallel_tool_calls": False, "temperature": 0.2,
        "store": None, "top_k": 5, "seed": 1,
    }  # fmt: skip

    dropped = adapter.unsupported_params(body)

    assert dropped == ["user", "logprobs", "top_logprobs", "logit_bias", "parallel_tool_calls"]
    assert adapter.unsupported_params({"parallel_tool_calls": True, "logprobs": False}) == []


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"tools": [WEATHER_TOOL],
          "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[1].role"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "messages[1].content[0]"),
    ],
)  # fmt: skip
async def test_chat_request_refused_params_raise_400_without_sending(
    adapter: CohereAdapter, fake_cohere: FakeCohere, extra: JsonObject, param: str
) -> None:
    call = make_call(adapter, "plain", **extra)
    before = len(fake_cohere.requests)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(call)

    assert (caught.value.status, caught.value.param) == (400, param)
    assert caught.value.retryable is False
    assert len(fake_cohere.requests) == before


# The OpenAI answer it returns.


async def test_chat_response_plain_is_openai_completion_billed_by_billed_units(
    adapter: CohereAdapter,
) -> None:
    result = await adapter.chat(make_call(adapter, "plain"))

    body = result.body
    assert isinstance(body.pop("created"), int)
    assert body == {
        "id": "5a1c0c5e-0000-4000-8000-000000000001",
        "object": "chat.completion",
        "model": "cohere-plain-text",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": BILLED["input_tokens"],
            "completion_tokens": BILLED["output_tokens"],
            "total_tokens": BILLED["input_tokens"] + BILLED["output_tokens"],
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert result.usage is not None
    assert result.usage.prompt_tokens == BILLED["input_tokens"]


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_usage_cached_tokens_are_part_of_the_prompt(
    adapter: CohereAdapter, stream: bool
) -> None:
    call = make_call(adapter, "cached")

    if stream:
        usage = (await collect(adapter, call))[-1]["usage"]
    else:
        usage = (await adapter.chat(call)).body["usage"]

    assert usage["prompt_tokens"] == BILLED["input_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": CACHED}


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_n_choices_fan_out_one_call_each(adapter: CohereAdapter, stream: bool) -> None:
    call = make_call(adapter, "plain", n=2)

    if stream:
        chunks = [c async for c in fanout.chat_stream(adapter, call)]
        finished = {c["choices"][0]["index"] for c in chunks if c["choices"]
                    and c["choices"][0]["finish_reason"]}  # fmt: skip
        assert finished == {0, 1}
    else:
        result = await fanout.chat(adapter, call)
        assert [c["message"]["content"] for c in result.body["choices"]] == [REPLY, REPLY]
        assert result.body["usage"]["prompt_tokens"] == 2 * BILLED["input_tokens"]
    assert adapter.supports_n is False


async def test_chat_response_tool_call_has_tool_plan_as_content(adapter: CohereAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "tool", tools=[WEATHER_TOOL]))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == TOOL_PLAN
    assert choice["message"]["tool_calls"] == [
        {"id": "get_weather_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    ]  # fmt: skip


async def test_chat_response_parallel_tools_keeps_both_calls(adapter: CohereAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    calls = result.body["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["get_weather_0", "get_weather_1"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]


@pytest.mark.parametrize(
    ("upstream", "finish_reason"),
    [("plain", "stop"), ("stop-sequence", "stop"), ("length", "length"), ("tool", "tool_calls")],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_finish_reason_maps_one_to_one(
    adapter: CohereAdapter, upstream: str, finish_reason: str, stream: bool
) -> None:
    call = make_call(adapter, upstream, stop=["END"], tools=[WEATHER_TOOL])

    if stream:
        chunks = await collect(adapter, call)
        reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert [r for r in reasons if r] == [finish_reason]
    else:
        result = await adapter.chat(call)
        assert result.body["choices"][0]["finish_reason"] == finish_reason


@pytest.mark.parametrize(
    ("upstream", "error_class", "status"),
    [("finish-error", UpstreamError, 502), ("timeout", UpstreamTimeout, 504)],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_finish_error_and_timeout_raise(
    adapter: CohereAdapter,
    upstream: str,
    error_class: type[UpstreamError],
    status: int,
    stream: bool,
) -> None:
    call = make_call(adapter, upstream)

    with pytest.raises(error_class) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    assert caught.value.status == status
    assert caught.value.retryable is True
    if upstream == "finish-error" and stream:
        assert FINISH_ERROR in caught.value.message


async def test_chat_response_thinking_is_not_content(adapter: CohereAdapter) -> None:
    whole = await adapter.chat(make_call(adapter, "thinking"))
    chunks = await collect(adapter, make_call(adapter, "thinking"))

    assert whole.body["choices"][0]["message"]["content"] == REPLY
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == REPLY


# Streams.


async def test_chat_stream_plain_role_text_finish_then_usage(adapter: CohereAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "plain"))

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [d.get("content") for d in deltas(chunks)[1:-1]] == REPLY_WORDS
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == BILLED["input_tokens"]
    assert chunks[-1]["usage"]["completion_tokens"] == BILLED["output_tokens"]
    assert {c["id"] for c in chunks} == {"5a1c0c5e-0000-4000-8000-000000000001"}
    assert {c["model"] for c in chunks} == {"cohere-plain-text"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


async def test_chat_stream_parallel_tools_stream_plan_then_indexed_calls(
    adapter: CohereAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    assert "".join(d.get("content") or "" for d in deltas(chunks)) == TOOL_PLAN
    calls = streamed_tool_calls(chunks)
    assert [calls[i]["id"] for i in (0, 1)] == ["get_weather_0", "get_weather_1"]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]
    first = next(d for d in deltas(chunks) if d.get("tool_calls"))
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}


async def test_chat_stream_error_raises_after_content(adapter: CohereAdapter) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "stream-error"), into=seen)

    assert caught.value.status == 502
    assert FINISH_ERROR in caught.value.message
    assert any(d.get("content") for d in deltas(seen))
    assert not any(c["choices"] and c["choices"][0]["finish_reason"] for c in seen)


async def test_stream_translator_ignores_done_debug_and_unknown_events(
    adapter: CohereAdapter,
) -> None:
    translate = adapter.stream_translator(make_call(adapter, "plain"))

    events = [
        SseEvent(data="[DONE]"),
        SseEvent(data=json.dumps({"type": "debug", "prompt": "..."}), event="debug"),
        SseEvent(data=json.dumps({"type": "citation-start", "index": 0}), event="citation-start"),
        SseEvent(data=json.dumps({"type": "something-new"})),
    ]

    assert [translate(event) for event in events] == [[], [], [], []]


async def test_stream_translator_error_body_event_raises(adapter: CohereAdapter) -> None:
    translate = adapter.stream_translator(make_call(adapter, "plain"))

    with pytest.raises(UpstreamError, match="overloaded"):
        translate(SseEvent(data=json.dumps({"id": "x", "message": "model overloaded"})))


# Errors.


@pytest.mark.parametrize(
    ("upstream_status", "status", "retryable"),
    [
        (400, 400, False), (401, 502, True), (402, 502, True), (404, 502, True),
        (422, 400, False), (429, 429, True), (499, 502, True), (500, 502, True),
        (503, 503, True),
    ],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_error_status_maps_by_status(
    adapter: CohereAdapter, upstream_status: int, status: int, retryable: bool, stream: bool
) -> None:
    call = make_call(adapter, f"error-{upstream_status}")

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    error = caught.value
    assert (error.status, error.retryable) == (status, retryable)
    assert adapter.config.api_key not in error.message  # type: ignore[operator]
    if upstream_status == 429:
        assert (error.error_type, error.headers) == ("rate_limit_error", {"retry-after": "7"})
    if status in (400, 429, 503):
        assert f"fake Cohere error {upstream_status}" in error.message


async def test_chat_error_504_is_a_timeout(adapter: CohereAdapter) -> None:
    error = adapter.map_error(504, b'{"id": "x", "message": "gateway timeout"}', {})

    assert isinstance(error, UpstreamTimeout)
    assert error.status == 504


async def test_chat_error_body_echoing_key_is_scrubbed(adapter: CohereAdapter) -> None:
    raw = json.dumps({"id": "x", "message": f"bad key {adapter.config.api_key}"}).encode()

    error = adapter.map_error(500, raw, {})

    assert adapter.config.api_key not in error.message  # type: ignore[operator]
    assert "***" in error.message


# The official SDK accepts everything the fake sends.

SDK_SCENARIOS = [
    "plain", "tool", "parallel-tools", "stop-sequence", "length", "json", "image-input",
    "thinking", "finish-error", "timeout",
]  # fmt: skip


@pytest.fixture(scope="module")
def sdk(fake_cohere: FakeCohere) -> Iterator[cohere.ClientV2]:
    """The official v2 client pointed at the fake, without retries; its connections are
    closed afterwards."""
    with httpx.Client() as transport:
        yield cohere.ClientV2(
            api_key=fake_cohere.api_key, base_url=fake_cohere.base_url, max_retries=0,
            httpx_client=transport, log_warning_experimental_features=False,
        )  # fmt: skip


def _sdk_request(model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "hi"}]
    if model == "image-input":
        content.append({"type": "image_url", "image_url": {"url": PNG_URL}})
    request: dict[str, Any] = {
        "model": model, "messages": [{"role": "user", "content": content}],
        "stop_sequences": ["END"],
    }  # fmt: skip
    if model in ("tool", "parallel-tools"):
        request["tools"] = [WEATHER_TOOL]
    return request


@pytest.mark.parametrize("model", SDK_SCENARIOS)
def test_sdk_chat_and_chat_stream_agree_on_fake_answers(sdk: cohere.ClientV2, model: str) -> None:
    whole = sdk.chat(**_sdk_request(model))
    events = list(sdk.chat_stream(**_sdk_request(model)))

    text = "".join(
        e.delta.message.content.text or ""
        for e in events
        if e.type == "content-delta" and e.delta and e.delta.message and e.delta.message.content
    )
    whole_text = "".join(c.text for c in whole.message.content or () if c.type == "text")
    calls = [e for e in events if e.type == "tool-call-start"]
    assert events[0].type == "message-start"
    assert text == whole_text
    assert len(calls) == len(whole.message.tool_calls or ())
    end = events[-1]
    assert end.type == "message-end"
    assert end.delta is not None
    assert end.delta.finish_reason == whole.finish_reason
    assert end.delta.usage is not None
    assert end.delta.usage.billed_units is not None
    assert whole.usage is not None
    assert whole.usage.billed_units is not None
    assert end.delta.usage.billed_units.input_tokens == whole.usage.billed_units.input_tokens


def test_sdk_chat_stream_parses_stream_error_end(sdk: cohere.ClientV2) -> None:
    events = list(sdk.chat_stream(**_sdk_request("stream-error")))

    end = events[-1]
    assert end.type == "message-end"
    assert end.delta is not None
    assert (end.delta.finish_reason, end.delta.error) == ("ERROR", FINISH_ERROR)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, cohere.BadRequestError),
        (401, cohere.UnauthorizedError),
        (404, cohere.NotFoundError),
        (422, cohere.UnprocessableEntityError),
        (429, cohere.TooManyRequestsError),
        (499, cohere.ClientClosedRequestError),
        (500, cohere.InternalServerError),
        (503, cohere.ServiceUnavailableError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_sdk_parses_fake_error_body(
    sdk: cohere.ClientV2, status: int, error_class: type[Exception], stream: bool
) -> None:
    request = _sdk_request(f"error-{status}")

    with pytest.raises(error_class) as caught:
        list(sdk.chat_stream(**request)) if stream else sdk.chat(**request)

    body = caught.value.body  # type: ignore[attr-defined]
    assert set(body) == {"id", "message"}


def test_sdk_wrong_key_gets_401(fake_cohere: FakeCohere) -> None:
    with httpx.Client() as transport, pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(
            api_key="wrong", base_url=fake_cohere.base_url, max_retries=0, httpx_client=transport
        ).chat(**_sdk_request("plain"))
