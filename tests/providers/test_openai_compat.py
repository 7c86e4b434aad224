"""The OpenAI-compatible adapter against a real local HTTP server speaking OpenAI's format."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import FAKE_UPSTREAM_KEY
from tests.support.fake_openai import REPLY_WORDS, FakeOpenAI, Recorded
from tests.support.server import free_port
from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers import fanout
from vaultgate.providers.base import ChatCall, ImageCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter

pytestmark = pytest.mark.anyio

REPLY = "".join(REPLY_WORDS)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """A pooled client with generous defaults, closed after the test."""
    client = HttpClient(
        pool_size=8, pool_per_host=8, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    yield client
    await client.aclose()


def make_adapter(
    http: HttpClient, base_url: str, *, read_timeout_s: float | None = None
) -> OpenAICompatibleAdapter:
    """An adapter named ``fake`` that authenticates with the fake upstream key."""
    config = ProviderConfig(
        name="fake",
        wire_format="openai",
        base_url=base_url,
        api_key=FAKE_UPSTREAM_KEY,
        headers=(("X-Extra", "yes"),),
        read_timeout_s=read_timeout_s,
    )
    return OpenAICompatibleAdapter(config, http)


@pytest.fixture
def adapter(http: HttpClient, fake_upstream: FakeOpenAI) -> OpenAICompatibleAdapter:
    """The adapter pointed at the session's fake upstream."""
    return make_adapter(http, fake_upstream.base_url)


def make_call(adapter: OpenAICompatibleAdapter, upstream: str, **extra: Any) -> ChatCall:
    """A chat call for gateway model ``fake-<upstream>-text``; ``user`` tags the request."""
    body: JsonObject = {
        "model": f"fake-{upstream}-text",
        "messages": [{"role": "user", "content": "hi"}],
        "user": uuid.uuid4().hex,
        **extra,
    }
    return ChatCall(f"fake-{upstream}-text", upstream, body, adapter.config)


def received(fake: FakeOpenAI, call: ChatCall) -> Recorded:
    """The request the fake upstream recorded for ``call``."""
    matches = [r for r in fake.requests if r.body.get("user") == call.body["user"]]
    assert len(matches) == 1
    return matches[0]


async def collect(
    adapter: OpenAICompatibleAdapter, call: ChatCall, *, into: list[JsonObject] | None = None
) -> list[JsonObject]:
    """Every chunk of a streamed answer, also appended to ``into`` as it arrives."""
    chunks = [] if into is None else into
    async for chunk in adapter.chat_stream(call):
        chunks.append(chunk)
    return chunks


def streamed_text(chunks: list[JsonObject]) -> str:
    """The content deltas of a stream, joined."""
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


async def chat_error(adapter: OpenAICompatibleAdapter, upstream: str) -> UpstreamError:
    """The error a non-streamed call to ``upstream`` raises."""
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(adapter, upstream))
    return caught.value


# The request it sends.


async def test_chat_request_replaces_model_and_sends_provider_key(
    adapter: OpenAICompatibleAdapter, fake_upstream: FakeOpenAI
) -> None:
    call = make_call(adapter, "plain", stream=False, stream_options={"include_usage": True})

    await adapter.chat(call)

    sent = received(fake_upstream, call)
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "plain"
    assert sent.headers["Authorization"] == f"Bearer {FAKE_UPSTREAM_KEY}"
    assert sent.headers["X-Extra"] == "yes"
    assert "stream" not in sent.body
    assert "stream_options" not in sent.body


async def test_chat_request_unknown_params_are_forwarded_untouched(
    adapter: OpenAICompatibleAdapter, fake_upstream: FakeOpenAI
) -> None:
    odd = {"vendor_knob": {"nested": [1, 2.5, None, "x"]}, "top_k": 40, "temperature": 0.3}
    call = make_call(adapter, "plain", **odd)

    await adapter.chat(call)

    sent = received(fake_upstream, call)
    assert {key: sent.body[key] for key in odd} == odd
    assert sent.body["messages"] == call.body["messages"]


async def test_chat_request_does_not_modify_callers_body(
    adapter: OpenAICompatibleAdapter,
) -> None:
    call = make_call(adapter, "plain", stream=True, stream_options={"include_usage": False})
    before = {**call.body, "stream_options": dict(call.body["stream_options"])}

    await collect(adapter, call)

    assert call.body == before


