"""The Bedrock adapter against a real local server speaking Converse (which verifies SigV4
signatures on its own), and boto3's ``bedrock-runtime`` client against the same server, so
the fake cannot drift from what the SDK accepts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import botocore.exceptions
import openai
import pytest
from botocore.config import Config
from openai.types.chat import ChatCompletionMessageParam

from tests.support.fake_bedrock import (
    JSON_REPLY,
    REPLY_WORDS,
    SECOND_TOOL_INPUT,
    TOOL_INPUT,
    FakeBedrock,
    Recorded,
)
from tests.support.server import ServerProcess, make_user_and_key, prepare_database
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig
from vaultgate.providers.bedrock import BedrockAdapter
from vaultgate.providers.catalog import load_catalog
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.registry import resolve_config

pytestmark = pytest.mark.anyio

KEY_ID = "AKIDFAKEBEDROCK01"
SECRET = "fake/secret+key-0123456789"
SESSION_KEY_ID = "ASIAFAKESESSION01"
SESSION_SECRET = "fake/session+secret-0123"
SESSION_TOKEN = "FwoGZXIvYXdzEFAKEsessiontoken=="
API_KEY = "ABSKfakebedrockapikey0123456789"
REPLY = "".join(REPLY_WORDS)
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER_PARAMETERS,
    },
}
PNG_DATA = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


@pytest.fixture(scope="module")
def fake_bedrock() -> Iterator[FakeBedrock]:
    """The fake Converse API, shared by the module."""
    server = FakeBedrock(
        credentials={KEY_ID: (SECRET, None), SESSION_KEY_ID: (SESSION_SECRET, SESSION_TOKEN)},
        api_key=API_KEY,
    ).start()
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


def make_adapter(
    http: HttpClient, fake: FakeBedrock, *options: tuple[str, str], api_key: str | None = None
) -> BedrockAdapter:
    """An adapter on the fake with the given options (region us-east-1 unless given)."""
    given = dict(options)
    given.setdefault("region", "us-east-1")
    config = ProviderConfig(
        name="bedrock", wire_format="bedrock", base_url=fake.base_url, api_key=api_key,
        headers=(("x-extra", "yes"),), options=tuple(given.items()),
    )  # fmt: skip
    return BedrockAdapter(config, http)


@pytest.fixture
def adapter(http: HttpClient, fake_bedrock: FakeBedrock) -> BedrockAdapter:
    """The adapter signing with a long-term access key."""
    return make_adapter(
        http, fake_bedrock, ("access_key_id", KEY_ID), ("secret_access_key", SECRET)
    )


def make_call(adapter: BedrockAdapter, upstream: str, **extra: Any) -> ChatCall:
    """A call for ``br-<upstream>-text`` whose first user message is a unique marker."""
    body: JsonObject = {
        "model": f"br-{upstream}-text",
        "messages": [{"role": "user", "content": f"hi {uuid.uuid4().hex}"}],
        **extra,
    }
    return ChatCall(f"br-{upstream}-text", upstream, body, adapter.config)


def marker(call: ChatCall) -> str:
    """The unique text that identifies the call's request at the fake."""
    for message in call.body["messages"]:
        if message["role"] == "user" and isinstance(message["content"], str):
            return str(message["content"])
    raise AssertionError("no marker")


async def sent(adapter: BedrockAdapter, fake: FakeBedrock, **extra: Any) -> Recorded:
    """What the fake received for a plain call with ``extra`` parameters."""
    call = make_call(adapter, "plain", **extra)
    await adapter.chat(call)
    return fake.find(marker(call))


async def collect(
    adapter: BedrockAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
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


def finish_reasons(chunks: list[JsonObject]) -> list[str]:
    """The finish reasons the stream sent, in order."""
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]
            and c["choices"][0]["finish_reason"]]  # fmt: skip


# The request VaultGate sends, and how it authenticates.


