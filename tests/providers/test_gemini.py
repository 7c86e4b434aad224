"""The Gemini adapter against a real local server speaking the Gemini API's wire format."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.support.fake_gemini import CALLS, REPLY, FakeGemini, Recorded
from tests.support.server import ServerProcess, make_user_and_key, prepare_database
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.http import HttpClient, Timeouts

pytestmark = pytest.mark.anyio

GEMINI_KEY = "AIza-fake-gemini-key-0123456789"
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    """The fake Gemini server, shared by the module."""
    server = FakeGemini().start()
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
def adapter(http: HttpClient, fake_gemini: FakeGemini) -> GeminiAdapter:
    """The adapter pointed at the fake server."""
    config = ProviderConfig(
        name="gemini", wire_format="gemini", base_url=fake_gemini.base_url, api_key=GEMINI_KEY
    )
    return GeminiAdapter(config, http)


def make_call(behaviour: str, **body: Any) -> ChatCall:
    """A call to a tagged upstream model, so the fake's record of it can be found."""
    upstream = f"{behaviour}~{uuid.uuid4().hex}"
    full: JsonObject = {"model": "gemini-test-text", **body}
    full.setdefault("messages", [{"role": "user", "content": "hi"}])
    config = ProviderConfig(name="gemini", wire_format="gemini")
    return ChatCall("gemini-test-text", upstream, full, config)


async def collect(
    adapter: GeminiAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
) -> list[JsonObject]:
    """Every chunk of a streamed answer, also appended to ``into`` as it arrives."""
    chunks = [] if into is None else into
    async for chunk in adapter.chat_stream(call):
        chunks.append(chunk)
    return chunks


async def sent(adapter: GeminiAdapter, fake: FakeGemini, **body: Any) -> Recorded:
    """What the fake server received for a plain call with ``body``."""
    call = make_call("plain", **body)
    await adapter.chat(call)
    return fake.received(call.upstream_model)


def deltas(chunks: list[JsonObject], field: str) -> list[Any]:
    """One delta field of every chunk that has it."""
    return [
        choice["delta"][field]
        for chunk in chunks
        for choice in chunk["choices"]
        if field in choice["delta"]
    ]


def finishes(chunks: list[JsonObject]) -> list[str]:
    """The finish reasons of a stream, in order."""
    return [
        choice["finish_reason"]
        for chunk in chunks
        for choice in chunk["choices"]
        if choice["finish_reason"]
    ]


# The request it sends.


async def test_chat_request_plain_posts_generate_content_with_key_header(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    call = make_call("plain")

    await adapter.chat(call)

    got = fake_gemini.received(call.upstream_model)
    assert got.method == "generateContent"
    assert got.headers["x-goog-api-key"] == GEMINI_KEY
    assert "Authorization" not in got.headers
    assert got.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_stream_request_uses_stream_method_with_sse(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    call = make_call("plain", stream=True, stream_options={"include_usage": True})

    await collect(adapter, call)

    got = fake_gemini.received(call.upstream_model)
    assert got.method == "streamGenerateContent"
    assert got.query == {"alt": "sse"}
    assert "stream" not in got.body


async def test_chat_request_system_messages_anywhere_become_system_instruction(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        {"role": "assistant", "content": "un"},
        {"role": "user", "content": "three"},
    ]

    got = await sent(adapter, fake_gemini, messages=messages)

    assert got.body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Use French."}]
    }
    assert got.body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "un"}]},
        {"role": "user", "parts": [{"text": "three"}]},
    ]


async def test_chat_request_system_only_conversation_is_sent_as_user_turn(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    got = await sent(adapter, fake_gemini, messages=[{"role": "system", "content": "Say hi."}])

    assert got.body == {"contents": [{"role": "user", "parts": [{"text": "Say hi."}]}]}


async def test_chat_request_images_become_inline_data_and_file_data(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    parts = [
        {"type": "text", "text": "Compare."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo"}},
    ]

    got = await sent(adapter, fake_gemini, messages=[{"role": "user", "content": parts}])

    assert got.body["contents"][0]["parts"] == [
        {"text": "Compare."},
        {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
    ]


async def test_chat_request_tool_history_becomes_function_call_and_response(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    calls = [
        {"id": "a1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "a2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]  # fmt: skip
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "a1", "content": [{"type": "text", "text": "sunny"}]},
    ]

    got = await sent(adapter, fake_gemini, messages=messages)

    assert got.body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            ],
        },
    ]


async def test_chat_request_gemini_3_tool_history_carries_signature_sentinel(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    call = make_call("plain")
    call = ChatCall(call.model_id, "gemini-3.8-flash", call.body, call.provider)
    function = {"name": "get_weather", "arguments": "{}"}
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [{"id": "b1", "type": "function", "function": function}]},
        {"role": "tool", "tool_call_id": "b1", "content": "rain"},
    ]  # fmt: skip
    call.body["messages"] = history

    request = adapter.build_chat_request(call, stream=False)

    assert request.url.endswith("/v1beta/models/gemini-3.8-flash:generateContent")
    assert request.json["contents"][1]["parts"] == [
        {"text": "Checking."},
        {
            "functionCall": {"name": "get_weather", "args": {}},
            "thoughtSignature": "skip_thought_signature_validator",
        },
    ]