async def test_stream_request_asks_for_usage(
    adapter: OpenAICompatibleAdapter, fake_upstream: FakeOpenAI
) -> None:
    call = make_call(adapter, "plain", stream_options={"include_usage": False, "other": 1})

    await collect(adapter, call)

    sent = received(fake_upstream, call)
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True, "other": 1}
    assert sent.body["model"] == "plain"


async def test_stream_request_without_stream_usage_setting_leaves_options(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    config = ProviderConfig(
        name="fake", wire_format="openai", base_url=fake_upstream.base_url,
        api_key=FAKE_UPSTREAM_KEY, stream_usage=False,
    )  # fmt: skip
    adapter = OpenAICompatibleAdapter(config, http)
    call = make_call(adapter, "plain")

    await collect(adapter, call)

    assert "stream_options" not in received(fake_upstream, call).body


async def test_chat_request_without_api_key_sends_no_authorization(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    config = ProviderConfig(name="local", wire_format="openai", base_url=fake_upstream.base_url)
    adapter = OpenAICompatibleAdapter(config, http)
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    assert "Authorization" not in received(fake_upstream, call).headers


# Results.


async def test_chat_plain_returns_body_with_gateway_model_and_usage(
    adapter: OpenAICompatibleAdapter,
) -> None:
    result = await adapter.chat(make_call(adapter, "plain"))

    assert result.body["model"] == "fake-plain-text"
    assert result.body["choices"][0]["message"]["content"] == REPLY
    assert result.usage == Usage(prompt_tokens=11, completion_tokens=len(REPLY_WORDS))


async def test_chat_no_usage_gives_usage_none(adapter: OpenAICompatibleAdapter) -> None:
    result = await adapter.chat(make_call(adapter, "no-usage"))

    assert result.usage is None
    assert result.body["choices"][0]["message"]["content"] == REPLY


async def test_stream_plain_yields_chunks_then_usage_chunk(
    adapter: OpenAICompatibleAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "plain"))

    assert streamed_text(chunks) == REPLY
    assert all(chunk["model"] == "fake-plain-text" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(REPLY_WORDS)


async def test_stream_no_usage_yields_no_usage_chunk(adapter: OpenAICompatibleAdapter) -> None:
    chunks = await collect(adapter, make_call(adapter, "no-usage"))

    assert streamed_text(chunks) == REPLY
    assert not any("usage" in chunk for chunk in chunks)


async def test_stream_comments_crlf_and_split_events_give_same_text(
    adapter: OpenAICompatibleAdapter,
) -> None:
    chunks = await collect(adapter, make_call(adapter, "comments"))

    assert streamed_text(chunks) == REPLY
    assert chunks[-1]["usage"]["prompt_tokens"] == 11


# Error mapping.


@pytest.mark.parametrize("upstream", ["error-400", "detail-error-422", "client-error-as-500"])
async def test_chat_client_errors_map_to_400_not_retryable(
    adapter: OpenAICompatibleAdapter, upstream: str
) -> None:
    error = await chat_error(adapter, upstream)

    assert error.status == 400
    assert error.retryable is False
    assert error.error_type == "invalid_request_error"
    assert error.code == "upstream_rejected_request"


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_chat_deployment_errors_map_to_502_retryable(
    adapter: OpenAICompatibleAdapter, status: int
) -> None:
    error = await chat_error(adapter, f"error-{status}")

    assert error.status == 502
    assert error.retryable is True
    assert f"HTTP {status}" in error.message


async def test_chat_429_keeps_retry_after_and_is_retryable(
    adapter: OpenAICompatibleAdapter,
) -> None:
    error = await chat_error(adapter, "error-429")

    assert error.status == 429
    assert error.retryable is True
    assert error.headers == {"retry-after": "7"}
    assert error.code == "upstream_rate_limited"


@pytest.mark.parametrize("upstream", ["error-500", "error-503", "text-error-502"])
async def test_chat_server_errors_map_to_502_retryable(
    adapter: OpenAICompatibleAdapter, upstream: str
) -> None:
    error = await chat_error(adapter, upstream)

    assert error.status == 502
    assert error.retryable is True


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ("error-503", "fake: fake upstream error 503"),
        ("text-error-502", "fake: upstream exploded"),
        ("detail-error-422", "fake: detail-shaped failure"),
        ("client-error-as-500", "fake: prompt too long"),
    ],
)
async def test_chat_error_bodies_of_any_shape_give_readable_message(
    adapter: OpenAICompatibleAdapter, upstream: str, message: str
) -> None:
    error = await chat_error(adapter, upstream)

    assert error.message == message
    assert str(error) == message