async def test_chat_request_plain_posts_converse_signed_with_sigv4(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    request = fake_bedrock.find(marker(call))
    assert request.path == "/model/plain/converse"
    assert request.body == {"messages": [{"role": "user", "content": [{"text": marker(call)}]}]}
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-extra"] == "yes"
    assert headers["x-amz-content-sha256"] == hashlib.sha256(request.raw).hexdigest()
    assert headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{headers['x-amz-date'][:8]}/us-east-1/bedrock/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
        "x-extra, Signature="
    )
    assert "x-amz-security-token" not in headers


async def test_stream_request_posts_converse_stream(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    call = make_call(adapter, "plain")

    await collect(adapter, call)

    request = fake_bedrock.find(marker(call))
    assert request.path == "/model/plain/converse-stream"
    assert request.body == {"messages": [{"role": "user", "content": [{"text": marker(call)}]}]}


@pytest.mark.parametrize(
    ("model_id", "path"),
    [
        ("amazon.nova-micro-v1:0", "/model/amazon.nova-micro-v1:0/converse"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/plain",
            "/model/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile"
            "%2Fplain/converse",
        ),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0",
         "/model/global.anthropic.claude-sonnet-4-5-20250929-v1:0/converse"),
    ],
)  # fmt: skip
async def test_chat_request_model_ids_with_colons_and_arns_are_encoded_and_signed(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock, model_id: str, path: str
) -> None:
    call = make_call(adapter, model_id)

    result = await adapter.chat(call)

    request = fake_bedrock.find(marker(call))
    assert request.model_id == model_id
    assert request.path == path
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_request_session_token_is_sent_and_signed(
    http: HttpClient, fake_bedrock: FakeBedrock
) -> None:
    adapter = make_adapter(
        http, fake_bedrock, ("access_key_id", SESSION_KEY_ID),
        ("secret_access_key", SESSION_SECRET), ("session_token", SESSION_TOKEN),
    )  # fmt: skip
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    headers = fake_bedrock.find(marker(call)).headers
    assert headers["x-amz-security-token"] == SESSION_TOKEN
    assert ";x-amz-security-token;x-extra, Signature=" in headers["authorization"]


async def test_chat_request_secret_from_provider_key_signs_with_access_key_id(
    http: HttpClient, fake_bedrock: FakeBedrock
) -> None:
    adapter = make_adapter(http, fake_bedrock, ("access_key_id", KEY_ID), api_key=SECRET)
    call = make_call(adapter, "plain")

    result = await adapter.chat(call)

    headers = fake_bedrock.find(marker(call)).headers
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_request_api_key_is_bearer_token_without_signature(
    http: HttpClient, fake_bedrock: FakeBedrock
) -> None:
    adapter = make_adapter(http, fake_bedrock, api_key=API_KEY)
    call = make_call(adapter, "plain")

    result = await adapter.chat(call)

    headers = fake_bedrock.find(marker(call)).headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in headers
    assert result.body["choices"][0]["message"]["content"] == REPLY


@pytest.mark.parametrize(
    "options",
    [
        (("access_key_id", KEY_ID), ("secret_access_key", "wrong/secret+value")),
        (("access_key_id", KEY_ID), ("secret_access_key", SECRET), ("region", "eu-west-1")),
        (("access_key_id", "AKIDUNKNOWN0000"), ("secret_access_key", SECRET)),
        (("access_key_id", SESSION_KEY_ID), ("secret_access_key", SESSION_SECRET),
         ("session_token", "wrong-session-token")),
    ],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_bad_credentials_get_403_mapped_to_deployment_error_without_secrets(
    http: HttpClient, fake_bedrock: FakeBedrock, options: tuple[tuple[str, str], ...],
    stream: bool,
) -> None:  # fmt: skip
    adapter = make_adapter(http, fake_bedrock, *options)
    call = make_call(adapter, "plain")

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    assert caught.value.status == 502
    assert caught.value.retryable is True
    assert "rejected the request for this deployment" in caught.value.message
    for _, value in options:
        if value not in ("us-east-1", "eu-west-1"):
            assert value not in caught.value.message


async def test_chat_without_credentials_is_misconfigured_502(
    http: HttpClient, fake_bedrock: FakeBedrock
) -> None:
    adapter = make_adapter(http, fake_bedrock, ("access_key_id", KEY_ID))

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(adapter, "plain"))

    assert (caught.value.status, caught.value.code) == (502, "provider_misconfigured")


