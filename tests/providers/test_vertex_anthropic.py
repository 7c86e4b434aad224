"""Claude on Vertex AI against a real local server speaking Vertex's rawPredict wire format,
with a token endpoint that checks the service-account JWT's signature."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.fake_anthropic import REPLY_WORDS
from tests.support.fake_vertex import LOCATION, PROJECT, make_test_key, service_account_info
from tests.support.fake_vertex_anthropic import VERTEX_VERSION, FakeVertexAnthropic
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.catalog import load_catalog
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.registry import ADAPTERS, resolve_config
from vaultgate.providers.vertex_anthropic import VertexAnthropicAdapter

pytestmark = pytest.mark.anyio

CLAUDE_ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models"
STATIC_TOKEN = "ya29.claude-static-token"
REPLY = "".join(REPLY_WORDS)


@pytest.fixture(scope="module")
def test_key() -> rsa.RSAPrivateKey:
    """The service account's key; the fake server knows its public half."""
    return make_test_key()


@pytest.fixture(scope="module")
def fake(test_key: rsa.RSAPrivateKey) -> Iterator[FakeVertexAnthropic]:
    """The fake Vertex server with Claude's methods, shared by the module."""
    server = FakeVertexAnthropic(public_key=test_key.public_key()).start()
    server.static_tokens.add(STATIC_TOKEN)
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


def claude_config(base_url: str, api_key: str | None, **options: str) -> ProviderConfig:
    """A vertex-anthropic provider config; project and location default to the fake's."""
    merged = {"project": PROJECT, "location": LOCATION, **options}
    return ProviderConfig(
        name="vertex-anthropic", wire_format="vertex-anthropic", base_url=base_url,
        api_key=api_key, options=tuple(merged.items()),
    )  # fmt: skip


@pytest.fixture
def adapter(http: HttpClient, fake: FakeVertexAnthropic) -> VertexAnthropicAdapter:
    """An adapter sending the operator's static access token."""
    return VertexAnthropicAdapter(claude_config(fake.base_url, STATIC_TOKEN, auth="access_token"),
                                  http)  # fmt: skip


def make_call(behaviour: str, **body: Any) -> ChatCall:
    """A call to a tagged upstream model, so the fake's record of it can be found."""
    upstream = f"{behaviour}~{uuid.uuid4().hex}"
    full: JsonObject = {"model": "claude-test-text", **body}
    full.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCall("claude-test-text", upstream, full, claude_config("", None),
                    max_output_tokens=1024)  # fmt: skip


async def collect(
    adapter: VertexAnthropicAdapter, call: ChatCall, into: list[JsonObject] | None = None
) -> list[JsonObject]:
    """Every chunk of a streamed answer, also appended to ``into`` as it arrives."""
    chunks = [] if into is None else into
    async for chunk in adapter.chat_stream(call):
        chunks.append(chunk)
    return chunks


async def answer(adapter: VertexAnthropicAdapter, call: ChatCall, *, stream: bool) -> None:
    """Run the call whole or streamed."""
    if stream:
        await collect(adapter, call)
    else:
        await adapter.chat(call)


# The request it sends.


async def test_chat_request_posts_raw_predict_without_model_with_vertex_version(
    adapter: VertexAnthropicAdapter, fake: FakeVertexAnthropic
) -> None:
    call = make_call("plain", temperature=1.5, stop="END", user="u-1")

    await adapter.chat(call)

    got = fake.claude_received(call.upstream_model)
    assert got.method == "rawPredict"
    assert got.headers["authorization"] == f"Bearer {STATIC_TOKEN}"
    assert "x-api-key" not in got.headers
    assert "anthropic-version" not in got.headers
    assert got.body == {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 1024,
        "temperature": 1.0,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "anthropic_version": VERTEX_VERSION,
    }


async def test_stream_request_posts_stream_raw_predict_with_stream_true(
    adapter: VertexAnthropicAdapter, fake: FakeVertexAnthropic
) -> None:
    call = make_call("plain", stream=True)

    await collect(adapter, call)

    got = fake.claude_received(call.upstream_model)
    assert got.method == "streamRawPredict"
    assert got.body["stream"] is True
    assert got.body["anthropic_version"] == VERTEX_VERSION
    assert "model" not in got.body


@pytest.mark.parametrize(
    ("location", "host"),
    [("global", "aiplatform.googleapis.com"), ("us-east5", "us-east5-aiplatform.googleapis.com"),
     ("eu", "aiplatform.eu.rep.googleapis.com"), ("us", "aiplatform.us.rep.googleapis.com")],
)  # fmt: skip
async def test_chat_request_url_follows_location(
    http: HttpClient, location: str, host: str
) -> None:
    config = claude_config("https://aiplatform.googleapis.com", "{}", project="p",
                           location=location)  # fmt: skip
    call = ChatCall("m", "claude-sonnet-4-5@20250929",
                    {"messages": [{"role": "user", "content": "x"}]}, config)  # fmt: skip

    request = VertexAnthropicAdapter(config, http).build_chat_request(call, stream=False)

    assert request.url == (
        f"https://{host}/v1/projects/p/locations/{location}/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:rawPredict"
    )


