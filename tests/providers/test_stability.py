"""The Stability AI adapter against a real local server speaking the Stable Image API:
the exact multipart forms sent, and the images and errors that come back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.fake_stability import STABILITY_KEY, FakeStability, Recorded, sample_image
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.multipart import encode_form
from vaultgate.providers.stability import StabilityAdapter

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_stability() -> Iterator[FakeStability]:
    """The fake Stable Image API, shared by the module."""
    server = FakeStability().start()
    yield server
    server.stop()


@pytest.fixture
async def adapter(fake_stability: FakeStability) -> AsyncIterator[StabilityAdapter]:
    """The adapter pointed at the fake, with a pooled client closed after the test."""
    http = HttpClient(
        pool_size=8, pool_per_host=8, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    config = ProviderConfig(
        name="stability", wire_format="stability", base_url=fake_stability.base_url,
        api_key=STABILITY_KEY,
    )  # fmt: skip
    yield StabilityAdapter(config, http)
    await http.aclose()


def make_call(upstream: str, *, n: int = 1, size: str = "1024x1024", **extra: Any) -> ImageCall:
    """A call whose prompt is unique, so the test finds its own requests."""
    prompt = f"a lighthouse {uuid.uuid4().hex}"
    body: JsonObject = {"model": "sd-image", "prompt": prompt, "n": n, "size": size, **extra}
    return ImageCall(
        model_id="sd-image", upstream_model=upstream, prompt=prompt, n=n, size=size,
        quality=extra.get("quality", "standard"), response_format="url", body=body,
        provider=ProviderConfig(name="stability", wire_format="stability"),
    )  # fmt: skip


def sent(server: FakeStability, call: ImageCall) -> list[Recorded]:
    """The requests the call made."""
    return [r for r in server.requests if r.form.get("prompt") == call.prompt]


async def test_images_ultra_sends_multipart_form_and_decodes_png(
    adapter: StabilityAdapter, fake_stability: FakeStability
) -> None:
    call = make_call("ultra", size="1792x1024", negative_prompt="fog", seed=42)

    result = await adapter.images(call)

    (request,) = sent(fake_stability, call)
    assert request.path == "/v2beta/stable-image/generate/ultra"
    assert request.form == {
        "prompt": call.prompt, "aspect_ratio": "16:9", "negative_prompt": "fog", "seed": "42",
    }  # fmt: skip
    assert request.headers["authorization"] == f"Bearer {STABILITY_KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [(i.png, i.media_type) for i in result.images] == [(sample_image("png"), "image/png")]
    assert result.dropped == ()


async def test_images_sd3_sends_model_and_jpeg_format(
    adapter: StabilityAdapter, fake_stability: FakeStability
) -> None:
    call = make_call("sd3.5-large", size="1024x1536", output_format="jpeg")

    result = await adapter.images(call)

    (request,) = sent(fake_stability, call)
    assert request.path == "/v2beta/stable-image/generate/sd3"
    assert request.form == {
        "prompt": call.prompt, "aspect_ratio": "2:3", "model": "sd3.5-large",
        "output_format": "jpeg",
    }  # fmt: skip
    assert result.images[0].png == sample_image("jpeg")
    assert result.images[0].media_type == "image/jpeg"


async def test_images_n_two_sends_two_requests(
    adapter: StabilityAdapter, fake_stability: FakeStability
) -> None:
    call = make_call("core", n=2)

    result = await adapter.images(call)

    assert [r.path for r in sent(fake_stability, call)] == [
        "/v2beta/stable-image/generate/core"
    ] * 2
    assert len(result.images) == 2


async def test_images_quality_and_style_dropped_with_names(
    adapter: StabilityAdapter, fake_stability: FakeStability
) -> None:
    call = make_call("core", quality="hd", style="natural", moderation="low")

    result = await adapter.images(call)

    assert sent(fake_stability, call)[0].form == {"prompt": call.prompt, "aspect_ratio": "1:1"}
    assert result.dropped == ("moderation", "quality", "style")


async def test_images_unoffered_size_is_refused_before_sending(
    adapter: StabilityAdapter, fake_stability: FakeStability
) -> None:
    call = make_call("core", size="1024x768")

    with pytest.raises(UpstreamError) as caught:
        await adapter.images(call)

    assert (caught.value.status, caught.value.param, caught.value.code) == (
        400, "size", "unsupported_size",
    )  # fmt: skip
    assert sent(fake_stability, call) == []


@pytest.mark.parametrize(
    ("upstream", "status", "code", "retryable"),
    [
        ("content-filter", 400, "content_policy_violation", False),
        ("moderation", 400, "content_policy_violation", False),
        ("error-400", 400, "upstream_rejected_request", False),
        ("error-401", 502, "upstream_error", True),
        ("error-429", 429, "upstream_rate_limited", True),
        ("error-500", 502, "upstream_error", True),
    ],
)
async def test_images_failure_is_mapped(
    adapter: StabilityAdapter, upstream: str, status: int, code: str, retryable: bool
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call(upstream))

    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.retryable is retryable


async def test_images_error_message_comes_from_errors_list(adapter: StabilityAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call("error-400"))

    assert caught.value.message == "stability: fake Stability error error-400"


async def test_images_rate_limit_keeps_retry_after(adapter: StabilityAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call("error-429"))

    assert caught.value.headers == {"retry-after": "7"}


def test_encode_form_parts_are_rfc7578() -> None:
    body, content_type = encode_form({"prompt": 'a "quoted" caf\u00e9', "seed": "1"})

    boundary = content_type.removeprefix("multipart/form-data; boundary=")
    assert (
        body
        == (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'
            'a "quoted" caf\u00e9\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="seed"\r\n\r\n1\r\n'
            f"--{boundary}--\r\n"
        ).encode()
    )