# Request translation.


async def test_chat_request_system_messages_anywhere_become_system_blocks_and_turns_merge(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    tag = f"one {uuid.uuid4().hex}"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": tag},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user",
         "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": "un"},
        {"role": "assistant", "content": [{"type": "text", "text": "deux"}]},
        {"role": "user", "content": "three"},
    ]  # fmt: skip
    call = ChatCall("br-plain-text", "plain", {"messages": messages}, adapter.config)

    await adapter.chat(call)

    body = fake_bedrock.find(tag).body
    assert body["system"] == [{"text": "Be brief."}, {"text": "Answer in French."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": tag}, {"text": "two"}]},
        {"role": "assistant", "content": [{"text": "un"}, {"text": "deux"}]},
        {"role": "user", "content": [{"text": "three"}]},
    ]


async def test_chat_request_tool_history_becomes_tool_use_and_tool_result_turn(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    tag = f"Weather? {uuid.uuid4().hex}"
    messages = [
        {"role": "user", "content": tag},
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
    body = {"messages": messages, "tools": [WEATHER_TOOL]}

    await adapter.chat(ChatCall("br-plain-text", "plain", body, adapter.config))

    turns = fake_bedrock.find(tag).body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Tokyo"}}},
    ]
    assert turns[2]["content"] == [
        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
        {"toolResult": {"toolUseId": "call_2", "content": [{"text": "25C"}]}},
        {"text": "Thanks"},
    ]


async def test_chat_request_images_become_bytes_with_real_format_and_s3_locations(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    tag = f"Compare {uuid.uuid4().hex}"
    content = [
        {"type": "text", "text": tag},
        # Declared as JPEG, but the bytes are a PNG: the bytes decide.
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG_DATA}"}},
        {"type": "image_url", "image_url": {"url": "s3://bucket/photos/cat.JPG"}},
    ]
    body = {"messages": [{"role": "user", "content": content}]}

    result = await adapter.chat(ChatCall("br-image-text", "image-input", body, adapter.config))

    blocks = fake_bedrock.find(tag).body["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": PNG_DATA}}}
    assert blocks[2] == {
        "image": {
            "format": "jpeg",
            "source": {"s3Location": {"uri": "s3://bucket/photos/cat.JPG"}},
        }
    }
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_request_sampling_params_become_inference_config(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    request = await sent(
        adapter, fake_bedrock, temperature=1.7, top_p=0.9, stop="END", max_tokens=100,
        max_completion_tokens=50,
    )  # fmt: skip

    assert request.body["inferenceConfig"] == {
        "maxTokens": 50, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}},
         {"tool": {"name": "get_weather"}}),
    ],
)  # fmt: skip
async def test_chat_request_tools_and_tool_choice_become_tool_config(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock, choice: Any, expected: Any
) -> None:
    extra: JsonObject = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        extra["tool_choice"] = choice

    request = await sent(adapter, fake_bedrock, **extra)

    tool_config = request.body["toolConfig"]
    assert tool_config["tools"] == [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather in a city",
                "inputSchema": {"json": WEATHER_PARAMETERS},
            }
        }
    ]
    assert tool_config.get("toolChoice") == expected


