"""Images through the OpenAI-compatible adapter, dialect by dialect (OpenAI's model
families, Recraft, Together), against a real local server as strict as each reference;
and the official ``openai`` SDK against the same server."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_openai_images import GPT_USAGE, IMAGES_KEY, FakeImagesApi, Recorded
from tests.support.sample_images import jpeg_image, png_image
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ImageCall, JsonObject, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_images() -> Iterator[FakeImagesApi]:
    """The fake image endpoints, shared by the module."""
    server = FakeImagesApi().start()
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
    http: HttpClient, server: FakeImagesApi, dialect: str | None = None
) -> OpenAICompatibleAdapter:
    """The adapter at the dialect's path of the fake, with ``options.images`` when given."""
    prefix = f"/{dialect}" if dialect else ""
    options = (("images", dialect),) if dialect else ()
    config = ProviderConfig(
        name=dialect or "openai", wire_format="openai", api_key=IMAGES_KEY,
        base_url=f"{server.base_url}{prefix}/v1", options=options,
    )  # fmt: skip
    return OpenAICompatibleAdapter(config, http)


def make_call(upstream: str, *, n: int = 1, size: str | None = None, **extra: Any) -> ImageCall:
    """A call whose prompt is unique; ``size`` in the body only when given."""
    prompt = f"a lighthouse {uuid.uuid4().hex}"
    body: JsonObject = {"model": "img-image", "prompt": prompt, **extra}
    if n != 1:
        body["n"] = n
    if size is not None:
        body["size"] = size
    return ImageCall(
        model_id="img-image", upstream_model=upstream, prompt=prompt, n=n,
        size=size or "1024x1024", quality=extra.get("quality", "standard"),
        response_format=extra.get("response_format", "url"), body=body,
        provider=ProviderConfig(name="x", wire_format="openai"),
    )  # fmt: skip


def sent(server: FakeImagesApi, call: ImageCall) -> list[Recorded]:
    """The requests the call made."""
    return [r for r in server.requests if r.body.get("prompt") == call.prompt]


# OpenAI's GPT image models.


async def test_gpt_image_answer_is_decoded_with_usage_and_relayed_fields(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images)
    call = make_call(
        "gpt-image-1-mini", size="1536x1024", quality="hd", response_format="url",
        style="vivid", background="transparent",
    )  # fmt: skip

    result = await adapter.images(call)

    (request,) = sent(fake_images, call)
    assert request.path == "/v1/images/generations"
    assert request.body == {
        "model": "gpt-image-1-mini", "prompt": call.prompt, "size": "1536x1024",
        "quality": "high", "background": "transparent",
    }  # fmt: skip
    assert request.headers["authorization"] == f"Bearer {IMAGES_KEY}"
    assert [(i.png, i.media_type) for i in result.images] == [(png_image(8, 8), "image/png")]
    assert result.usage == Usage(prompt_tokens=12, completion_tokens=272)
    assert result.extra == {
        "background": "transparent", "output_format": "png", "quality": "high",
        "size": "1536x1024", "usage": GPT_USAGE,
    }  # fmt: skip
    assert result.dropped == ("style",)


async def test_gpt_image_standard_quality_dropped_and_jpeg_typed(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images)
    call = make_call("gpt-image-1-mini", n=2, quality="standard", output_format="jpeg")

    result = await adapter.images(call)

    (request,) = sent(fake_images, call)
    assert request.body == {
        "model": "gpt-image-1-mini", "prompt": call.prompt, "n": 2, "output_format": "jpeg",
    }  # fmt: skip
    assert [i.media_type for i in result.images] == ["image/jpeg", "image/jpeg"]
    assert result.images[0].png == jpeg_image(8, 8)
    assert result.dropped == ("quality",)