async def test_chat_malformed_json_raises_upstream_error(
    adapter: OpenAICompatibleAdapter,
) -> None:
    error = await chat_error(adapter, "malformed")

    assert type(error) is UpstreamError
    assert "not JSON" in error.message


async def test_stream_error_event_raises_upstream_error_after_content(
    adapter: OpenAICompatibleAdapter,
) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "stream-error-after-2"), into=seen)

    assert streamed_text(seen) == "".join(REPLY_WORDS[:2])
    assert caught.value.message == "fake: overloaded mid-stream"


async def test_stream_cut_connection_raises_upstream_error(
    adapter: OpenAICompatibleAdapter,
) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "cut-after-2"), into=seen)

    assert type(caught.value) is UpstreamError
    assert streamed_text(seen) == "".join(REPLY_WORDS[:2])


@pytest.mark.parametrize("upstream", ["error-429", "error-401", "client-error-as-500"])
async def test_stream_error_status_maps_like_chat(
    adapter: OpenAICompatibleAdapter, upstream: str
) -> None:
    expected = await chat_error(adapter, upstream)

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, upstream))

    assert (caught.value.status, caught.value.retryable) == (expected.status, expected.retryable)


async def test_chat_connection_refused_raises_upstream_error(http: HttpClient) -> None:
    adapter = make_adapter(http, f"http://127.0.0.1:{free_port()}/v1")

    error = await chat_error(adapter, "plain")

    assert type(error) is UpstreamError
    assert error.retryable is True
    assert "could not reach fake" in error.message


async def test_stream_connection_refused_raises_upstream_error(http: HttpClient) -> None:
    adapter = make_adapter(http, f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "plain"))

    assert type(caught.value) is UpstreamError