async def test_chat_request_tool_choice_none_sends_no_tool_config(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    request = await sent(adapter, fake_bedrock, tools=[WEATHER_TOOL], tool_choice="none")

    assert "toolConfig" not in request.body


async def test_unsupported_params_lists_dropped_and_none_choice_with_tool_history(
    adapter: BedrockAdapter,
) -> None:
    body = {
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1,
        "response_format": {"type": "text"}, "seed": 7, "logprobs": False, "user": "u1",
        "presence_penalty": 0.5, "parallel_tool_calls": True, "temperature": 0.2,
        "store": None, "service_tier": "flex", "tool_choice": "none",
    }  # fmt: skip
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]

    dropped = adapter.unsupported_params(body)
    with_history = adapter.unsupported_params({**body, "messages": history,
                                               "parallel_tool_calls": False})  # fmt: skip

    assert dropped == ["seed", "user", "presence_penalty", "service_tier"]
    assert with_history == ["seed", "user", "presence_penalty", "parallel_tool_calls",
                            "service_tier", "tool_choice"]  # fmt: skip


async def test_chat_request_json_schema_becomes_output_config(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"], "additionalProperties": False}  # fmt: skip
    call = make_call(
        adapter, "json", response_format={"type": "json_schema", "json_schema": {
            "name": "answer", "description": "The answer.", "schema": schema, "strict": True}},
    )  # fmt: skip

    result = await adapter.chat(call)

    text_format = fake_bedrock.find(marker(call)).body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    definition = text_format["structure"]["jsonSchema"]
    assert json.loads(definition.pop("schema")) == schema
    assert definition == {"name": "answer", "description": "The answer."}
    assert json.loads(result.body["choices"][0]["message"]["content"]) == json.loads(JSON_REPLY)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]}]},
         "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
         "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
         "messages[0].content[0]"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}],
          "tools": [WEATHER_TOOL]},
         "messages[1].tool_calls[0].function.arguments"),
        ({"messages": [{"role": "user", "content": "hi"},
                       {"role": "tool", "tool_call_id": "c", "content": "x"}]}, "tools"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ],
)  # fmt: skip
async def test_chat_request_inexpressible_input_refused_with_400_without_sending(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock, extra: JsonObject, param: str
) -> None:
    call = make_call(adapter, "plain", **extra)
    before = len(fake_bedrock.requests)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(call)

    assert (caught.value.status, caught.value.param) == (400, param)
    assert caught.value.retryable is False
    assert len(fake_bedrock.requests) == before


# The OpenAI answer it returns.


async def test_chat_response_plain_is_openai_completion(adapter: BedrockAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "plain"))

    body = result.body
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "br-plain-text"
    assert isinstance(body["created"], int)
    assert body["choices"] == [{
        "index": 0, "message": {"role": "assistant", "content": REPLY}, "logprobs": None,
        "finish_reason": "stop",
    }]  # fmt: skip
    assert body["usage"] == {
        "prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }  # fmt: skip
    assert result.usage is not None
    assert result.usage.total_tokens == 19


async def test_chat_response_tool_use_becomes_tool_calls(adapter: BedrockAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "tool", tools=[WEATHER_TOOL]))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["id"] == "tooluse_01"
    assert tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == TOOL_INPUT


async def test_chat_response_parallel_tool_use_has_null_content_and_two_calls(
    adapter: BedrockAdapter,
) -> None:
    result = await adapter.chat(make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    message = result.body["choices"][0]["message"]
    assert message["content"] is None
    assert [c["id"] for c in message["tool_calls"]] == ["tooluse_01", "tooluse_02"]
    arguments = [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]]
    assert arguments == [TOOL_INPUT, SECOND_TOOL_INPUT]


STOP_CASES = [
    ("plain", "stop"), ("stop-sequence", "stop"), ("length", "length"),
    ("content-filter", "content_filter"), ("guardrail", "content_filter"),
]  # fmt: skip


