"""The Replicate adapter against a real local server speaking the predictions API, and the
official ``replicate`` SDK against the same server, so the fake cannot drift from the
prediction objects the SDK accepts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import replicate
from replicate.exceptions import ReplicateError

from tests.support.fake_replicate import REPLICATE_TOKEN, FakeReplicate, Recorded
from tests.support.sample_images import jpeg_image, png_image
from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers.base import ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.replicate import ReplicateAdapter

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_replicate() -> Iterator[FakeReplicate]:
    """The fake predictions API, shared by the module."""
    server = FakeReplicate().start()
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


def make_adapter(http: HttpClient, base_url: str, **config: Any) -> ReplicateAdapter:
    """The adapter pointed at the fake, polling every millisecond."""
    options = (("poll_interval_s", "0.001"), *config.pop("options", ()))
    return ReplicateAdapter(
        ProviderConfig(name="replicate", wire_format="replicate", base_url=base_url,
                       api_key=REPLICATE_TOKEN, options=options, **config),
        http,
    )  # fmt: skip


@pytest.fixture
def adapter(http: HttpClient, fake_replicate: FakeReplicate) -> ReplicateAdapter:
    """The adapter pointed at the fake."""
    return make_adapter(http, fake_replicate.base_url)


def make_call(name: str, *, n: int = 1, size: str = "1024x1024", **extra: Any) -> ImageCall:
    """A call for ``black-forest-labs/<name>`` whose prompt is unique."""
    prompt = f"a lighthouse {uuid.uuid4().hex}"
    body: JsonObject = {"model": "flux-image", "prompt": prompt, "n": n, "size": size, **extra}
    return ImageCall(
        model_id="flux-image", upstream_model=f"black-forest-labs/{name}", prompt=prompt, n=n,
        size=size, quality=extra.get("quality", "standard"), response_format="url",
        body=body, provider=ProviderConfig(name="replicate", wire_format="replicate"),
    )  # fmt: skip


def sent(server: FakeReplicate, call: ImageCall) -> list[Recorded]:
    """The call's creations and every request about the predictions they made, in order."""
    ids = {key for key, p in server.predictions.items() if p.input.get("prompt") == call.prompt}

    def mine(request: Recorded) -> bool:
        if request.method == "POST":
            return (request.body or {}).get("input", {}).get("prompt") == call.prompt
        return request.path.rpartition("/")[2].partition(".")[0] in ids

    return [request for request in server.requests if mine(request)]


async def test_images_plain_creates_prediction_and_downloads_output(
    adapter: ReplicateAdapter, fake_replicate: FakeReplicate
) -> None:
    call = make_call("flux-schnell", size="1792x1024", seed=3, output_format="jpeg")

    result = await adapter.images(call)

    create, download = sent(fake_replicate, call)
    assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.body == {
        "input": {"prompt": call.prompt, "aspect_ratio": "16:9", "output_format": "jpg",
                  "seed": 3},
    }  # fmt: skip
    assert create.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}"
    assert create.headers["prefer"] == "wait"
    assert (download.method, "authorization" in download.headers) == ("GET", False)
    assert [(i.png, i.media_type) for i in result.images] == [(jpeg_image(16, 16), "image/jpeg")]


async def test_images_list_and_data_uri_outputs_are_read(adapter: ReplicateAdapter) -> None:
    listed = await adapter.images(make_call("list"))
    inline = await adapter.images(make_call("data-uri"))

    assert [i.png for i in listed.images] == [png_image(32, 24)]
    assert [i.png for i in inline.images] == [png_image(32, 24)]


async def test_images_slow_prediction_is_polled_at_its_get_url(
    adapter: ReplicateAdapter, fake_replicate: FakeReplicate
) -> None:
    call = make_call("slow-3")

    result = await adapter.images(call)

    polls = [r for r in sent(fake_replicate, call) if r.path.startswith("/v1/predictions/")]
    assert len(polls) == 4
    assert all(r.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}" for r in polls)
    assert len(result.images) == 1


