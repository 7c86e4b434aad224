"""The Azure OpenAI adapter against a real local server speaking Azure's format, and the
official ``openai`` SDK's Azure client against the same server, so the fake cannot drift
from what the SDK accepts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import orjson
import pytest

from tests.support.fake_azure import JSON_REPLY, REPLY_WORDS, USAGE, FakeAzure, Recorded
from vaultgate.errors import ConfigError, UpstreamError
from vaultgate.providers.azure import AzureOpenAIAdapter
from vaultgate.providers.base import ChatCall, ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.sse import SseEvent

pytestmark = pytest.mark.anyio

REPLY = "".join(REPLY_WORDS)
API_VERSION = "2024-10-21"
ANNOTATIONS = ("prompt_filter_results", "content_filter_results", "content_filter_offsets")
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
PNG_URL = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(scope="module")
def fake_azure() -> Iterator[FakeAzure]:
    """The fake Azure OpenAI resource, shared by the module."""
    server = FakeAzure().start()
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
    http: HttpClient, fake: FakeAzure, *, key: str | None = None, **options: str
) -> AzureOpenAIAdapter:
    """The adapter pointed at the fake with these options."""
    config = ProviderConfig(
        name="azure",
        wire_format="azure",
        base_url=fake.endpoint + "/",
        api_key=key or fake.api_key,
        options=tuple(options.items()),
    )
    return AzureOpenAIAdapter(config, http)


@pytest.fixture
def adapter(http: HttpClient, fake_azure: FakeAzure) -> AzureOpenAIAdapter:
    """The adapter in its default (deployments) style."""
    return make_adapter(http, fake_azure)


def make_call(adapter: AzureOpenAIAdapter, upstream: str, **extra: Any) -> ChatCall:
    """A call for ``azure-<upstream>-text``; ``user`` tags the request for ``received``."""
    body: JsonObject = {
        "model": f"azure-{upstream}-text",
        "messages": [{"role": "user", "content": "hi"}],
        "user": uuid.uuid4().hex,
        **extra,
    }
    return ChatCall(f"azure-{upstream}-text", upstream, body, adapter.config)


def received(fake: FakeAzure, call: ChatCall) -> Recorded:
    """The request the fake recorded for ``call``."""
    matches = [r for r in fake.requests if r.body.get("user") == call.body["user"]]
    assert len(matches) == 1
    return matches[0]


async def collect(
    adapter: AzureOpenAIAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
) -> list[JsonObject]:
    """Every chunk of a streamed answer, also appended to ``into`` as it arrives."""
    chunks = [] if into is None else into
    async for chunk in adapter.chat_stream(call):
        chunks.append(chunk)
    return chunks


def deltas(chunks: list[JsonObject]) -> list[JsonObject]:
    """The deltas of the chunks that have a choice."""
    return [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]


def annotated(payload: JsonObject) -> bool:
    """Whether any Azure annotation is left anywhere in a body or chunk."""
    text = orjson.dumps(payload).decode()
    return any(f'"{name}"' in text for name in ANNOTATIONS)


# The request VaultGate sends.


async def test_chat_request_deployment_style_sends_path_version_and_key(
    adapter: AzureOpenAIAdapter, fake_azure: FakeAzure
) -> None:
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    sent = received(fake_azure, call)
    assert sent.path == "/openai/deployments/plain/chat/completions"
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == fake_azure.api_key
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "plain",
        "messages": [{"role": "user", "content": "hi"}],
        "user": call.body["user"],
    }


async def test_chat_request_api_version_option_is_sent(
    http: HttpClient, fake_azure: FakeAzure
) -> None:
    adapter = make_adapter(http, fake_azure, api_version="2025-04-01-preview")
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    assert received(fake_azure, call).query == {"api-version": "2025-04-01-preview"}


async def test_chat_request_v1_style_puts_deployment_in_body_without_version(
    http: HttpClient, fake_azure: FakeAzure
) -> None:
    adapter = make_adapter(http, fake_azure, api_style="v1")
    call = make_call(adapter, "plain")

    result = await adapter.chat(call)

    sent = received(fake_azure, call)
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.query == {}
    assert sent.body["model"] == "plain"
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_chat_request_entra_auth_sends_bearer_token_only(
    http: HttpClient, fake_azure: FakeAzure
) -> None:
    adapter = make_adapter(http, fake_azure, key=fake_azure.entra_token, auth="entra")
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    sent = received(fake_azure, call)
    assert sent.headers["authorization"] == f"Bearer {fake_azure.entra_token}"
    assert "api-key" not in sent.headers


async def test_chat_request_stream_asks_for_usage(
    adapter: AzureOpenAIAdapter, fake_azure: FakeAzure
) -> None:
    call = make_call(adapter, "plain")

    await collect(adapter, call)

    sent = received(fake_azure, call).body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("option", "value"), [("api_style", "rest"), ("auth", "token")])
async def test_adapter_unknown_option_value_raises_config_error(
    http: HttpClient, fake_azure: FakeAzure, option: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=option):
        make_adapter(http, fake_azure, **{option: value})


# The OpenAI answer it returns.


async def test_chat_response_plain_is_openai_completion_without_annotations(
    adapter: AzureOpenAIAdapter,
) -> None:
    result = await adapter.chat(make_call(adapter, "plain"))

    assert result.body == {
        "id": "chatcmpl-azure01",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "azure-plain-text",
        "system_fingerprint": "fp_azure",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (13, 6)


async def test_chat_response_parallel_tools_keeps_both_calls(adapter: AzureOpenAIAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_azure_1", "call_azure_2"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]


@pytest.mark.parametrize(
    ("upstream", "finish_reason"),
    [("stop-sequence", "stop"), ("length", "length"), ("content-filter", "content_filter")],
)
async def test_chat_response_finish_reason_passes_through(
    adapter: AzureOpenAIAdapter, upstream: str, finish_reason: str
) -> None:
    result = await adapter.chat(make_call(adapter, upstream, stop=["END"]))

    assert result.body["choices"][0]["finish_reason"] == finish_reason
    assert not annotated(result.body)


async def test_chat_response_json_and_image_input_answer(adapter: AzureOpenAIAdapter) -> None:
    content = [
        {"type": "text", "text": "What is this? Answer in json."},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]
    messages = [{"role": "user", "content": content}]

    image = await adapter.chat(make_call(adapter, "image-input", messages=messages))
    as_json = await adapter.chat(
        make_call(adapter, "json", messages=messages, response_format={"type": "json_object"})
    )

    assert image.body["choices"][0]["message"]["content"] == REPLY
    assert json.loads(as_json.body["choices"][0]["message"]["content"]) == JSON_REPLY


# Streams.


async def test_chat_stream_first_chunk_has_role_and_no_annotations_anywhere(
    adapter: AzureOpenAIAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "plain"))

    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(chunk["choices"] for chunk in chunks[:-1])
    assert not any(annotated(chunk) for chunk in chunks)
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == REPLY
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert reasons[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == USAGE
    assert {c["id"] for c in chunks} == {"chatcmpl-azure01"}
    assert {c["model"] for c in chunks} == {"azure-plain-text"}


async def test_chat_stream_async_filter_annotation_chunks_are_dropped(
    adapter: AzureOpenAIAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "async-filter"))

    after_finish = chunks[[c["choices"][0]["finish_reason"] for c in chunks[:-1]].index("stop") :]
    assert len(after_finish) == 2
    assert after_finish[1]["choices"] == []
    assert "usage" in after_finish[1]


async def test_chat_stream_content_filter_finish_reason_passes_through(
    adapter: AzureOpenAIAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "content-filter"))

    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert reasons[-1] == "content_filter"
    assert not any(annotated(chunk) for chunk in chunks)


async def test_chat_stream_tool_calls_arrive_indexed(adapter: AzureOpenAIAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "parallel-tools", tools=[WEATHER_TOOL]))

    calls = [call for d in deltas(chunks) for call in d.get("tool_calls") or ()]
    assert [(c["index"], c["id"]) for c in calls] == [(0, "call_azure_1"), (1, "call_azure_2")]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


async def test_chat_stream_error_event_raises_after_content(adapter: AzureOpenAIAdapter) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError, match="fake Azure stream failure"):
        await collect(adapter, make_call(adapter, "stream-error"), into=seen)

    assert any(d.get("content") for d in deltas(seen))


async def test_stream_translator_first_choice_without_role_gets_one(
    adapter: AzureOpenAIAdapter,
) -> None:
    call = make_call(adapter, "plain")
    translate = adapter.stream_translator(call)
    first = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None,
                          "content_filter_results": {}}]}  # fmt: skip

    chunks = translate(SseEvent(data=json.dumps(first)))
    later = translate(SseEvent(data=json.dumps(first)))

    assert chunks[0]["choices"][0]["delta"] == {"content": "Hi", "role": "assistant"}
    assert later[0]["choices"][0]["delta"] == {"content": "Hi"}


# Errors.


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_prompt_filter_maps_to_400_content_filter(
    adapter: AzureOpenAIAdapter, stream: bool
) -> None:
    call = make_call(adapter, "prompt-filter")

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    error = caught.value
    assert (error.status, error.code, error.param) == (400, "content_filter", "prompt")
    assert error.error_type == "invalid_request_error"
    assert error.retryable is False
    assert "content management policy" in error.message
    assert error.message.endswith("(filtered: violence)")


@pytest.mark.parametrize(
    ("upstream_status", "status", "retryable"),
    [(400, 400, False), (401, 502, True), (429, 429, True), (500, 502, True)],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_error_status_maps_by_status(
    adapter: AzureOpenAIAdapter, upstream_status: int, status: int, retryable: bool, stream: bool
) -> None:
    call = make_call(adapter, f"error-{upstream_status}")

    with pytest.raises(UpstreamError) as caught:
        await (collect(adapter, call) if stream else adapter.chat(call))

    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert adapter.config.api_key not in caught.value.message  # type: ignore[operator]
    if upstream_status == 429:
        assert caught.value.headers == {"retry-after": "7"}


async def test_chat_wrong_key_is_a_deployment_error(
    http: HttpClient, fake_azure: FakeAzure
) -> None:
    adapter = make_adapter(http, fake_azure, key="wrong-key-0123456789")

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(adapter, "plain"))

    assert caught.value.status == 502


async def test_map_error_429_with_only_retry_after_ms_rounds_up(
    adapter: AzureOpenAIAdapter,
) -> None:
    raw = b'{"error": {"code": "429", "message": "slow down"}}'

    error = adapter.map_error(429, raw, {"retry-after-ms": "1500"})

    assert (error.status, error.headers) == (429, {"retry-after": "2"})


# Images.


async def test_images_deployment_style_relays_url_without_annotations(
    adapter: AzureOpenAIAdapter, fake_azure: FakeAzure
) -> None:
    call = ImageCall(
        "dall-e-3-image", "dall-e-3", "a lighthouse", 1, "1024x1024", "standard", "url",
        {"prompt": "a lighthouse", "size": "1024x1024"}, adapter.config,
    )  # fmt: skip

    result = await adapter.images(call)

    sent = fake_azure.requests[-1]
    assert sent.path == "/openai/deployments/dall-e-3/images/generations"
    assert sent.query == {"api-version": API_VERSION}
    assert sent.body == {"prompt": "a lighthouse", "size": "1024x1024", "model": "dall-e-3"}
    [image] = result.images
    assert image.url == "https://images.example.invalid/azure.png"
    assert image.revised_prompt == "A picture of a lighthouse"


async def test_images_prompt_filter_maps_to_400_content_filter(
    adapter: AzureOpenAIAdapter,
) -> None:
    call = ImageCall(
        "x-image", "prompt-filter", "p", 1, "1024x1024", "standard", "url",
        {"prompt": "p"}, adapter.config,
    )  # fmt: skip

    with pytest.raises(UpstreamError) as caught:
        await adapter.images(call)

    assert (caught.value.status, caught.value.code) == (400, "content_filter")


# The official SDK accepts everything the fake sends.

SDK_SCENARIOS = [
    "plain", "tool", "parallel-tools", "stop-sequence", "length", "json", "image-input",
    "content-filter", "async-filter",
]  # fmt: skip


@pytest.fixture(scope="module")
def sdk(fake_azure: FakeAzure) -> Iterator[openai.AzureOpenAI]:
    """The official Azure client pointed at the fake, without retries."""
    with openai.AzureOpenAI(
        azure_endpoint=fake_azure.endpoint, api_key=fake_azure.api_key,
        api_version=API_VERSION, max_retries=0,
    ) as client:  # fmt: skip
        yield client


def _sdk_request(model: str, *, stream: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "hi, in json"}]
    if model == "image-input":
        content.append({"type": "image_url", "image_url": {"url": PNG_URL}})
    request: dict[str, Any] = {
        "model": model, "messages": [{"role": "user", "content": content}], "stop": ["END"],
    }  # fmt: skip
    if model in ("tool", "parallel-tools"):
        request["tools"] = [WEATHER_TOOL]
    if stream:
        request.update(stream=True, stream_options={"include_usage": True})
    return request


@pytest.mark.parametrize("model", SDK_SCENARIOS)
def test_sdk_create_and_stream_agree_on_fake_answers(sdk: openai.AzureOpenAI, model: str) -> None:
    whole = sdk.chat.completions.create(**_sdk_request(model))
    chunks = list(sdk.chat.completions.create(**_sdk_request(model, stream=True)))

    # Azure's asynchronous-filter annotation chunks carry a choice without a delta.
    choices = [c.choices[0] for c in chunks if c.choices]
    text = "".join(c.delta.content or "" for c in choices if c.delta)
    reasons = [c.finish_reason for c in choices if c.finish_reason]
    calls = [t for c in choices if c.delta for t in c.delta.tool_calls or ()]
    assert text == (whole.choices[0].message.content or "")
    assert reasons[-1] == whole.choices[0].finish_reason
    assert len(calls) == len(whole.choices[0].message.tool_calls or ())
    assert chunks[0].choices == []
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


@pytest.mark.parametrize(
    ("model", "error_class"),
    [
        ("error-400", openai.BadRequestError),
        ("prompt-filter", openai.BadRequestError),
        ("error-401", openai.AuthenticationError),
        ("error-429", openai.RateLimitError),
        ("error-500", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_sdk_create_parses_fake_error_body(
    sdk: openai.AzureOpenAI, model: str, error_class: type[openai.APIStatusError], stream: bool
) -> None:
    with pytest.raises(error_class) as caught:
        sdk.chat.completions.create(**_sdk_request(model, stream=stream))

    body = caught.value.body
    assert isinstance(body, dict)
    assert body["message"]
    if model == "prompt-filter":
        assert caught.value.code == "content_filter"


def test_sdk_stream_raises_on_fake_error_event(sdk: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.APIError, match="fake Azure stream failure"):
        list(sdk.chat.completions.create(**_sdk_request("stream-error", stream=True)))


def test_sdk_images_generate_accepts_fake_answer(sdk: openai.AzureOpenAI) -> None:
    result = sdk.images.generate(model="dall-e-3", prompt="a lighthouse")

    assert result.data is not None
    assert result.data[0].url == "https://images.example.invalid/azure.png"


def test_sdk_without_api_version_gets_azures_404(fake_azure: FakeAzure) -> None:
    base_url = f"{fake_azure.endpoint}/openai/deployments/plain"
    with (
        openai.OpenAI(base_url=base_url, api_key=fake_azure.api_key, max_retries=0) as client,
        pytest.raises(openai.NotFoundError, match="Resource not found"),
    ):
        client.chat.completions.create(**_sdk_request("plain"))


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_v1_style_accepts_fake_answer(fake_azure: FakeAzure, stream: bool) -> None:
    base_url = f"{fake_azure.endpoint}/openai/v1/"
    with openai.OpenAI(base_url=base_url, api_key=fake_azure.api_key, max_retries=0) as client:
        answer = client.chat.completions.create(**_sdk_request("plain", stream=stream))
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        else:
            text = answer.choices[0].message.content or ""

    assert text == REPLY