@pytest.mark.parametrize(("upstream", "finish_reason"), STOP_CASES)
async def test_chat_response_stop_reason_maps_to_finish_reason(
    adapter: BedrockAdapter, upstream: str, finish_reason: str
) -> None:
    result = await adapter.chat(make_call(adapter, upstream, stop=["END"]))

    assert result.body["choices"][0]["finish_reason"] == finish_reason


async def test_chat_response_cache_tokens_count_once_as_prompt(adapter: BedrockAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "cached"))

    assert result.usage is not None
    assert result.usage.prompt_tokens == 5 + 100 + 20
    assert result.usage.cached_tokens == 100
    assert result.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


async def test_chat_response_reasoning_block_is_left_out(adapter: BedrockAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "reasoning"))

    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_image_input_without_image_is_validation_error_400(
    adapter: BedrockAdapter,
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(adapter, "image-input"))

    assert (caught.value.status, caught.value.retryable) == (400, False)
    assert "ValidationException" in caught.value.message


# Streams.


async def test_chat_stream_plain_role_text_finish_then_usage(adapter: BedrockAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "plain"))

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == REPLY
    assert finish_reasons(chunks) == ["stop"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {"br-plain-text"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


async def test_chat_stream_tool_use_streams_one_indexed_call(adapter: BedrockAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "tool", tools=[WEATHER_TOOL]))

    calls = streamed_tool_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["id"] == "tooluse_01"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == TOOL_INPUT
    first = next(d for d in deltas(chunks) if d.get("tool_calls"))
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "Let me check."
    assert finish_reasons(chunks) == ["tool_calls"]


async def test_chat_stream_parallel_tool_use_gets_one_index_per_call(
    adapter: BedrockAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    calls = streamed_tool_calls(chunks)
    assert [calls[i]["id"] for i in (0, 1)] == ["tooluse_01", "tooluse_02"]
    assert json.loads(calls[0]["arguments"]) == TOOL_INPUT
    assert json.loads(calls[1]["arguments"]) == SECOND_TOOL_INPUT


@pytest.mark.parametrize(("upstream", "finish_reason"), STOP_CASES)
async def test_chat_stream_stop_reason_maps_to_finish_reason(
    adapter: BedrockAdapter, upstream: str, finish_reason: str
) -> None:
    chunks = await collect(adapter, make_call(adapter, upstream, stop=["END"]))

    assert finish_reasons(chunks) == [finish_reason]


async def test_chat_stream_cache_tokens_and_reasoning_left_out(adapter: BedrockAdapter) -> None:
    cached = await collect(adapter, make_call(adapter, "cached"))
    reasoning = await collect(adapter, make_call(adapter, "reasoning"))

    usage = cached[-1]["usage"]
    assert usage["prompt_tokens"] == 125
    assert usage["prompt_tokens_details"] == {"cached_tokens": 100}
    assert "".join(d.get("content") or "" for d in deltas(reasoning)) == REPLY


@pytest.mark.parametrize(
    ("upstream", "status", "retryable", "kind"),
    [
        ("stream-error", 502, True, "modelStreamErrorException"),
        ("stream-error-throttlingException", 429, True, "throttlingException"),
        ("stream-error-validationException", 400, False, "validationException"),
        ("stream-error-serviceUnavailableException", 502, True, "serviceUnavailableException"),
        ("stream-error-internalServerException", 502, True, "internalServerException"),
    ],
)
async def test_chat_stream_exception_event_raises_after_content(
    adapter: BedrockAdapter, upstream: str, status: int, retryable: bool, kind: str
) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, upstream), into=seen)

    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert caught.value.message == f"bedrock ({kind}): fake Bedrock stream failure"
    assert any(d.get("content") for d in deltas(seen))
    assert not finish_reasons(seen)


@pytest.mark.parametrize(
    ("upstream", "reason"),
    [("stream-corrupt", "message checksum mismatch"), ("stream-truncated", "ended inside")],
)
async def test_chat_stream_broken_framing_raises_upstream_error(
    adapter: BedrockAdapter, upstream: str, reason: str
) -> None:
    with pytest.raises(UpstreamError, match=reason) as caught:
        await collect(adapter, make_call(adapter, upstream))

    assert caught.value.status == 502