async def test_chat_request_tools_and_tool_choice_translate(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    choice = {"type": "function", "function": {"name": "get_weather"}}

    got = await sent(adapter, fake_gemini, tools=tools, tool_choice=choice)
    auto = await sent(adapter, fake_gemini, tools=tools, tool_choice="required")

    assert got.body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert got.body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert auto.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


async def test_chat_request_sampling_params_become_generation_config(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    got = await sent(
        adapter, fake_gemini, temperature=0.2, top_p=0.9, max_tokens=10,
        max_completion_tokens=50, stop="END", n=2, seed=7, presence_penalty=0.5,
        frequency_penalty=-0.5, reasoning_effort="low",
    )  # fmt: skip

    assert got.body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "thinkingConfig": {"thinkingLevel": "LOW"},
    }


async def test_chat_request_stop_list_becomes_stop_sequences(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    got = await sent(adapter, fake_gemini, stop=["\n\n", "END"], max_tokens=5)

    assert got.body["generationConfig"] == {"stopSequences": ["\n\n", "END"], "maxOutputTokens": 5}


async def test_chat_request_json_object_sets_json_mime_type(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    got = await sent(adapter, fake_gemini, response_format={"type": "json_object"})

    assert got.body["generationConfig"] == {"responseMimeType": "application/json"}


async def test_chat_request_json_schema_becomes_response_schema(
    adapter: GeminiAdapter, fake_gemini: FakeGemini
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who."},
            "age": {"type": ["integer", "null"], "minimum": 0},
            "kind": {"enum": ["cat", "dog"]},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 3},
            "site": {"type": "string", "format": "uri"},
            "pet": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["name"],
        "additionalProperties": False,
        "$defs": {"tag": {"type": "string", "const": "x"}},
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}

    got = await sent(adapter, fake_gemini, response_format=response_format)

    assert got.body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING", "description": "Who."},
                "age": {"type": "INTEGER", "nullable": True, "minimum": 0},
                "kind": {"enum": ["cat", "dog"]},
                "when": {"type": "STRING", "format": "date-time"},
                "tags": {
                    "type": "ARRAY",
                    "items": {"type": "STRING", "enum": ["x"]},
                    "maxItems": 3,
                },
                "site": {"type": "STRING"},
                "pet": {"nullable": True, "anyOf": [{"type": "STRING"}]},
            },
            "required": ["name"],
        },
    }


async def test_unsupported_params_lists_params_without_gemini_equivalent(
    adapter: GeminiAdapter,
) -> None:
    body = {
        "model": "m", "messages": [], "temperature": 1, "user": "u", "logit_bias": {"1": 1},
        "logprobs": True, "parallel_tool_calls": False, "metadata": {"a": "b"},
        "vendor_knob": 3, "seed": None,
    }  # fmt: skip
    quiet = {"model": "m", "messages": [], "logprobs": False, "parallel_tool_calls": True}

    assert adapter.unsupported_params(body) == [
        "user", "logit_bias", "logprobs", "parallel_tool_calls", "metadata", "vendor_knob",
    ]  # fmt: skip
    assert adapter.unsupported_params(quiet) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
         "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]}]},
         "messages[0].content[0]"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ],
)  # fmt: skip
async def test_chat_request_inexpressible_input_is_refused_with_400(
    adapter: GeminiAdapter, body: JsonObject, param: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain", **body))

    assert caught.value.status == 400
    assert caught.value.retryable is False
    assert caught.value.param == param


# Complete answers.


async def test_chat_plain_returns_text_stop_and_usage(adapter: GeminiAdapter) -> None:
    result = await adapter.chat(make_call("plain"))

    assert result.body["object"] == "chat.completion"
    assert result.body["model"] == "gemini-test-text"
    assert result.body["id"] == "chatcmpl-fake-response-1"
    assert result.body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(REPLY)},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result.usage == Usage(prompt_tokens=11, completion_tokens=3)
    assert result.body["usage"]["total_tokens"] == 14