async def test_gpt_image_1_unoffered_size_is_refused_before_sending(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    call = make_call("gpt-image-1-mini", size="1792x1024")

    with pytest.raises(UpstreamError) as caught:
        await make_adapter(http, fake_images).images(call)

    assert (caught.value.status, caught.value.param) == (400, "size")
    assert sent(fake_images, call) == []


# DALL-E.


async def test_dall_e_3_n_two_fans_out_one_image_per_request(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    call = make_call(
        "dall-e-3", n=2, size="1792x1024", quality="hd", style="natural", background="opaque",
    )  # fmt: skip

    result = await make_adapter(http, fake_images).images(call)

    bodies = [r.body for r in sent(fake_images, call)]
    expected = {
        "model": "dall-e-3", "prompt": call.prompt, "n": 1, "size": "1792x1024",
        "quality": "hd", "style": "natural",
    }  # fmt: skip
    assert bodies == [expected, expected]
    assert [i.url for i in result.images] == ["https://oaidalle.example.invalid/img.png"] * 2
    assert result.images[0].revised_prompt == "revised: " + call.prompt
    assert result.dropped == ("background",)


@pytest.mark.parametrize(
    ("upstream", "extra", "param"),
    [
        ("dall-e-3", {"quality": "low"}, "quality"),
        ("dall-e-3", {"style": "cinematic"}, "style"),
        ("dall-e-2", {"quality": "hd"}, "quality"),
        ("dall-e-2", {"size": "1792x1024"}, "size"),
    ],
)
async def test_dall_e_unoffered_value_is_refused(
    http: HttpClient, fake_images: FakeImagesApi, upstream: str, extra: JsonObject, param: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make_adapter(http, fake_images).images(make_call(upstream, **extra))

    assert (caught.value.status, caught.value.param, caught.value.retryable) == (
        400, param, False,
    )  # fmt: skip


async def test_dall_e_2_b64_answer_is_relayed_as_base64(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    call = make_call("dall-e-2", size="256x256", response_format="b64_json", style="vivid")

    result = await make_adapter(http, fake_images).images(call)

    assert sent(fake_images, call)[0].body["response_format"] == "b64_json"
    assert result.images[0].b64_json == base64.b64encode(png_image(8, 8)).decode()
    assert result.dropped == ("style",)


async def test_upstream_error_is_mapped(http: HttpClient, fake_images: FakeImagesApi) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make_adapter(http, fake_images).images(make_call("error-500"))

    assert (caught.value.status, caught.value.retryable) == (502, True)


# Recraft.


async def test_recraft_size_mapped_n_split_and_own_style_sent(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images, "recraft")
    call = make_call(
        "recraftv3", n=8, size="1792x1024", style="digital_illustration",
        substyle="hand_drawn", quality="hd",
    )  # fmt: skip

    result = await adapter.images(call)

    requests = sent(fake_images, call)
    assert {r.path for r in requests} == {"/recraft/v1/images/generations"}
    base = {
        "model": "recraftv3", "prompt": call.prompt, "size": "1820x1024",
        "style": "digital_illustration", "substyle": "hand_drawn",
    }  # fmt: skip
    assert sorted((r.body for r in requests), key=lambda b: -b["n"]) == [
        {**base, "n": 6}, {**base, "n": 2},
    ]  # fmt: skip
    assert len(result.images) == 8
    assert result.images[0].url == "https://img.recraft.example.invalid/img-1.png"
    assert result.dropped == ("quality",)


async def test_recraft_openai_style_and_gpt_params_dropped(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images, "recraft")
    call = make_call("recraftv3", style="vivid", output_format="png", quality="standard")

    result = await adapter.images(call)

    assert sent(fake_images, call)[0].body == {"model": "recraftv3", "prompt": call.prompt}
    assert result.dropped == ("output_format", "style")


# Together.


async def test_together_size_becomes_width_height_and_base64_is_decoded(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images, "together")
    call = make_call(
        "black-forest-labs/FLUX.1-schnell", n=5, size="1024x1792", response_format="url",
        quality="high", steps=4,
    )  # fmt: skip

    result = await adapter.images(call)

    requests = sent(fake_images, call)
    base = {
        "model": "black-forest-labs/FLUX.1-schnell", "prompt": call.prompt, "width": 1024,
        "height": 1792, "response_format": "base64", "steps": 4,
    }  # fmt: skip
    assert sorted((r.body for r in requests), key=lambda b: -b["n"]) == [
        {**base, "n": 4}, {**base, "n": 1},
    ]  # fmt: skip
    assert [i.media_type for i in result.images] == ["image/jpeg"] * 5
    assert result.images[0].png == jpeg_image(16, 16)
    assert result.dropped == ("quality",)


async def test_together_png_output_format_is_kept(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    adapter = make_adapter(http, fake_images, "together")
    call = make_call("black-forest-labs/FLUX.1-schnell", output_format="png")

    result = await adapter.images(call)

    assert sent(fake_images, call)[0].body["output_format"] == "png"
    assert result.images[0].png == png_image(16, 16)


async def test_unknown_dialect_option_is_an_upstream_error(
    http: HttpClient, fake_images: FakeImagesApi
) -> None:
    config = ProviderConfig(
        name="odd", wire_format="openai", base_url=f"{fake_images.base_url}/v1",
        options=(("images", "nonesuch"),),
    )  # fmt: skip

    with pytest.raises(UpstreamError) as caught:
        await OpenAICompatibleAdapter(config, http).images(make_call("dall-e-2"))

    assert "nonesuch" in caught.value.message


# The official SDK against the same fake.


@pytest.fixture
def sdk(fake_images: FakeImagesApi) -> Iterator[openai.OpenAI]:
    """The OpenAI SDK pointed at the fake."""
    client = openai.OpenAI(base_url=f"{fake_images.base_url}/v1", api_key=IMAGES_KEY)
    with client:
        yield client


def test_sdk_accepts_gpt_image_answer_with_usage(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(model="gpt-image-1-mini", prompt="fox", quality="low")

    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 272)
    assert (result.output_format, result.quality, result.size) == ("png", "low", "1024x1024")
    assert result.data is not None
    assert base64.b64decode(result.data[0].b64_json or "") == png_image(8, 8)


def test_sdk_accepts_dall_e_3_answer_and_error(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(model="dall-e-3", prompt="fox", style="vivid")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="dall-e-3", prompt="fox", n=2)

    assert result.data is not None
    assert result.data[0].revised_prompt == "revised: fox"
    assert caught.value.param == "n"
