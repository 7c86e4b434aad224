"""The Black Forest Labs adapter against a real local server speaking the FLUX task API:
the exact submit, poll and download requests, and the images and errors that come back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.fake_bfl import BFL_KEY, FakeBfl, Recorded
from tests.support.sample_images import jpeg_image, png_image
from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers.base import ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.bfl import BflAdapter
from vaultgate.providers.http import HttpClient, Timeouts

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_bfl() -> Iterator[FakeBfl]:
    """The fake FLUX API, shared by the module."""
    server = FakeBfl().start()
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


def make_adapter(http: HttpClient, base_url: str, **config: Any) -> BflAdapter:
    """The adapter pointed at the fake, polling every millisecond."""
    settings = {"options": (("poll_interval_s", "0.001"),), **config}
    return BflAdapter(
        ProviderConfig(name="bfl", wire_format="bfl", base_url=base_url, api_key=BFL_KEY,
                       **settings),
        http,
    )  # fmt: skip


@pytest.fixture
def adapter(http: HttpClient, fake_bfl: FakeBfl) -> BflAdapter:
    """The adapter pointed at the fake."""
    return make_adapter(http, fake_bfl.base_url)


def make_call(upstream: str, *, n: int = 1, size: str = "1024x768", **extra: Any) -> ImageCall:
    """A call whose prompt is unique, so the test finds its own requests."""
    prompt = f"a lighthouse {uuid.uuid4().hex}"
    body: JsonObject = {"model": "flux-image", "prompt": prompt, "n": n, "size": size, **extra}
    return ImageCall(
        model_id="flux-image", upstream_model=upstream, prompt=prompt, n=n, size=size,
        quality=extra.get("quality", "standard"), response_format="url", body=body,
        provider=ProviderConfig(name="bfl", wire_format="bfl"),
    )  # fmt: skip


def exchanges(server: FakeBfl, call: ImageCall) -> list[Recorded]:
    """The call's submissions and every request about the tasks they made, in order."""
    ids = {key for key, task in server.tasks.items() if task.body.get("prompt") == call.prompt}

    def mine(request: Recorded) -> bool:
        if request.method == "POST":
            return bool(request.body) and request.body.get("prompt") == call.prompt
        file_id = request.path.rpartition("/")[2].partition(".")[0]
        return request.query.get("id") in ids or file_id in ids

    return [request for request in server.requests if mine(request)]


async def test_images_plain_submits_polls_and_downloads_the_jpeg(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("flux-pro-1.1", seed=7, safety_tolerance=2)

    result = await adapter.images(call)

    submit, poll, download = exchanges(fake_bfl, call)
    assert (submit.method, submit.path) == ("POST", "/v1/flux-pro-1.1")
    assert submit.body == {
        "prompt": call.prompt, "width": 1024, "height": 768, "seed": 7, "safety_tolerance": 2,
    }  # fmt: skip
    assert submit.headers["x-key"] == BFL_KEY
    assert submit.headers["content-type"] == "application/json"
    assert (poll.method, poll.path, poll.headers["x-key"]) == ("GET", "/v1/get_result", BFL_KEY)
    assert (download.method, download.query) == ("GET", {"se": "fake", "sig": "signed"})
    assert "x-key" not in download.headers
    assert [(image.png, image.media_type) for image in result.images] == [
        (jpeg_image(1024, 768), "image/jpeg")
    ]
    assert result.dropped == ()


async def test_images_png_output_format_returns_png_bytes(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("flux-pro-1.1", size="512x512", output_format="png")

    result = await adapter.images(call)

    assert exchanges(fake_bfl, call)[0].body["output_format"] == "png"
    assert result.images[0].png == png_image(512, 512)
    assert result.images[0].media_type == "image/png"


@pytest.mark.parametrize(
    ("size", "ratio"), [("1792x1024", "16:9"), ("1024x1792", "9:16"), ("1024x1024", "1:1")]
)
async def test_images_kontext_size_becomes_aspect_ratio(
    adapter: BflAdapter, fake_bfl: FakeBfl, size: str, ratio: str
) -> None:
    call = make_call("flux-kontext-pro", size=size)

    await adapter.images(call)

    assert exchanges(fake_bfl, call)[0].body == {"prompt": call.prompt, "aspect_ratio": ratio}


async def test_images_n_two_submits_two_tasks_and_returns_two_images(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("flux-pro-1.1", n=2)

    result = await adapter.images(call)

    posts = [r for r in exchanges(fake_bfl, call) if r.method == "POST"]
    assert len(posts) == 2
    assert [image.media_type for image in result.images] == ["image/jpeg", "image/jpeg"]


async def test_images_slow_task_is_polled_until_ready(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("slow-3")

    result = await adapter.images(call)

    polls = [r for r in exchanges(fake_bfl, call) if r.path == "/v1/get_result"]
    assert len(polls) == 4
    assert result.images[0].png == jpeg_image(1024, 768)


@pytest.mark.parametrize(
    ("upstream", "status", "code", "retryable"),
    [
        ("content-filter", 400, "content_policy_violation", False),
        ("request-moderated", 400, "content_policy_violation", False),
        ("task-error", 502, "upstream_error", True),
        ("task-not-found", 502, "upstream_error", True),
        ("error-400", 400, "upstream_rejected_request", False),
        ("error-401", 502, "upstream_error", True),
        ("error-429", 429, "upstream_rate_limited", True),
        ("error-500", 502, "upstream_error", True),
    ],
)
async def test_images_failure_is_mapped(
    adapter: BflAdapter, upstream: str, status: int, code: str, retryable: bool
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call(upstream))

    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.retryable is retryable
    assert BFL_KEY not in caught.value.message


async def test_images_rate_limit_keeps_retry_after(adapter: BflAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call("error-429"))

    assert caught.value.headers == {"retry-after": "7"}


async def test_images_size_beyond_flux1_limits_is_refused_before_sending(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("flux-pro-1.1", size="1792x1024")

    with pytest.raises(UpstreamError) as caught:
        await adapter.images(call)

    assert (caught.value.status, caught.value.param) == (400, "size")
    assert caught.value.retryable is False
    assert exchanges(fake_bfl, call) == []


async def test_images_quality_style_and_openai_only_params_dropped_with_names(
    adapter: BflAdapter, fake_bfl: FakeBfl
) -> None:
    call = make_call("flux-pro-1.1", quality="hd", style="vivid", background="opaque", user="u1")

    result = await adapter.images(call)

    assert exchanges(fake_bfl, call)[0].body == {
        "prompt": call.prompt, "width": 1024, "height": 768,
    }  # fmt: skip
    assert result.dropped == ("background", "quality", "style", "user")


async def test_images_webp_output_format_is_refused(adapter: BflAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call("flux-pro-1.1", output_format="webp"))

    assert (caught.value.status, caught.value.param) == (400, "output_format")


async def test_images_task_never_ready_times_out_within_total_timeout(
    http: HttpClient, fake_bfl: FakeBfl
) -> None:
    adapter = make_adapter(http, fake_bfl.base_url, total_timeout_s=0.05)

    with pytest.raises(UpstreamTimeout):
        await adapter.images(make_call("slow-100000"))


async def test_chat_is_refused(adapter: BflAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.chat(None)  # type: ignore[arg-type]

    assert caught.value.status == 400