async def test_images_n_two_creates_two_predictions(
    adapter: ReplicateAdapter, fake_replicate: FakeReplicate
) -> None:
    call = make_call("flux-schnell", n=2)

    result = await adapter.images(call)

    assert len([r for r in sent(fake_replicate, call) if r.method == "POST"]) == 2
    assert len(result.images) == 2


async def test_images_wait_option_sets_prefer_seconds(
    http: HttpClient, fake_replicate: FakeReplicate
) -> None:
    adapter = make_adapter(http, fake_replicate.base_url, options=(("wait_s", "15"),))
    call = make_call("flux-schnell")

    await adapter.images(call)

    assert sent(fake_replicate, call)[0].headers["prefer"] == "wait=15"


async def test_images_quality_and_style_dropped_with_names(
    adapter: ReplicateAdapter, fake_replicate: FakeReplicate
) -> None:
    call = make_call("flux-schnell", quality="high", style="vivid", output_compression=50)

    result = await adapter.images(call)

    create = sent(fake_replicate, call)[0]
    assert create.body == {"input": {"prompt": call.prompt, "aspect_ratio": "1:1"}}
    assert result.dropped == ("output_compression", "quality", "style")


@pytest.mark.parametrize(
    ("name", "status", "code", "retryable"),
    [
        ("failed", 502, "upstream_prediction_failed", False),
        ("canceled", 502, "upstream_prediction_failed", True),
        ("error-400", 400, "upstream_rejected_request", False),
        ("error-401", 502, "upstream_error", True),
        ("error-422", 400, "upstream_rejected_request", False),
        ("error-429", 429, "upstream_rate_limited", True),
        ("error-500", 502, "upstream_error", True),
    ],
)
async def test_images_failure_is_mapped(
    adapter: ReplicateAdapter, name: str, status: int, code: str, retryable: bool
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call(name))

    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.retryable is retryable


async def test_images_unoffered_size_is_refused(adapter: ReplicateAdapter) -> None:
    with pytest.raises(UpstreamError) as caught:
        await adapter.images(make_call("flux-schnell", size="1000x300"))

    assert (caught.value.status, caught.value.param) == (400, "size")


async def test_images_prediction_never_done_times_out(
    http: HttpClient, fake_replicate: FakeReplicate
) -> None:
    adapter = make_adapter(http, fake_replicate.base_url, total_timeout_s=0.05)

    with pytest.raises(UpstreamTimeout):
        await adapter.images(make_call("slow-100000"))


# The official SDK against the same fake.


@pytest.fixture
def sdk(fake_replicate: FakeReplicate) -> Iterator[replicate.Client]:
    """The SDK pointed at the fake, polling every millisecond."""
    client = replicate.Client(api_token=REPLICATE_TOKEN, base_url=fake_replicate.base_url)
    client.poll_interval = 0.001
    yield client
    # The SDK offers no close(); its pooled httpx client is closed here.
    client._client.close()


def test_sdk_accepts_finished_prediction(sdk: replicate.Client) -> None:
    prediction = sdk.models.predictions.create(
        model="black-forest-labs/flux-schnell", input={"prompt": "fox"}, wait=True
    )

    assert prediction.status == "succeeded"
    assert isinstance(prediction.output, str)
    assert prediction.output.endswith(f"/delivery/{prediction.id}.png")
    assert prediction.urls is not None


def test_sdk_waits_for_slow_prediction(sdk: replicate.Client) -> None:
    prediction = sdk.models.predictions.create(
        model="black-forest-labs/slow-2", input={"prompt": "fox"}
    )
    assert prediction.status == "starting"

    prediction.wait()

    assert prediction.status == "succeeded"
    assert prediction.completed_at is not None


def test_sdk_reads_failed_prediction_and_problem_errors(sdk: replicate.Client) -> None:
    failed = sdk.models.predictions.create(
        model="black-forest-labs/failed", input={"prompt": "fox"}, wait=True
    )
    with pytest.raises(ReplicateError) as caught:
        sdk.models.predictions.create(
            model="black-forest-labs/flux-schnell", input={"prompt": "fox", "steps": 4}
        )

    assert (failed.status, failed.error) == ("failed", "the model raised an error")
    assert caught.value.status == 422
    assert caught.value.detail == "input: unknown fields ['steps']"