async def test_chat_slow_upstream_beyond_read_timeout_raises_timeout(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = make_adapter(http, fake_upstream.base_url, read_timeout_s=0.1)

    error = await chat_error(adapter, "slow-1500")

    assert isinstance(error, UpstreamTimeout)
    assert error.status == 504
    assert error.retryable is True


async def test_stream_slow_upstream_beyond_read_timeout_raises_timeout(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = make_adapter(http, fake_upstream.base_url, read_timeout_s=0.1)

    with pytest.raises(UpstreamTimeout):
        await collect(adapter, make_call(adapter, "slow-1500"))


async def test_images_request_replaces_model_and_returns_items(
    adapter: OpenAICompatibleAdapter, fake_upstream: FakeOpenAI
) -> None:
    marker = uuid.uuid4().hex
    body = {"model": "fake-dalle-image", "prompt": "cat", "n": 2, "user": marker}
    call = ImageCall(
        model_id="fake-dalle-image", upstream_model="plain", prompt="cat", n=2,
        size="1024x1024", quality="standard", response_format="url", body=body,
        provider=adapter.config,
    )  # fmt: skip

    result = await adapter.images(call)

    sent = [r for r in fake_upstream.requests if r.body.get("user") == marker]
    assert [r.body["model"] for r in sent] == ["plain"]
    assert sent[0].path == "/v1/images/generations"
    assert [image.url for image in result.images] == [
        "https://images.example.invalid/fake.png"
    ] * 2


# Credential scrubbing: the provider key never reaches an error message.


@pytest.mark.parametrize(
    "upstream",
    [
        "echo-key-400", "echo-key-401", "echo-key-422", "echo-key-429", "echo-key-500",
        "echo-key-text-400", "echo-key-text-429", "echo-key-text-503",
    ],
)  # fmt: skip
async def test_chat_upstream_echoing_key_never_leaks_it(
    adapter: OpenAICompatibleAdapter, upstream: str
) -> None:
    error = await chat_error(adapter, upstream)

    assert FAKE_UPSTREAM_KEY not in str(error)
    assert FAKE_UPSTREAM_KEY not in error.json_bytes().decode()
    assert FAKE_UPSTREAM_KEY not in repr(error.headers)


async def test_chat_upstream_echoing_key_keeps_rest_of_message(
    adapter: OpenAICompatibleAdapter,
) -> None:
    error = await chat_error(adapter, "echo-key-text-503")

    assert error.message == "fake: Incorrect API key provided: Bearer ***"


async def test_stream_error_event_echoing_key_never_leaks_it(
    adapter: OpenAICompatibleAdapter,
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call(adapter, "echo-key-stream"))

    assert caught.value.message == "fake: bad key Bearer ***"
    assert FAKE_UPSTREAM_KEY not in caught.value.json_bytes().decode()


async def test_provider_config_repr_hides_key(adapter: OpenAICompatibleAdapter) -> None:
    assert FAKE_UPSTREAM_KEY not in repr(adapter.config)


# Provider parameter rules: defaults and clamps given as data.


def ruled_adapter(
    http: HttpClient, fake_upstream: FakeOpenAI, **rules: Any
) -> OpenAICompatibleAdapter:
    """An adapter on the fake upstream whose config carries ``rules`` (default_params, ...)."""
    config = ProviderConfig(
        name="fake",
        wire_format="openai",
        base_url=fake_upstream.base_url,
        api_key=FAKE_UPSTREAM_KEY,
        **rules,
    )
    return OpenAICompatibleAdapter(config, http)


async def test_chat_request_missing_params_get_provider_defaults(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = ruled_adapter(
        http, fake_upstream, default_params=(("max_tokens", 2048), ("top_k", 40))
    )
    call = make_call(adapter, "plain")

    await adapter.chat(call)

    sent = received(fake_upstream, call)
    assert (sent.body["max_tokens"], sent.body["top_k"]) == (2048, 40)
    assert "max_tokens" not in call.body


async def test_chat_request_client_values_win_over_provider_defaults(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = ruled_adapter(
        http, fake_upstream, default_params=(("max_tokens", 2048), ("top_k", 40))
    )
    explicit = make_call(adapter, "plain", max_tokens=10, top_k=5)
    newer_name = make_call(adapter, "plain", max_completion_tokens=10)

    await adapter.chat(explicit)
    await adapter.chat(newer_name)

    sent = received(fake_upstream, explicit)
    assert (sent.body["max_tokens"], sent.body["top_k"]) == (10, 5)
    other = received(fake_upstream, newer_name)
    assert other.body["max_completion_tokens"] == 10
    assert "max_tokens" not in other.body


async def test_chat_request_numbers_outside_provider_range_are_clamped(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = ruled_adapter(
        http, fake_upstream, clamp_params=(("temperature", 0.01, 1.0), ("top_p", 0.0, 1.0))
    )
    high = make_call(adapter, "plain", temperature=1.7, top_p=0.5)
    low = make_call(adapter, "plain", temperature=0)

    await adapter.chat(high)
    await adapter.chat(low)

    sent = received(fake_upstream, high)
    assert (sent.body["temperature"], sent.body["top_p"]) == (1.0, 0.5)
    assert received(fake_upstream, low).body["temperature"] == 0.01


async def test_chat_request_rename_applies_before_defaults_and_clamps(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    adapter = ruled_adapter(
        http,
        fake_upstream,
        rename_params=(("max_completion_tokens", "max_tokens"),),
        default_params=(("max_tokens", 2048),),
        clamp_params=(("max_tokens", 1, 100),),
    )
    call = make_call(adapter, "plain", max_completion_tokens=500)

    await adapter.chat(call)

    sent = received(fake_upstream, call)
    assert sent.body["max_tokens"] == 100
    assert "max_completion_tokens" not in sent.body


async def test_n_dropped_by_provider_is_fanned_out_one_request_per_choice(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    config = replace(make_adapter(http, fake_upstream.base_url).config, drop_params=("n",))
    single_choice = OpenAICompatibleAdapter(config, http)
    call = make_call(single_choice, "plain", n=2)

    result = await fanout.chat(single_choice, call)

    sent = [r.body for r in fake_upstream.requests if r.body.get("user") == call.body["user"]]
    assert not single_choice.supports_n
    assert single_choice.unsupported_params(call.body) == []
    assert len(sent) == 2
    assert all("n" not in body for body in sent)
    assert [choice["index"] for choice in result.body["choices"]] == [0, 1]


async def test_n_one_to_provider_that_rejects_n_is_not_sent(
    http: HttpClient, fake_upstream: FakeOpenAI
) -> None:
    config = replace(make_adapter(http, fake_upstream.base_url).config, drop_params=("n",))
    single_choice = OpenAICompatibleAdapter(config, http)
    call = make_call(single_choice, "plain", n=1)

    await fanout.chat(single_choice, call)

    assert "n" not in received(fake_upstream, call).body
