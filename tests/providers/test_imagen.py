"""Imagen image generation through the Gemini and Vertex adapters, against the fake servers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from google import genai
from google.genai import types as genai_types
from google.oauth2 import credentials as oauth2_credentials

from tests.support.fake_imagen import ENHANCED_PROMPT, RAI_REASON
from tests.support.fake_vertex import LOCATION, PROJECT, FakeVertex
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ImageCall, ProviderConfig
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.imagen import PNG_SIGNATURE
from vaultgate.providers.vertex import VertexAdapter

pytestmark = pytest.mark.anyio

GEMINI_KEY = "AIza-fake-imagen-key-0123456789"
TOKEN = "ya29.imagen-test-token"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVertex]:
    """One fake serving both the Gemini API and Vertex paths."""
    server = FakeVertex().start()
    server.static_tokens.add(TOKEN)
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """A pooled client, closed after the test."""
    client = HttpClient(
        pool_size=4, pool_per_host=4, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    yield client
    await client.aclose()


def gemini(fake: FakeVertex, http: HttpClient, **options: str) -> GeminiAdapter:
    """The Gemini API adapter, keyed."""
    config = ProviderConfig(
        name="gemini", wire_format="gemini", base_url=fake.base_url, api_key=GEMINI_KEY,
        options=tuple(options.items()),
    )  # fmt: skip
    return GeminiAdapter(config, http)


def vertex(fake: FakeVertex, http: HttpClient, **options: str) -> VertexAdapter:
    """The Vertex adapter with a static token."""
    merged = {"project": PROJECT, "location": LOCATION, "access_token": TOKEN, **options}
    config = ProviderConfig(
        name="vertex", wire_format="vertex", base_url=fake.base_url,
        options=tuple(merged.items()),
    )  # fmt: skip
    return VertexAdapter(config, http)


def image_call(behaviour: str, *, n: int = 1, size: str = "1024x1024") -> ImageCall:
    """An image call to a tagged ``imagen-<behaviour>`` upstream model."""
    upstream = f"imagen-{behaviour}~{uuid.uuid4().hex}"
    body = {"model": "imagen-test-image", "prompt": "a lighthouse", "n": n, "size": size}
    config = ProviderConfig(name="x", wire_format="gemini")
    return ImageCall(
        "imagen-test-image", upstream, "a lighthouse", n, size, "standard", "b64_json", body,
        config,
    )  # fmt: skip


async def test_images_gemini_api_posts_predict_with_key(
    fake: FakeVertex, http: HttpClient
) -> None:
    call = image_call("plain", n=2, size="1792x1024")

    result = await gemini(fake, http).images(call)

    got = fake.received(call.upstream_model)
    assert got.method == "predict"
    assert got.headers["x-goog-api-key"] == GEMINI_KEY
    assert got.body == {
        "instances": [{"prompt": "a lighthouse"}],
        "parameters": {
            "sampleCount": 2,
            "aspectRatio": "16:9",
            "includeRaiReason": True,
            "outputOptions": {"mimeType": "image/png"},
        },
    }
    assert len(result.images) == 2
    assert all(i.png is not None and i.png.startswith(PNG_SIGNATURE) for i in result.images)
    assert result.images[0].revised_prompt is None


async def test_images_vertex_posts_predict_with_bearer_and_person_generation(
    fake: FakeVertex, http: HttpClient
) -> None:
    call = image_call("plain")

    result = await vertex(fake, http, person_generation="allow_all").images(call)

    got = fake.received(call.upstream_model)
    assert got.headers["Authorization"] == f"Bearer {TOKEN}"
    assert got.body["parameters"]["personGeneration"] == "allow_all"
    assert [i.revised_prompt for i in result.images] == [ENHANCED_PROMPT]


@pytest.mark.parametrize(
    ("size", "ratio"),
    [("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1792", "9:16"),
     ("1536x1024", "4:3"), ("1024x1536", "3:4")],
)  # fmt: skip
async def test_images_openai_size_becomes_aspect_ratio(
    fake: FakeVertex, http: HttpClient, size: str, ratio: str
) -> None:
    call = image_call("plain", size=size)

    await vertex(fake, http).images(call)

    assert fake.received(call.upstream_model).body["parameters"]["aspectRatio"] == ratio


@pytest.mark.parametrize(
    ("n", "size", "param"),
    [(1, "512x512", "size"), (1, "2048x2048", "size"), (5, "1024x1024", "n")],
)
async def test_images_inexpressible_request_refused_with_400_before_sending(
    fake: FakeVertex, http: HttpClient, n: int, size: str, param: str
) -> None:
    call = image_call("plain", n=n, size=size)

    with pytest.raises(UpstreamError) as caught:
        await vertex(fake, http).images(call)

    assert (caught.value.status, caught.value.param, caught.value.retryable) == (400, param, False)
    assert not [r for r in fake.requests if r.model == call.upstream_model]


async def test_images_some_filtered_returns_fewer_images(
    fake: FakeVertex, http: HttpClient
) -> None:
    result = await gemini(fake, http).images(image_call("filtered-one", n=3))

    assert len(result.images) == 2


@pytest.mark.parametrize("use_vertex", [False, True])
async def test_images_all_filtered_fails_with_content_policy_violation(
    fake: FakeVertex, http: HttpClient, use_vertex: bool
) -> None:
    adapter = vertex(fake, http) if use_vertex else gemini(fake, http)

    with pytest.raises(UpstreamError) as caught:
        await adapter.images(image_call("filtered-all", n=2))

    assert caught.value.status == 400
    assert caught.value.code == "content_policy_violation"
    assert caught.value.retryable is False
    assert RAI_REASON in caught.value.message


async def test_images_non_png_answer_is_upstream_error(fake: FakeVertex, http: HttpClient) -> None:
    with pytest.raises(UpstreamError) as caught:
        await gemini(fake, http).images(image_call("jpeg"))

    assert caught.value.status == 502
    assert "image/jpeg" in caught.value.message


@pytest.mark.parametrize(
    ("behaviour", "status"), [("error-400", 400), ("error-429", 429), ("error-500", 502)]
)
async def test_images_errors_map_like_chat(
    fake: FakeVertex, http: HttpClient, behaviour: str, status: int
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await vertex(fake, http).images(image_call(behaviour))

    assert caught.value.status == status


async def test_images_gemini_api_refuses_allow_all_persons(
    fake: FakeVertex, http: HttpClient
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await gemini(fake, http, person_generation="allow_all").images(image_call("plain"))

    assert caught.value.status == 400
    assert "personGeneration" in caught.value.message


async def test_images_invalid_person_generation_option_is_deployment_error(
    fake: FakeVertex, http: HttpClient
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await vertex(fake, http, person_generation="everyone").images(image_call("plain"))

    assert caught.value.status == 502


async def test_images_non_imagen_model_goes_to_generate_content(
    fake: FakeVertex, http: HttpClient
) -> None:
    call = image_call("plain")
    upstream = f"gemini-9-flash~{uuid.uuid4().hex}"
    call = ImageCall(
        call.model_id, upstream, call.prompt, 1, call.size, call.quality,
        call.response_format, call.body, call.provider,
    )  # fmt: skip

    with pytest.raises(UpstreamError) as caught:
        await gemini(fake, http).images(call)

    assert fake.received(upstream).method == "generateContent"
    assert caught.value.status == 502
    assert "sent no image" in caught.value.message


# Anti-drift: google-genai's generate_images (Vertex mode; the SDK no longer offers Imagen
# on the Gemini API) must accept what the fake sends, and send what the fake accepts. The SDK
# warns once that generate_images is deprecated (Google retires the Imagen models).
SDK_DEPRECATION = "ignore:The generate_images method is deprecated"


@pytest.fixture(scope="module")
def sdk(fake: FakeVertex) -> Iterator[genai.Client]:
    """google-genai in Vertex mode with a static token, pointed at the fake."""
    creds = oauth2_credentials.Credentials(token=TOKEN)  # type: ignore[no-untyped-call]
    options = genai_types.HttpOptions(base_url=fake.base_url, api_version="v1")
    client = genai.Client(
        vertexai=True, project=PROJECT, location=LOCATION, credentials=creds, http_options=options
    )
    with client:
        yield client


@pytest.mark.filterwarnings(SDK_DEPRECATION)
@pytest.mark.parametrize(("behaviour", "images"), [("plain", 2), ("filtered-one", 1)])
def test_sdk_generate_images_accepts_fake_answer(
    sdk: genai.Client, behaviour: str, images: int
) -> None:
    config = genai_types.GenerateImagesConfig(
        number_of_images=2, aspect_ratio="16:9", include_rai_reason=True,
        output_mime_type="image/png", person_generation=genai_types.PersonGeneration.ALLOW_ADULT,
    )  # fmt: skip

    response = sdk.models.generate_images(
        model=f"imagen-{behaviour}~{uuid.uuid4().hex}", prompt="a lighthouse", config=config
    )

    generated = response.generated_images or []
    made = [g.image.image_bytes for g in generated if g.image and g.image.image_bytes]
    assert len(made) == images
    assert all(png.startswith(PNG_SIGNATURE) for png in made)
    if behaviour == "filtered-one":
        assert [g.rai_filtered_reason for g in generated if g.rai_filtered_reason] == [RAI_REASON]


@pytest.mark.filterwarnings(SDK_DEPRECATION)
async def test_images_request_matches_sdk_request(
    fake: FakeVertex, http: HttpClient, sdk: genai.Client
) -> None:
    call = image_call("plain", n=2, size="1024x1536")
    await vertex(fake, http, person_generation="dont_allow").images(call)
    model = f"imagen-plain~{uuid.uuid4().hex}"
    config = genai_types.GenerateImagesConfig(
        number_of_images=2, aspect_ratio="3:4", include_rai_reason=True,
        output_mime_type="image/png", person_generation=genai_types.PersonGeneration.DONT_ALLOW,
    )  # fmt: skip

    sdk.models.generate_images(model=model, prompt="a lighthouse", config=config)

    ours, theirs = fake.received(call.upstream_model).body, fake.received(model).body
    # The SDK sends the enum's name (DONT_ALLOW); Vertex's reference spells it dont_allow.
    theirs["parameters"]["personGeneration"] = theirs["parameters"]["personGeneration"].lower()
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)