async def test_chat_parallel_tool_calls_return_tool_calls_with_distinct_ids(
    adapter: GeminiAdapter,
) -> None:
    result = await adapter.chat(make_call("tools"))

    choice = result.body["choices"][0]
    calls = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [c["function"]["arguments"] for c in calls] == [
        '{"city":"Paris"}',
        '{"city":"Paris","utc":true}',
    ]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert len({c["id"] for c in calls}) == 2


@pytest.mark.parametrize(
    ("behaviour", "finish", "content"),
    [("length", "length", "".join(REPLY)), ("safety", "content_filter", ""),
     ("blocked", "content_filter", "")],
)  # fmt: skip
async def test_chat_cut_or_blocked_answers_map_finish_reason(
    adapter: GeminiAdapter, behaviour: str, finish: str, content: str
) -> None:
    result = await adapter.chat(make_call(behaviour))

    assert len(result.body["choices"]) == 1
    assert result.body["choices"][0]["finish_reason"] == finish
    assert result.body["choices"][0]["message"]["content"] == content


async def test_chat_thinking_reports_cached_and_reasoning_tokens_without_thoughts(
    adapter: GeminiAdapter,
) -> None:
    result = await adapter.chat(make_call("thinking"))

    assert result.body["choices"][0]["message"]["content"] == "".join(REPLY)
    assert result.usage == Usage(
        prompt_tokens=120, completion_tokens=37, cached_tokens=100, reasoning_tokens=30
    )
    assert result.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}
    assert result.body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 30}


async def test_chat_two_candidates_become_two_choices(adapter: GeminiAdapter) -> None:
    result = await adapter.chat(make_call("two", n=2))

    choices = result.body["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "First."),
        (1, "Second."),
    ]


# Streams.


async def test_stream_plain_sends_role_text_finish_then_usage(adapter: GeminiAdapter) -> None:
    chunks = await collect(adapter, make_call("plain", stream=True))

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert deltas(chunks, "content") == ["", *REPLY]
    assert finishes(chunks) == ["stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 14
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["id"] for c in chunks} == {"chatcmpl-fake-response-1"}


async def test_stream_parallel_tool_calls_get_one_index_each(adapter: GeminiAdapter) -> None:
    chunks = await collect(adapter, make_call("tools", stream=True))

    calls = [call for group in deltas(chunks, "tool_calls") for call in group]
    assert [c["index"] for c in calls] == [0, 1]
    assert [c["function"]["name"] for c in calls] == [c["name"] for c in CALLS]
    assert calls[1]["function"]["arguments"] == '{"city":"Paris","utc":true}'
    assert len({c["id"] for c in calls}) == 2
    assert finishes(chunks) == ["tool_calls"]


async def test_stream_and_chat_give_same_tool_call_ids(adapter: GeminiAdapter) -> None:
    chunks = await collect(adapter, make_call("tools", stream=True))
    result = await adapter.chat(make_call("tools"))

    streamed = [call["id"] for group in deltas(chunks, "tool_calls") for call in group]
    assert streamed == [c["id"] for c in result.body["choices"][0]["message"]["tool_calls"]]


@pytest.mark.parametrize(
    ("behaviour", "finish"),
    [("length", "length"), ("safety", "content_filter"), ("blocked", "content_filter")],
)
async def test_stream_cut_or_blocked_answers_map_finish_reason(
    adapter: GeminiAdapter, behaviour: str, finish: str
) -> None:
    chunks = await collect(adapter, make_call(behaviour, stream=True))

    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert finishes(chunks) == [finish]
    assert chunks[-1]["choices"] == []


async def test_stream_thinking_usage_has_cached_and_reasoning_tokens(
    adapter: GeminiAdapter,
) -> None:
    chunks = await collect(adapter, make_call("thinking", stream=True))

    assert "Let me think." not in deltas(chunks, "content")
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}
    assert chunks[-1]["usage"]["completion_tokens"] == 37


async def test_stream_two_candidates_finish_each_index(adapter: GeminiAdapter) -> None:
    chunks = await collect(adapter, make_call("two", stream=True, n=2))

    roles = [
        c["choices"][0]["index"]
        for c in chunks
        if c["choices"] and "role" in c["choices"][0]["delta"]
    ]
    assert roles == [0, 1]
    assert finishes(chunks) == ["stop", "stop"]