# Errors.


@pytest.mark.parametrize(
    ("upstream", "status", "retryable", "kind"),
    [
        ("error-400", 400, False, "ValidationException"),
        ("error-401", 502, True, None),
        ("error-403", 502, True, None),
        ("error-404", 502, True, None),
        ("error-408", 504, True, "ModelTimeoutException"),
        ("error-424", 502, True, "ModelErrorException"),
        ("error-429", 429, True, "ThrottlingException"),
        ("error-500", 502, True, "InternalServerException"),
        ("error-503", 502, True, "ServiceUnavailableException"),
        ("not-ready", 502, True, "ModelNotReadyException"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_error_type_maps_to_status(
    adapter: BedrockAdapter, upstream: str, status: int, retryable: bool, kind: str | None,
    stream: bool,
) -> None:  # fmt: skip
    call = make_call(adapter, upstream)

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert SECRET not in caught.value.message
    if kind is None:
        assert "rejected the request for this deployment" in caught.value.message
    else:
        assert caught.value.message.startswith(f"bedrock ({kind}): ")
    assert caught.value.headers == {}


async def test_map_error_body_echoing_credentials_is_scrubbed(adapter: BedrockAdapter) -> None:
    raw = json.dumps({"message": f"bad {SECRET} for {KEY_ID}"}).encode()

    error = adapter.map_error(500, raw, {"x-amzn-errortype": "InternalServerException:x"})

    assert SECRET not in error.message
    assert KEY_ID not in error.message
    assert error.message == "bedrock (InternalServerException): bad *** for ***"


async def test_map_error_unknown_type_falls_back_to_status_and_keeps_retry_after(
    adapter: BedrockAdapter,
) -> None:
    throttled = adapter.map_error(429, b"not json", {"retry-after": "3"})
    rejected = adapter.map_error(413, b'{"Message": "too big"}', {})
    typed = adapter.map_error(400, b'{"__type": "aws#ValidationException", "message": "m"}', {})

    assert (throttled.status, throttled.headers) == (429, {"retry-after": "3"})
    assert "not json" in throttled.message
    assert (rejected.status, rejected.message) == (400, "bedrock (413): too big")
    assert typed.message == "bedrock (ValidationException): m"


# The catalog declares the providers, and the registry offers them from the environment.


def test_shipped_bedrock_providers_resolve_from_environment() -> None:
    catalog = load_catalog(None)
    environ = {"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": KEY_ID,
               "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_BEARER_TOKEN_BEDROCK": API_KEY}  # fmt: skip

    signed = resolve_config(catalog.providers["bedrock"], environ)
    keyed = resolve_config(catalog.providers["bedrock-apikey"], environ)

    assert signed is not None
    assert keyed is not None
    assert signed.base_url == keyed.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert signed.option("access_key_id") == KEY_ID
    assert signed.api_key == SECRET
    assert keyed.api_key == API_KEY
    assert keyed.option("access_key_id") is None
    assert resolve_config(catalog.providers["bedrock"], {"AWS_REGION": "eu-west-3"}) is None
    assert resolve_config(catalog.providers["bedrock-apikey"], {"AWS_REGION": "x"}) is None
    bedrock_models = [m for m in catalog.models.values() if "bedrock" in m.providers]
    assert len(bedrock_models) >= 8
    assert all("bedrock-apikey" in m.providers for m in bedrock_models)


# boto3 accepts everything the fake sends, and sends the same request for the same intent.

SDK_SCENARIOS = [
    "plain", "tool", "parallel-tools", "stop-sequence", "length", "json", "image-input",
    "content-filter", "guardrail", "cached", "reasoning",
]  # fmt: skip
SDK_TOOLS = {"tools": [{"toolSpec": {"name": "get_weather",
                                     "inputSchema": {"json": {"type": "object"}}}}]}  # fmt: skip


@pytest.fixture(scope="module")
def sdk(fake_bedrock: FakeBedrock) -> Iterator[Any]:
    """boto3's ``bedrock-runtime`` client on the fake, signing with the session key."""
    client = boto3.client(
        "bedrock-runtime", endpoint_url=fake_bedrock.base_url, region_name="us-east-1",
        aws_access_key_id=SESSION_KEY_ID, aws_secret_access_key=SESSION_SECRET,
        aws_session_token=SESSION_TOKEN,
        config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip
    yield client
    client.close()


def _sdk_request(scenario: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": "hi"}]
    if scenario == "image-input":
        image = {"format": "png", "source": {"bytes": base64.b64decode(PNG_DATA)}}
        content.append({"image": image})
    return {
        "modelId": scenario, "messages": [{"role": "user", "content": content}],
        "inferenceConfig": {"maxTokens": 64, "stopSequences": ["END"]}, "toolConfig": SDK_TOOLS,
    }  # fmt: skip


def _rebuild(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """Content blocks, stop reason and usage put back together from stream events."""
    blocks: dict[int, dict[str, Any]] = {}
    stop, usage = "", dict[str, Any]()
    for event in events:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool = start["start"]["toolUse"]
            blocks[start["contentBlockIndex"]] = {"toolUse": {**tool, "input": ""}}
        if "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            block = blocks.setdefault(delta["contentBlockIndex"], {})
            if "text" in delta["delta"]:
                block["text"] = block.get("text", "") + delta["delta"]["text"]
            if "toolUse" in delta["delta"]:
                block["toolUse"]["input"] += delta["delta"]["toolUse"]["input"]
            if "reasoningContent" in delta["delta"]:
                block.setdefault("reasoningContent", {})
        stop = event.get("messageStop", {}).get("stopReason", stop)
        usage = event.get("metadata", {}).get("usage", usage)
    for block in blocks.values():
        if "toolUse" in block:
            block["toolUse"]["input"] = json.loads(block["toolUse"]["input"])
    return [blocks[i] for i in sorted(blocks)], stop, usage


@pytest.mark.parametrize("scenario", SDK_SCENARIOS)
def test_sdk_converse_and_stream_accept_fake_answers(sdk: Any, scenario: str) -> None:
    whole = sdk.converse(**_sdk_request(scenario))
    events = list(sdk.converse_stream(**_sdk_request(scenario))["stream"])

    blocks, stop, usage = _rebuild(events)
    assert whole["stopReason"] == stop
    assert whole["usage"] == usage
    assert whole["metrics"]["latencyMs"] == 42
    expected = [b if "reasoningContent" not in b else {"reasoningContent": {}}
                for b in whole["output"]["message"]["content"]]  # fmt: skip
    assert blocks == expected
    assert events[0] == {"messageStart": {"role": "assistant"}}


@pytest.mark.parametrize(
    ("scenario", "code", "status"),
    [("error-400", "ValidationException", 400), ("error-401", "UnrecognizedClientException", 403),
     ("error-403", "AccessDeniedException", 403), ("error-429", "ThrottlingException", 429),
     ("error-500", "InternalServerException", 500), ("not-ready", "ModelNotReadyException", 429),
     ("error-503", "ServiceUnavailableException", 503)],
)  # fmt: skip
def test_sdk_parses_fake_error_answers(sdk: Any, scenario: str, code: str, status: int) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sdk.converse(**_sdk_request(scenario))

    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize("kind", ["modelStreamErrorException", "throttlingException"])
def test_sdk_stream_raises_fake_exception_event(sdk: Any, kind: str) -> None:
    scenario = "stream-error" if kind == "modelStreamErrorException" else f"stream-error-{kind}"
    stream = sdk.converse_stream(**_sdk_request(scenario))["stream"]

    with pytest.raises(botocore.exceptions.EventStreamError) as caught:
        list(stream)
    stream.close()

    assert caught.value.response["Error"]["Code"] == kind


def test_sdk_wrong_secret_is_refused_with_signature_mismatch(fake_bedrock: FakeBedrock) -> None:
    client = boto3.client(
        "bedrock-runtime", endpoint_url=fake_bedrock.base_url, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key="not-the-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.converse(**_sdk_request("plain"))
    client.close()

    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in caught.value.response["Error"]["Message"]


async def test_chat_request_matches_sdk_request_for_same_intent(
    adapter: BedrockAdapter, fake_bedrock: FakeBedrock, sdk: Any
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    ours = await sent(
        adapter, fake_bedrock, temperature=0.5, top_p=0.8, max_tokens=20, stop=["END"],
        tools=[{"type": "function", "function": {
            "name": "get_weather", "description": "Weather.", "parameters": schema}}],
        tool_choice="required",
    )  # fmt: skip
    text = ours.body["messages"][0]["content"][0]["text"]

    await asyncio.to_thread(
        sdk.converse, modelId="plain", messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 20, "temperature": 0.5, "topP": 0.8,
                         "stopSequences": ["END"]},
        toolConfig={"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather.",
                                            "inputSchema": {"json": schema}}}],
                    "toolChoice": {"any": {}}},
    )  # fmt: skip

    theirs = [r for r in fake_bedrock.requests if text.encode() in r.raw][-1]
    assert theirs is not ours
    assert ours.body == theirs.body
    assert ours.path == theirs.path


# End to end: VaultGate with a "bedrock" provider, driven by the openai SDK.


@pytest.fixture(scope="module")
def bedrock_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_bedrock: FakeBedrock
) -> Iterator[tuple[str, str]]:
    """A running VaultGate whose ``br-*`` models are served by the fake Bedrock server,
    signing with an access key id option and the secret as the provider's key."""
    tmp_path = tmp_path_factory.mktemp("bedrock-gateway")
    config = tmp_path / "vaultgate.toml"
    models = "".join(
        f'[[models]]\nid = "br-{s}-text"\nprovider = "br"\nupstream = "{s}:0"\n'
        'pricing = { input = "1.00", output = "2.00" }\n\n'
        for s in ("plain", "tool", "cached")
    )
    config.write_text(
        '[providers.br]\nformat = "bedrock"\n'
        f'base_url = "{fake_bedrock.base_url}"\napi_key_env = "FAKE_BEDROCK_SECRET"\n'
        'options = { region = "us-east-1", access_key_id = "${FAKE_BEDROCK_KEY_ID}" }\n\n'
        f"{models}"
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    _, key, _ = make_user_and_key(url)
    env = {
        "VAULTGATE_CONFIG": str(config), "FAKE_BEDROCK_SECRET": SECRET,
        "FAKE_BEDROCK_KEY_ID": KEY_ID,
    }  # fmt: skip
    server = ServerProcess(tmp_path / "data", url, env=env).start()
    yield server.base_url + "/v1", key
    server.stop()


def test_gateway_bedrock_provider_serves_openai_sdk(bedrock_gateway: tuple[str, str]) -> None:
    base_url, key = bedrock_gateway
    hi: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
        reply = client.chat.completions.create(model="br-cached-text", messages=hi)
        stream = client.chat.completions.create(
            model="br-plain-text", messages=hi, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
        tools = client.chat.completions.create(
            model="br-tool-text", messages=hi,
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
        )  # fmt: skip
        two = client.chat.completions.create(model="br-plain-text", messages=hi, n=2)

    assert reply.choices[0].message.content == REPLY
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 125
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 100
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 19
    calls = tools.choices[0].message.tool_calls or []
    assert tools.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather"]
    assert [c.message.content for c in two.choices] == [REPLY, REPLY]
    assert two.usage is not None
    assert two.usage.prompt_tokens == 24
