"""Gemini's native image output, on both endpoints, against the fake Gemini and Vertex
servers: ``/v1/images/generations`` through ``generateContent``, and image parts of chat
answers."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google import genai
from google.genai import types as genai_types

from tests.support.fake_gemini import FakeGemini
from tests.support.fake_gemini_image import FINAL_PNG, IMAGE_TEXT, IMAGE_TOKENS
from tests.support.fake_vertex import LOCATION, PROJECT, FakeVertex
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, ImageCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.gemini_image import SIZE_TO_IMAGE_CONFIG
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.vertex import VertexAdapter

pytestmark = pytest.mark.anyio

GEMINI_KEY = "AIza-fake-gemini-image-key-0123"
VERTEX_TOKEN = "ya29.gemini-image-token"
FINAL_URL = "data:image/png;base64," + base64.b64encode(FINAL_PNG).decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVertex]:
    """One fake serving both the Gemini API's paths and Vertex's."""
    server = FakeVertex()
    server.static_tokens.add(VERTEX_TOKEN)
    server.start()
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
def gemini(http: HttpClient, fake: FakeVertex) -> GeminiAdapter:
    """The Gemini API adapter on the fake."""
    config = ProviderConfig(
        name="gemini", wire_format="gemini", base_url=fake.base_url, api_key=GEMINI_KEY
    )
    return GeminiAdapter(config, http)


@pytest.fixture
def vertex(http: HttpClient, fake: FakeVertex) -> VertexAdapter:
    """The Vertex adapter on the fake, with a static token."""
    options = (("project", PROJECT), ("location", LOCATION), ("access_token", VERTEX_TOKEN))
    config = ProviderConfig(
        name="vertex", wire_format="vertex", base_url=fake.base_url, options=options
    )
    return VertexAdapter(config, http)


def image_call(behaviour: str, *, n: int = 1, size: str = "1024x1024") -> ImageCall:
    """An image request to a tagged upstream model."""
    upstream = f"{behaviour}~{uuid.uuid4().hex}"
    body = {"model": "gemini-test-hybrid", "prompt": "a red kite", "n": n, "size": size}
    config = ProviderConfig(name="gemini", wire_format="gemini")
    return ImageCall("gemini-test-hybrid", upstream, "a red kite", n, size, "standard",
                     "b64_json", body, config)  # fmt: skip


def chat_call(behaviour: str, **body: Any) -> ChatCall:
    """A chat request to a tagged upstream model."""
    upstream = f"{behaviour}~{uuid.uuid4().hex}"
    full: JsonObject = {"model": "gemini-test-hybrid", **body}
    full.setdefault("messages", [{"role": "user", "content": "draw a kite"}])
    return ChatCall("gemini-test-hybrid", upstream, full, ProviderConfig("g", "gemini"))


def requests_for(fake: FakeVertex, upstream: str) -> list[Any]:
    """Every request the fake recorded for the tagged model name."""
    return [r for r in fake.requests if r.model == upstream]


# /v1/images/generations.


@pytest.mark.parametrize(("size", "image_config"), list(SIZE_TO_IMAGE_CONFIG.items()))
async def test_images_request_is_generate_content_with_image_config(
    gemini: GeminiAdapter, fake: FakeVertex, size: str, image_config: JsonObject
) -> None:
    call = image_call("image-plain", size=size)

    await gemini.images(call)

    [got] = requests_for(fake, call.upstream_model)
    assert got.method == "generateContent"
    assert got.headers["x-goog-api-key"] == GEMINI_KEY
    assert got.body == {
        "contents": [{"role": "user", "parts": [{"text": "a red kite"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    }


async def test_images_size_table_is_documented_mapping(gemini: GeminiAdapter) -> None:
    assert SIZE_TO_IMAGE_CONFIG == {
        "1024x1024": {"aspectRatio": "1:1"},
        "1536x1024": {"aspectRatio": "3:2"},
        "1024x1536": {"aspectRatio": "2:3"},
        "1792x1024": {"aspectRatio": "16:9"},
        "1024x1792": {"aspectRatio": "9:16"},
        "2048x2048": {"aspectRatio": "1:1", "imageSize": "2K"},
        "4096x4096": {"aspectRatio": "1:1", "imageSize": "4K"},
    }


async def test_images_n_makes_one_call_per_image_and_adds_usage(
    gemini: GeminiAdapter, fake: FakeVertex
) -> None:
    call = image_call("image-plain", n=3)

    result = await gemini.images(call)

    assert len(requests_for(fake, call.upstream_model)) == 3
    assert [(i.png, i.media_type) for i in result.images] == [(FINAL_PNG, "image/png")] * 3
    assert result.usage == Usage(prompt_tokens=21, completion_tokens=3 * IMAGE_TOKENS)
    assert result.dropped == ()


async def test_images_drafts_keep_only_final_image(gemini: GeminiAdapter) -> None:
    result = await gemini.images(image_call("image-drafts"))

    assert [i.png for i in result.images] == [FINAL_PNG]


@pytest.mark.parametrize("behaviour", ["image-safety", "image-blocked"])
async def test_images_filtered_answer_is_400_content_policy_violation(
    gemini: GeminiAdapter, behaviour: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await gemini.images(image_call(behaviour))

    assert (caught.value.status, caught.value.code) == (400, "content_policy_violation")
    assert caught.value.retryable is False


async def test_images_answer_without_image_is_retryable_502(gemini: GeminiAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await gemini.images(image_call("image-none"))

    assert (caught.value.status, caught.value.retryable) == (502, True)
    assert caught.value.message == "gemini sent no image (finish reason NO_IMAGE)"


async def test_images_unknown_size_refused_before_any_call(
    gemini: GeminiAdapter, fake: FakeVertex
) -> None:
    call = image_call("image-plain", size="512x512")

    with pytest.raises(UpstreamError) as caught:
        await gemini.images(call)

    assert (caught.value.status, caught.value.param) == (400, "size")
    assert requests_for(fake, call.upstream_model) == []


async def test_images_upstream_error_maps_as_for_chat(gemini: GeminiAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await gemini.images(image_call("error-429"))

    assert caught.value.status == 429
    assert caught.value.headers == {"retry-after": "17"}


async def test_images_on_vertex_post_generate_content_with_bearer_token(
    vertex: VertexAdapter, fake: FakeVertex
) -> None:
    call = image_call("image-plain", size="1792x1024")

    result = await vertex.images(call)

    [got] = requests_for(fake, call.upstream_model)
    assert got.method == "generateContent"
    assert got.headers["Authorization"] == f"Bearer {VERTEX_TOKEN}"
    assert got.body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert [i.png for i in result.images] == [FINAL_PNG]


# /v1/chat/completions.


async def test_chat_image_parts_become_message_images_data_urls(gemini: GeminiAdapter) -> None:
    result = await gemini.chat(chat_call("image-plain"))

    assert result.body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": IMAGE_TEXT,
                "images": [{"type": "image_url", "image_url": {"url": FINAL_URL}}],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result.usage == Usage(prompt_tokens=7, completion_tokens=5 + IMAGE_TOKENS)


async def test_chat_thought_images_are_left_out(gemini: GeminiAdapter) -> None:
    result = await gemini.chat(chat_call("image-drafts"))

    images = result.body["choices"][0]["message"]["images"]
    assert images == [{"type": "image_url", "image_url": {"url": FINAL_URL}}]


async def test_stream_image_parts_become_delta_images(gemini: GeminiAdapter) -> None:
    chunks = [c async for c in gemini.chat_stream(chat_call("image-plain", stream=True))]

    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": IMAGE_TEXT},
        {"images": [{"type": "image_url", "image_url": {"url": FINAL_URL}}]},
        {},
    ]
    assert chunks[-1]["usage"]["completion_tokens"] == 5 + IMAGE_TOKENS


async def test_chat_text_answers_carry_no_images_member(gemini: GeminiAdapter) -> None:
    result = await gemini.chat(chat_call("plain"))

    assert "images" not in result.body["choices"][0]["message"]


# Anti-drift: google-genai against the same fake's image answers.


@pytest.fixture(scope="module")
def sdk(fake: FakeGemini) -> Iterator[genai.Client]:
    """google-genai (Gemini API mode) pointed at the fake."""
    options = genai_types.HttpOptions(base_url=fake.base_url, api_version="v1beta")
    with genai.Client(api_key=GEMINI_KEY, http_options=options) as client:
        yield client


def sdk_config(*modalities: str) -> genai_types.GenerateContentConfig:
    """An image request's config, as the SDK's users write it."""
    return genai_types.GenerateContentConfig(
        response_modalities=list(modalities),
        image_config=genai_types.ImageConfig(aspect_ratio="16:9", image_size="2K"),
    )


@pytest.mark.parametrize("modalities", [("IMAGE",), ("TEXT", "IMAGE")])
@pytest.mark.parametrize("behaviour", ["image-plain", "image-drafts"])
def test_sdk_reads_fake_image_answers_whole_and_streamed(
    sdk: genai.Client, behaviour: str, modalities: tuple[str, ...]
) -> None:
    model = f"{behaviour}~{uuid.uuid4().hex}"

    whole = sdk.models.generate_content(model=model, contents="a kite",
                                        config=sdk_config(*modalities))  # fmt: skip
    events = list(sdk.models.generate_content_stream(model=model, contents="a kite",
                                                     config=sdk_config(*modalities)))  # fmt: skip

    final = [p for p in whole.parts or () if p.inline_data and not p.thought]
    assert [(p.inline_data.data, p.inline_data.mime_type) for p in final if p.inline_data] == [
        (FINAL_PNG, "image/png")
    ]
    assert whole.usage_metadata is not None
    assert whole.usage_metadata.candidates_tokens_details is not None
    streamed = [p.inline_data.data for e in events for p in e.parts or () if p.inline_data]
    assert FINAL_PNG in streamed


@pytest.mark.parametrize("behaviour", ["image-safety", "image-blocked", "image-none"])
def test_sdk_reads_fake_answers_without_image(sdk: genai.Client, behaviour: str) -> None:
    reply = sdk.models.generate_content(model=f"{behaviour}~{uuid.uuid4().hex}",
                                        contents="a kite", config=sdk_config("IMAGE"))  # fmt: skip

    assert not [p for p in reply.parts or () if p.inline_data]


def test_sdk_invalid_image_config_gets_400(sdk: genai.Client) -> None:
    config = genai_types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=genai_types.ImageConfig(aspect_ratio="7:3")
    )

    with pytest.raises(genai.errors.ClientError) as caught:
        sdk.models.generate_content(model="image-plain", contents="a kite", config=config)

    assert caught.value.code == 400


async def test_images_request_matches_sdk_request_for_same_intent(
    gemini: GeminiAdapter, fake: FakeVertex, sdk: genai.Client
) -> None:
    call = image_call("image-plain", size="2048x2048")
    await gemini.images(call)
    model = f"image-plain~{uuid.uuid4().hex}"
    config = genai_types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=genai_types.ImageConfig(aspect_ratio="1:1", image_size="2K"),
    )

    sdk.models.generate_content(model=model, contents="a red kite", config=config)

    [ours], [theirs] = requests_for(fake, call.upstream_model), requests_for(fake, model)
    assert ours.body == theirs.body