async def test_stream_error_event_raises_upstream_error_after_content(
    adapter: GeminiAdapter,
) -> None:
    chunks: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call("stream-error", stream=True), into=chunks)

    assert deltas(chunks, "content") == ["", REPLY[0]]
    assert caught.value.status == 502
    assert caught.value.retryable is True
    assert "overloaded" in caught.value.message


# Errors.


async def chat_error(
    adapter: GeminiAdapter, behaviour: str, *, stream: bool = False
) -> UpstreamError:
    """The error a call to ``behaviour`` raises."""
    call = make_call(behaviour, stream=stream)
    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))
    return caught.value


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_400_maps_to_400_not_retryable(adapter: GeminiAdapter, stream: bool) -> None:
    error = await chat_error(adapter, "error-400", stream=stream)

    assert error.status == 400
    assert error.retryable is False
    assert error.message == "gemini (INVALID_ARGUMENT): fake gemini error 400"


@pytest.mark.parametrize("behaviour", ["error-401", "error-403", "error-404", "key-invalid"])
async def test_chat_credential_errors_map_to_502_retryable(
    adapter: GeminiAdapter, behaviour: str
) -> None:
    error = await chat_error(adapter, behaviour)

    assert error.status == 502
    assert error.retryable is True
    assert "rejected the request for this deployment" in error.message


async def test_chat_429_maps_to_429_with_retry_after_from_retry_info(
    adapter: GeminiAdapter,
) -> None:
    error = await chat_error(adapter, "error-429")

    assert error.status == 429
    assert error.retryable is True
    assert error.headers == {"retry-after": "17"}


@pytest.mark.parametrize("behaviour", ["error-500", "error-503"])
async def test_chat_server_errors_map_to_502_retryable(
    adapter: GeminiAdapter, behaviour: str
) -> None:
    error = await chat_error(adapter, behaviour)

    assert error.status == 502
    assert error.retryable is True


async def test_chat_error_echoing_key_never_leaks_it(adapter: GeminiAdapter) -> None:
    error = await chat_error(adapter, "echo-key")

    assert GEMINI_KEY not in error.message
    assert "***" in error.message


# Anti-drift: the official SDK must accept everything the fake server sends, and build the
# same request body as the adapter for the same intent.

SDK_BEHAVIOURS = ["plain", "tools", "length", "safety", "blocked", "thinking", "two"]


@pytest.fixture(scope="module")
def sdk(fake_gemini: FakeGemini) -> Iterator[genai.Client]:
    """The google-genai client pointed at the fake server."""
    options = genai_types.HttpOptions(base_url=fake_gemini.base_url, api_version="v1beta")
    with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
        yield client


@pytest.mark.parametrize("behaviour", SDK_BEHAVIOURS)
def test_sdk_accepts_fake_response_and_stream(sdk: genai.Client, behaviour: str) -> None:
    model = f"{behaviour}~{uuid.uuid4().hex}"

    whole = sdk.models.generate_content(model=model, contents="hi")
    events = list(sdk.models.generate_content_stream(model=model, contents="hi"))

    assert whole.usage_metadata is not None
    assert events[-1].usage_metadata == whole.usage_metadata
    if behaviour == "blocked":
        assert whole.prompt_feedback is not None
        assert whole.prompt_feedback.block_reason == genai_types.BlockedReason.SAFETY
        return
    assert whole.candidates is not None
    assert all(isinstance(c.finish_reason, genai_types.FinishReason) for c in whole.candidates)
    if behaviour == "tools":
        assert [c.name for c in whole.function_calls or ()] == ["get_weather", "get_time"]


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [("error-400", "INVALID_ARGUMENT", 400), ("key-invalid", "INVALID_ARGUMENT", 400),
     ("error-429", "RESOURCE_EXHAUSTED", 429), ("error-503", "UNAVAILABLE", 503)],
)  # fmt: skip
def test_sdk_accepts_fake_error_bodies(
    sdk: genai.Client, behaviour: str, status: str, code: int
) -> None:
    with pytest.raises(genai_errors.APIError) as caught:
        sdk.models.generate_content(model=behaviour, contents="hi")

    assert (caught.value.code, caught.value.status) == (code, status)