async def test_chat_request_refused_params_raise_400_before_sending(
    adapter: VertexAnthropicAdapter, fake: FakeVertexAnthropic
) -> None:
    call = make_call("plain", response_format={"type": "json_object"})

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(call)

    assert (caught.value.status, caught.value.param) == (400, "response_format")
    assert not [r for r in fake.claude_requests if r.model == call.upstream_model]


async def test_chat_service_account_key_is_exchanged_for_bearer_token(
    http: HttpClient, fake: FakeVertexAnthropic, test_key: rsa.RSAPrivateKey
) -> None:
    key_json = json.dumps(service_account_info(test_key, fake.token_uri))
    adapter = VertexAnthropicAdapter(claude_config(fake.base_url, key_json), http)
    call = make_call("plain")

    result = await adapter.chat(call)

    token = fake.claude_received(call.upstream_model).headers["authorization"]
    assert token.removeprefix("Bearer ") in fake.issued
    assert result.body["choices"][0]["message"]["content"] == REPLY


# Answers.


async def test_chat_plain_returns_openai_completion_with_usage(
    adapter: VertexAnthropicAdapter,
) -> None:
    result = await adapter.chat(make_call("plain"))

    assert result.body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": REPLY, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result.body["model"] == "claude-test-text"
    assert result.usage == Usage(prompt_tokens=12, completion_tokens=7)


async def test_chat_tool_use_returns_tool_calls(adapter: VertexAnthropicAdapter) -> None:
    result = await adapter.chat(make_call("tool"))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
        }
    ]


async def test_stream_plain_sends_role_text_finish_then_usage(
    adapter: VertexAnthropicAdapter,
) -> None:
    chunks = await collect(adapter, make_call("plain", stream=True))

    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(t for t in texts if t) == REPLY
    assert [f for f in finishes if f] == ["stop"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 19


async def test_stream_error_event_raises_after_content(adapter: VertexAnthropicAdapter) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call("stream-error", stream=True), seen)

    assert any(c["choices"][0]["delta"].get("content") for c in seen if c["choices"])
    assert caught.value.status == 503


# Errors.


@pytest.mark.parametrize(
    ("behaviour", "status", "retryable"),
    [("error-400", 400, False), ("error-401", 502, True), ("error-403", 502, True),
     ("error-404", 502, True), ("error-429", 429, True), ("error-500", 502, True),
     ("error-529", 503, True)],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_errors_map_by_status(
    adapter: VertexAnthropicAdapter, behaviour: str, status: int, retryable: bool, stream: bool
) -> None:
    call = make_call(behaviour, stream=stream)

    with pytest.raises(UpstreamError) as caught:
        await answer(adapter, call, stream=stream)

    assert (caught.value.status, caught.value.retryable) == (status, retryable)


async def test_chat_429_quota_error_in_array_reads_google_message(
    adapter: VertexAnthropicAdapter,
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("error-429"))

    assert caught.value.message.startswith("vertex-anthropic: Quota exceeded for aiplatform")
    assert caught.value.headers == {}


async def test_chat_rejected_token_401_drops_cached_token(
    http: HttpClient, fake: FakeVertexAnthropic, test_key: rsa.RSAPrivateKey
) -> None:
    key_json = json.dumps(service_account_info(test_key, fake.token_uri))
    adapter = VertexAnthropicAdapter(claude_config(fake.base_url, key_json), http)
    await adapter.chat(make_call("plain"))
    before = len(fake.token_requests)
    fake.issued.clear()

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))
    await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert len(fake.token_requests) - before == 1


def test_error_text_never_carries_the_access_token() -> None:
    config = claude_config("http://127.0.0.1:9", None, access_token=STATIC_TOKEN)
    adapter = VertexAnthropicAdapter(config, HttpClient(pool_size=1, pool_per_host=1,
                                                        timeouts=Timeouts(1, 1, 1)))  # fmt: skip
    raw = json.dumps({"error": {"code": 500, "message": f"bad token {STATIC_TOKEN}"}}).encode()

    error = adapter.map_error(500, raw, {})

    assert STATIC_TOKEN not in error.message
    assert error.message == "vertex-anthropic: bad token ***"


async def test_chat_without_credentials_fails_as_deployment_error(
    http: HttpClient, fake: FakeVertexAnthropic
) -> None:
    adapter = VertexAnthropicAdapter(claude_config(fake.base_url, None), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert "no credentials" in caught.value.message


# The registry and the catalog.


async def test_registry_offers_vertex_anthropic_from_shipped_provider_table(
    http: HttpClient,
) -> None:
    catalog = load_catalog(None)
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json", "VERTEX_PROJECT": "p",
               "VERTEX_LOCATION": "global"}  # fmt: skip

    config = resolve_config(catalog.providers["vertex-anthropic"], environ)

    assert config is not None
    adapter = ADAPTERS["vertex-anthropic"](config, http, None)  # type: ignore[arg-type]
    assert isinstance(adapter, VertexAnthropicAdapter)


