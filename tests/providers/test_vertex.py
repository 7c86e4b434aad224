"""The Vertex AI adapter against a real local server speaking Vertex's wire format, with a
token endpoint that checks the service-account JWT's signature."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from tests.support.fake_gemini import CALLS, REPLY
from tests.support.fake_vertex import (
    CLIENT_EMAIL,
    CLOUD_PLATFORM,
    JWT_BEARER,
    LOCATION,
    PROJECT,
    TOKEN_AUDIENCE,
    FakeVertex,
    make_test_key,
    service_account_info,
)
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.catalog import ProviderSpec
from vaultgate.providers.google_auth import ServiceAccountTokens
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.registry import ADAPTERS, resolve_config
from vaultgate.providers.vertex import VertexAdapter

pytestmark = pytest.mark.anyio

VERTEX_ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"
STATIC_TOKEN = "ya29.static-operator-token"


@pytest.fixture(scope="module")
def test_key() -> rsa.RSAPrivateKey:
    """The service account's key; the fake server knows its public half."""
    return make_test_key()


@pytest.fixture(scope="module")
def fake(test_key: rsa.RSAPrivateKey) -> Iterator[FakeVertex]:
    """The fake Vertex server, shared by the module."""
    server = FakeVertex(public_key=test_key.public_key()).start()
    server.static_tokens.add(STATIC_TOKEN)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key_json(fake: FakeVertex, test_key: rsa.RSAPrivateKey) -> str:
    """The service-account key file's text, its token_uri on the fake server."""
    return json.dumps(service_account_info(test_key, fake.token_uri))


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """A pooled client, closed after the test."""
    client = HttpClient(
        pool_size=8, pool_per_host=8, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    yield client
    await client.aclose()


def vertex_config(base_url: str, api_key: str | None, **options: str) -> ProviderConfig:
    """A vertex provider config; project and location default to the fake's."""
    merged = {"project": PROJECT, "location": LOCATION, **options}
    return ProviderConfig(
        name="vertex", wire_format="vertex", base_url=base_url, api_key=api_key,
        options=tuple(merged.items()),
    )  # fmt: skip


@pytest.fixture
def adapter(http: HttpClient, fake: FakeVertex, key_json: str) -> VertexAdapter:
    """An adapter with its own token cache, authenticating with the service-account key."""
    return VertexAdapter(vertex_config(fake.base_url, key_json), http)


def make_call(behaviour: str, **body: Any) -> ChatCall:
    """A call to a tagged upstream model, so the fake's record of it can be found."""
    upstream = f"{behaviour}~{uuid.uuid4().hex}"
    full: JsonObject = {"model": "gemini-test-text", **body}
    full.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCall("gemini-test-text", upstream, full, vertex_config("", None))


async def collect(adapter: VertexAdapter, call: ChatCall, into: list[JsonObject]) -> None:
    """Every chunk of a streamed answer, appended to ``into`` as it arrives."""
    async for chunk in adapter.chat_stream(call):
        into.append(chunk)


def tokens_issued_since(fake: FakeVertex, before: int) -> int:
    """How many token requests the fake received after ``before`` of them."""
    return len(fake.token_requests) - before


# The request it sends.


async def test_chat_request_posts_vertex_path_with_bearer_token(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    call = make_call("plain")

    await adapter.chat(call)

    got = fake.received(call.upstream_model)
    assert got.method == "generateContent"
    assert got.headers["Authorization"] in {f"Bearer {t}" for t in fake.issued}
    assert "x-goog-api-key" not in got.headers
    assert got.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_stream_request_uses_stream_method_with_sse(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    call = make_call("plain", stream=True)

    await collect(adapter, call, [])

    got = fake.received(call.upstream_model)
    assert got.method == "streamGenerateContent"
    assert got.query == {"alt": "sse"}


async def test_chat_request_valid_metadata_becomes_labels(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    metadata = {"team": "search", "cost-center": "cc_42"}
    call = make_call("plain", metadata=metadata)

    await adapter.chat(call)

    assert adapter.unsupported_params(call.body) == []
    assert fake.received(call.upstream_model).body["labels"] == metadata


@pytest.mark.parametrize(
    "metadata",
    [{"Team": "x"}, {"team": "Search"}, {"1team": "x"}, {"team": "x" * 64}, {"a b": "x"}],
)
async def test_unsupported_params_invalid_labels_drop_metadata(
    adapter: VertexAdapter, metadata: dict[str, str]
) -> None:
    body = {"model": "m", "messages": [], "metadata": metadata, "user": "u"}

    assert adapter.unsupported_params(body) == ["metadata", "user"]


@pytest.mark.parametrize(
    ("location", "url"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/"
         "us-central1/publishers/google/models/gemini-9-pro:generateContent"),
        ("global", "https://aiplatform.googleapis.com/v1/projects/p/locations/global/"
         "publishers/google/models/gemini-9-pro:generateContent"),
    ],
)  # fmt: skip
async def test_chat_request_default_host_follows_location(
    http: HttpClient, location: str, url: str
) -> None:
    config = vertex_config("https://aiplatform.googleapis.com", "{}", project="p",
                           location=location)  # fmt: skip
    call = ChatCall("m", "gemini-9-pro", {"messages": [{"role": "user", "content": "x"}]}, config)

    request = VertexAdapter(config, http).build_chat_request(call, stream=False)

    assert request.url == url


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"project": ""}, "option 'project' is not set"),
     ({"location": "us-central1.evil.example"}, "option 'location'")],
)  # fmt: skip
async def test_chat_misconfigured_provider_fails_as_deployment_error(
    http: HttpClient, fake: FakeVertex, key_json: str, options: dict[str, str], reason: str
) -> None:
    adapter = VertexAdapter(vertex_config(fake.base_url, key_json, **options), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert reason in caught.value.message


# Tokens.


async def test_token_request_is_jwt_bearer_grant_signed_for_cloud_platform(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    before = len(fake.token_requests)

    await adapter.chat(make_call("plain"))

    assert tokens_issued_since(fake, before) == 1
    sent = fake.token_requests[-1]
    assert sent.form["grant_type"] == JWT_BEARER
    assert sent.header == {"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}
    assert sent.claims["iss"] == CLIENT_EMAIL
    assert sent.claims["aud"] == TOKEN_AUDIENCE
    assert sent.claims["scope"] == CLOUD_PLATFORM
    assert sent.claims["exp"] - sent.claims["iat"] == 3600


async def test_token_cached_across_requests(adapter: VertexAdapter, fake: FakeVertex) -> None:
    before = len(fake.token_requests)

    await adapter.chat(make_call("plain"))
    await adapter.chat(make_call("plain", stream=False))
    await collect(adapter, make_call("plain", stream=True), [])

    assert tokens_issued_since(fake, before) == 1


async def test_token_concurrent_requests_share_one_refresh(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    before = len(fake.token_requests)

    results = await asyncio.gather(*(adapter.chat(make_call("plain")) for _ in range(6)))

    assert tokens_issued_since(fake, before) == 1
    assert all(r.body["choices"][0]["message"]["content"] == "".join(REPLY) for r in results)


async def test_token_refreshed_shortly_before_expiry(
    http: HttpClient, fake: FakeVertex, key_json: str
) -> None:
    now = [1000.0]
    tokens = ServiceAccountTokens(key_json, http, provider="vertex", clock=lambda: now[0])

    first = await tokens.token()
    now[0] += 3600 - 301
    still = await tokens.token()
    now[0] += 2
    fresh = await tokens.token()

    assert first == still
    assert fresh != first
    assert {first, fresh} <= fake.issued


async def test_token_key_read_from_file_path(
    http: HttpClient, fake: FakeVertex, key_json: str, tmp_path: Path
) -> None:
    path = tmp_path / "key.json"
    path.write_text(key_json)
    adapter = VertexAdapter(vertex_config(fake.base_url, str(path)), http)

    result = await adapter.chat(make_call("plain"))

    assert result.body["choices"][0]["message"]["content"] == "".join(REPLY)


@pytest.mark.parametrize(
    ("api_key", "options"),
    [(None, {"access_token": STATIC_TOKEN}), (STATIC_TOKEN, {"auth": "access_token"})],
)
async def test_chat_static_access_token_sent_without_exchange(
    http: HttpClient, fake: FakeVertex, api_key: str | None, options: dict[str, str]
) -> None:
    adapter = VertexAdapter(vertex_config(fake.base_url, api_key, **options), http)
    before, call = len(fake.token_requests), make_call("plain")

    await adapter.chat(call)

    assert fake.received(call.upstream_model).headers["Authorization"] == f"Bearer {STATIC_TOKEN}"
    assert tokens_issued_since(fake, before) == 0


async def test_chat_key_not_matching_token_endpoint_fails_as_deployment_error(
    http: HttpClient, fake: FakeVertex
) -> None:
    impostor = json.dumps(service_account_info(make_test_key(), fake.token_uri))
    adapter = VertexAdapter(vertex_config(fake.base_url, impostor), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert caught.value.retryable is True
    assert (
        caught.value.message == "vertex could not obtain an access token: HTTP 400 invalid_grant"
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [("{not json", "not JSON"), ('{"type": "authorized_user"}', "not a service-account key"),
     ("/nonexistent/key.json", "cannot be read")],
)  # fmt: skip
async def test_chat_unusable_key_fails_as_deployment_error(
    http: HttpClient, fake: FakeVertex, key: str, reason: str
) -> None:
    adapter = VertexAdapter(vertex_config(fake.base_url, key), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert reason in caught.value.message


async def test_chat_without_credentials_fails_as_deployment_error(
    http: HttpClient, fake: FakeVertex
) -> None:
    adapter = VertexAdapter(vertex_config(fake.base_url, None), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert "no credentials" in caught.value.message


async def test_chat_revoked_token_401_is_deployment_error_then_refreshed(
    adapter: VertexAdapter, fake: FakeVertex
) -> None:
    await adapter.chat(make_call("plain"))
    fake.issued.clear()  # Google no longer accepts the cached token
    before = len(fake.token_requests)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))
    result = await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert "rejected the request for this deployment (HTTP 401)" in caught.value.message
    assert tokens_issued_since(fake, before) == 1
    assert result.body["choices"][0]["finish_reason"] == "stop"


async def test_chat_wrong_project_403_is_deployment_error(
    http: HttpClient, fake: FakeVertex, key_json: str
) -> None:
    adapter = VertexAdapter(vertex_config(fake.base_url, key_json, project="other"), http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("plain"))

    assert caught.value.status == 502
    assert caught.value.retryable is True


# Answers and errors (the translation is Gemini's; these check it is wired the same way).


async def test_chat_plain_returns_text_and_usage(adapter: VertexAdapter) -> None:
    result = await adapter.chat(make_call("plain"))

    assert result.body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(REPLY)},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result.usage == Usage(prompt_tokens=11, completion_tokens=3)


async def test_stream_parallel_tools_returns_indexed_tool_calls(adapter: VertexAdapter) -> None:
    chunks: list[JsonObject] = []

    await collect(adapter, make_call("tools", stream=True), chunks)

    calls = [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls", ())
    ]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [
        (0, CALLS[0]["name"]),
        (1, CALLS[1]["name"]),
    ]
    assert chunks[-1]["usage"]["total_tokens"] == 14


@pytest.mark.parametrize(
    ("behaviour", "status", "retryable"),
    [("error-400", 400, False), ("error-500", 502, True), ("error-503", 502, True)],
)
async def test_chat_errors_map_by_status(
    adapter: VertexAdapter, behaviour: str, status: int, retryable: bool
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call(behaviour))

    assert (caught.value.status, caught.value.retryable) == (status, retryable)


async def test_chat_429_resource_exhausted_keeps_retry_delay(adapter: VertexAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(make_call("error-429"))

    assert caught.value.status == 429
    assert caught.value.headers == {"retry-after": "17"}
    assert caught.value.message == "vertex (RESOURCE_EXHAUSTED): fake gemini error 429"


async def test_stream_error_event_raises_after_content(adapter: VertexAdapter) -> None:
    chunks: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await collect(adapter, make_call("stream-error", stream=True), chunks)

    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", REPLY[0]]
    assert caught.value.status == 502


def test_error_text_never_carries_the_access_token() -> None:
    config = vertex_config("http://127.0.0.1:9", None, access_token=STATIC_TOKEN)
    adapter = VertexAdapter(config, HttpClient(pool_size=1, pool_per_host=1,
                                               timeouts=Timeouts(1, 1, 1)))  # fmt: skip
    raw = json.dumps({"error": {"code": 500, "message": f"bad token {STATIC_TOKEN}"}}).encode()

    error = adapter.map_error(500, raw, {})

    assert STATIC_TOKEN not in error.message
    assert "***" in error.message


# The registry offers the format.


async def test_registry_vertex_provider_resolves_options_from_environment(
    http: HttpClient,
) -> None:
    spec = ProviderSpec(
        name="vertex", wire_format="vertex", base_url="https://aiplatform.googleapis.com",
        api_key_env="GOOGLE_APPLICATION_CREDENTIALS",
        options=(("project", "${VERTEX_PROJECT}"), ("location", "${VERTEX_LOCATION}")),
    )  # fmt: skip
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json", "VERTEX_PROJECT": "p",
               "VERTEX_LOCATION": "europe-west4"}  # fmt: skip

    config = resolve_config(spec, environ)
    missing = resolve_config(spec, {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"})

    assert config is not None
    assert config.option("project") == "p"
    factory = ADAPTERS["vertex"]
    assert isinstance(factory(config, http, None), VertexAdapter)  # type: ignore[arg-type]
    assert missing is None


# Anti-drift: Google's own SDK and auth library against the same fake server.

SDK_BEHAVIOURS = ["plain", "tool", "tools", "length", "safety", "blocked", "thinking", "json"]


@pytest.fixture(scope="module")
def sdk(fake: FakeVertex, key_json: str) -> Iterator[genai.Client]:
    """google-genai in Vertex mode, its service-account credentials minted by the fake."""
    creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        json.loads(key_json), scopes=[CLOUD_PLATFORM]
    )
    options = genai_types.HttpOptions(base_url=fake.base_url, api_version="v1")
    client = genai.Client(
        vertexai=True, project=PROJECT, location=LOCATION, credentials=creds, http_options=options
    )
    with client:
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
        return
    assert whole.candidates is not None
    assert all(isinstance(c.finish_reason, genai_types.FinishReason) for c in whole.candidates)


def test_sdk_token_exchange_accepted_by_fake(sdk: genai.Client, fake: FakeVertex) -> None:
    sdk.models.generate_content(model=f"plain~{uuid.uuid4().hex}", contents="hi")

    sdk_requests = [r for r in fake.token_requests if r.claims.get("iss") == CLIENT_EMAIL]
    assert sdk_requests
    assert sdk_requests[-1].header["alg"] == "RS256"


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [("error-400", "INVALID_ARGUMENT", 400), ("error-429", "RESOURCE_EXHAUSTED", 429),
     ("error-503", "UNAVAILABLE", 503)],
)  # fmt: skip
def test_sdk_accepts_fake_error_bodies(
    sdk: genai.Client, behaviour: str, status: str, code: int
) -> None:
    with pytest.raises(genai_errors.APIError) as caught:
        sdk.models.generate_content(model=behaviour, contents="hi")

    assert (caught.value.code, caught.value.status) == (code, status)


def test_sdk_accepts_fake_error_inside_stream(sdk: genai.Client) -> None:
    with pytest.raises(genai_errors.ServerError):
        list(sdk.models.generate_content_stream(model="stream-error", contents="hi"))


def test_sdk_static_token_and_401_for_unknown_token(fake: FakeVertex) -> None:
    options = genai_types.HttpOptions(base_url=fake.base_url, api_version="v1")

    def client(token: str) -> genai.Client:
        creds = oauth2_credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
        return genai.Client(vertexai=True, project=PROJECT, location=LOCATION,
                            credentials=creds, http_options=options)  # fmt: skip

    with client(STATIC_TOKEN) as good, client("ya29.unknown") as bad:
        reply = good.models.generate_content(model="plain", contents="hi")
        with pytest.raises(genai_errors.ClientError) as caught:
            bad.models.generate_content(model="plain", contents="hi")

    assert reply.text == "".join(REPLY)
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")


async def test_chat_request_matches_sdk_request_for_same_intent(
    adapter: VertexAdapter, fake: FakeVertex, sdk: genai.Client
) -> None:
    call = make_call("plain", temperature=0.5, max_tokens=20, stop=["END"],
                     metadata={"team": "search"})  # fmt: skip
    await adapter.chat(call)
    model = f"plain~{uuid.uuid4().hex}"
    config = genai_types.GenerateContentConfig(
        temperature=0.5, max_output_tokens=20, stop_sequences=["END"], labels={"team": "search"}
    )

    await asyncio.to_thread(sdk.models.generate_content, model=model, contents="hi", config=config)

    assert fake.received(call.upstream_model).body == fake.received(model).body