def test_sdk_accepts_fake_error_inside_stream(sdk: genai.Client) -> None:
    with pytest.raises(genai_errors.ServerError) as caught:
        list(sdk.models.generate_content_stream(model="stream-error", contents="hi"))

    assert caught.value.status == "UNAVAILABLE"


async def test_chat_request_matches_sdk_request_for_same_intent(
    adapter: GeminiAdapter, fake_gemini: FakeGemini, sdk: genai.Client
) -> None:
    parameters = {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    }  # fmt: skip
    ours = await sent(
        adapter, fake_gemini,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "hi"}],
        temperature=0.5, top_p=0.8, max_tokens=20, stop=["END"], n=1, seed=3,
        presence_penalty=0.1, frequency_penalty=0.2,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "x", "schema": parameters}},
        tools=[{"type": "function", "function": {
            "name": "get_weather", "description": "Weather.", "parameters": parameters}}],
        tool_choice="auto", reasoning_effort="high",
    )  # fmt: skip
    model = f"plain~{uuid.uuid4().hex}"
    schema = genai_types.Schema(
        type=genai_types.Type.OBJECT,
        properties={"city": genai_types.Schema(type=genai_types.Type.STRING)},
        required=["city"],
    )
    config = genai_types.GenerateContentConfig(
        system_instruction="Be brief.", temperature=0.5, top_p=0.8, max_output_tokens=20,
        stop_sequences=["END"], candidate_count=1, seed=3, presence_penalty=0.1,
        frequency_penalty=0.2, response_mime_type="application/json", response_schema=schema,
        tools=[genai_types.Tool(function_declarations=[genai_types.FunctionDeclaration(
            name="get_weather", description="Weather.", parameters=schema)])],
        tool_config=genai_types.ToolConfig(
            function_calling_config=genai_types.FunctionCallingConfig(
                mode=genai_types.FunctionCallingConfigMode.AUTO)),
        thinking_config=genai_types.ThinkingConfig(thinking_level=genai_types.ThinkingLevel.HIGH),
    )  # fmt: skip

    await asyncio.to_thread(sdk.models.generate_content, model=model, contents="hi", config=config)

    theirs = fake_gemini.received(model).body
    # Two spellings the API accepts either way: the SDK tags the system instruction with a
    # role, and dumps ThinkingConfig with snake_case names (proto3 JSON takes both).
    del theirs["systemInstruction"]["role"]
    theirs["generationConfig"]["thinkingConfig"] = {
        "thinkingLevel": theirs["generationConfig"]["thinkingConfig"].pop("thinking_level")
    }
    assert ours.body == theirs


# End to end: VaultGate with a "gemini" provider, driven by the openai SDK.


@pytest.fixture(scope="module")
def gemini_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_gemini: FakeGemini
) -> Iterator[tuple[str, str]]:
    """A running VaultGate whose ``gem-*`` models are served by the fake Gemini server."""
    tmp_path = tmp_path_factory.mktemp("gemini-gateway")
    config = tmp_path / "vaultgate.toml"
    models = "".join(
        f'[[models]]\nid = "gem-{b}-text"\nprovider = "gem"\nupstream = "{b}"\n'
        'pricing = { input = "1.00", output = "2.00" }\n\n'
        for b in ("plain", "tools", "thinking")
    )
    config.write_text(
        '[providers.gem]\nformat = "gemini"\n'
        f'base_url = "{fake_gemini.base_url}"\napi_key_env = "FAKE_GEMINI_KEY"\n\n{models}'
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    _, key, _ = make_user_and_key(url)
    env = {"VAULTGATE_CONFIG": str(config), "FAKE_GEMINI_KEY": GEMINI_KEY}
    server = ServerProcess(tmp_path / "data", url, env=env).start()
    yield server.base_url + "/v1", key
    server.stop()


def test_gateway_gemini_provider_serves_openai_sdk(gemini_gateway: tuple[str, str]) -> None:
    base_url, key = gemini_gateway
    with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gem-thinking-text", messages=[{"role": "user", "content": "hi"}]
        )
        stream = client.chat.completions.create(
            model="gem-plain-text", messages=[{"role": "user", "content": "hi"}],
            stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
        tools = client.chat.completions.create(
            model="gem-tools-text", messages=[{"role": "user", "content": "weather?"}],
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
        )  # fmt: skip

    assert reply.choices[0].message.content == "".join(REPLY)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 100
    assert reply.usage.completion_tokens == 37
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(REPLY)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 14
    calls = tools.choices[0].message.tool_calls or []
    assert tools.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather", "get_time"]