def test_catalog_claude_vertex_deployments_come_after_anthropic() -> None:
    models = load_catalog(None).models

    on_vertex = [m for m in models.values() if "vertex-anthropic" in m.providers]

    assert on_vertex
    for model in on_vertex:
        assert model.providers[0] == "anthropic"
        upstream = {d.provider: d.upstream for d in model.deployments}["vertex-anthropic"]
        assert "@" in upstream or upstream.startswith("claude-")


# Anti-drift: Anthropic's own Vertex client against the same fake server.

SDK_MODELS = ["plain", "tool", "parallel-tools", "stop-sequence", "length", "json",
              "image-input", "content-filter", "cached"]  # fmt: skip
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


@pytest.fixture(scope="module")
def sdk(fake: FakeVertexAnthropic) -> Iterator[anthropic.AnthropicVertex]:
    """AnthropicVertex pointed at the fake with the static token, without retries."""
    with anthropic.AnthropicVertex(
        region=LOCATION, project_id=PROJECT, access_token=STATIC_TOKEN,
        base_url=f"{fake.base_url}/v1", max_retries=0,
    ) as client:  # fmt: skip
        yield client


def sdk_request(model: str) -> dict[str, Any]:
    """A request for ``model``, with the version Google and Anthropic document for Vertex
    (this SDK release sends its own API version unless told)."""
    source = {"type": "base64", "media_type": "image/png", "data": PNG}
    content = [{"type": "image", "source": source}, {"type": "text", "text": "hi"}]
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
        "stop_sequences": ["END"],
        "extra_body": {"anthropic_version": VERTEX_VERSION},
    }


@pytest.mark.parametrize("model", SDK_MODELS)
def test_sdk_create_and_stream_accept_fake_answers(
    sdk: anthropic.AnthropicVertex, fake: FakeVertexAnthropic, model: str
) -> None:
    tag = f"{model}~{uuid.uuid4().hex}"

    whole = sdk.messages.create(**sdk_request(tag))
    with sdk.messages.stream(**sdk_request(tag)) as events:
        rebuilt = events.get_final_message()

    assert whole.stop_reason is not None
    fields = {"type", "text", "id", "name", "input"}
    assert [b.model_dump(include=fields) for b in rebuilt.content] == [
        b.model_dump(include=fields) for b in whole.content
    ]
    assert rebuilt.stop_reason == whole.stop_reason
    methods = [r.method for r in fake.claude_requests if r.model == tag]
    assert methods == ["rawPredict", "streamRawPredict"]


def test_sdk_default_version_is_refused_by_documented_rule(
    sdk: anthropic.AnthropicVertex,
) -> None:
    request = sdk_request("plain")
    del request["extra_body"]

    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(**request)

    assert "anthropic_version" in str(caught.value)


@pytest.mark.parametrize(
    ("model", "error"),
    [("error-400", anthropic.BadRequestError), ("error-401", anthropic.AuthenticationError),
     ("error-403", anthropic.PermissionDeniedError), ("error-429", anthropic.RateLimitError),
     ("error-500", anthropic.InternalServerError)],
)  # fmt: skip
def test_sdk_reads_fake_error_bodies(
    sdk: anthropic.AnthropicVertex, model: str, error: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(error):
        sdk.messages.create(**sdk_request(model))


def test_sdk_stream_raises_on_fake_error_event(sdk: anthropic.AnthropicVertex) -> None:
    with (
        pytest.raises(anthropic.APIStatusError),
        sdk.messages.stream(**sdk_request("stream-error")) as events,
    ):
        events.get_final_message()


def test_sdk_unknown_token_gets_vertex_401(fake: FakeVertexAnthropic) -> None:
    client = anthropic.AnthropicVertex(
        region=LOCATION, project_id=PROJECT, access_token="ya29.unknown",
        base_url=f"{fake.base_url}/v1", max_retries=0,
    )  # fmt: skip

    with client, pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**sdk_request("plain"))


async def test_chat_request_matches_sdk_request_for_same_intent(
    adapter: VertexAnthropicAdapter, fake: FakeVertexAnthropic, sdk: anthropic.AnthropicVertex
) -> None:
    call = make_call("plain", max_tokens=64, stop=["END"])
    await adapter.chat(call)
    tag = f"plain~{uuid.uuid4().hex}"

    sdk.messages.create(
        model=tag, max_tokens=64, messages=[{"role": "user", "content": "hi"}],
        stop_sequences=["END"], extra_body={"anthropic_version": VERTEX_VERSION},
    )  # fmt: skip

    ours, theirs = fake.claude_received(call.upstream_model), fake.claude_received(tag)
    content = [{"type": "text", "text": "hi"}]
    assert ours.body == {**theirs.body, "messages": [{"role": "user", "content": content}]}
