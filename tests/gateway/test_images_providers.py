"""Image providers through the whole gateway with the official SDK: a polling provider
(Black Forest Labs' task API) whose downloaded JPEGs the gateway stores and serves, billed by
size and quality; and a GPT image model whose token usage is relayed and logged."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import start_with_config, wait_for_log_rows
from tests.support.fake_bfl import BFL_KEY, FakeBfl
from tests.support.fake_openai_images import GPT_USAGE, IMAGES_KEY, FakeImagesApi
from tests.support.sample_images import jpeg_image, png_image

FLUX_PRICE = 40_000
FLUX_HD_PRICE = 90_000
KONTEXT_PRICE = 60_000


def images_config(bfl_url: str, images_url: str) -> str:
    """An operator config with a BFL provider polling every millisecond, and OpenAI."""
    return f"""
[providers.fake-bfl]
format = "bfl"
base_url = "{bfl_url}"
api_key_env = "FAKE_BFL_KEY"
options = {{ poll_interval_s = "0.001" }}

[providers.fake-openai]
format = "openai"
base_url = "{images_url}/v1"
api_key_env = "FAKE_IMAGES_KEY"

[[models]]
id = "fake-flux-image"
provider = "fake-bfl"
upstream = "slow-2"
[models.pricing.images]
"1024x768" = "0.04"
"1024x1024" = "0.04"
"1024x1024/hd" = "0.09"

[[models]]
id = "fake-kontext-image"
provider = "fake-bfl"
upstream = "flux-kontext-pro"
[models.pricing.images]
"1792x1024" = "0.06"

[[models]]
id = "fake-moderated-image"
provider = "fake-bfl"
upstream = "content-filter"
[models.pricing.images]
"1024x1024" = "0.04"

[[models]]
id = "fake-gpt-image"
provider = "fake-openai"
upstream = "gpt-image-1-mini"
[models.pricing.images]
"1024x1024" = "0.036"
"1024x1024/low" = "0.005"
"""


@pytest.fixture(scope="module")
def fake_bfl() -> Iterator[FakeBfl]:
    """The fake FLUX API."""
    server = FakeBfl().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_images() -> Iterator[FakeImagesApi]:
    """The fake OpenAI images endpoint."""
    server = FakeImagesApi().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_bfl: FakeBfl, fake_images: FakeImagesApi
) -> Iterator[Gateway]:
    """VaultGate routing fake-* image models to the fakes."""
    tmp_path: Path = tmp_path_factory.mktemp("images-gateway")
    env = {"FAKE_BFL_KEY": BFL_KEY, "FAKE_IMAGES_KEY": IMAGES_KEY}
    running = start_with_config(
        tmp_path, images_config(fake_bfl.base_url, fake_images.base_url), extra_env=env
    )
    yield running
    running.server.stop()


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    """The openai SDK pointed at the gateway, without client-side retries."""
    with openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key, max_retries=0) as sdk:
        yield sdk


def test_polling_provider_url_serves_downloaded_jpeg_billed_by_size(
    client: openai.OpenAI, gateway: Gateway, fake_bfl: FakeBfl
) -> None:
    prompt = f"a lighthouse {uuid.uuid4().hex}"

    raw = client.images.with_raw_response.generate(
        model="fake-flux-image", prompt=prompt, size="1024x768"
    )

    result = raw.parse()
    assert result.data is not None
    url = result.data[0].url
    assert url is not None
    assert url.endswith(".jpg")
    download = httpx.get(url, timeout=10)
    assert download.headers["content-type"] == "image/jpeg"
    assert download.content == jpeg_image(1024, 768)
    task_ids = [k for k, task in fake_bfl.tasks.items() if task.body["prompt"] == prompt]
    assert [fake_bfl.tasks[k].polls for k in task_ids] == [3]
    row = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    logged = row[raw.headers["x-request-id"]]
    assert (logged["status"], logged["images"], logged["provider"]) == (200, 1, "fake-bfl")
    assert logged["cost_micros"] == logged["charged_micros"] == FLUX_PRICE


def test_polling_provider_b64_n_two_billed_per_image(
    client: openai.OpenAI, gateway: Gateway, fake_bfl: FakeBfl
) -> None:
    prompt = f"two foxes {uuid.uuid4().hex}"

    raw = client.images.with_raw_response.generate(
        model="fake-kontext-image", prompt=prompt, size="1792x1024", n=2,
        response_format="b64_json",
    )  # fmt: skip

    result = raw.parse()
    assert result.data is not None
    images = [base64.b64decode(item.b64_json or "") for item in result.data]
    assert images == [jpeg_image(112, 64)] * 2
    bodies = [task.body for task in fake_bfl.tasks.values() if task.body["prompt"] == prompt]
    assert bodies == [{"prompt": prompt, "aspect_ratio": "16:9"}] * 2
    logged = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    assert logged[raw.headers["x-request-id"]]["cost_micros"] == 2 * KONTEXT_PRICE


def test_quality_without_provider_knob_billed_at_its_price_and_warned(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    raw = client.images.with_raw_response.generate(
        model="fake-flux-image", prompt="a lighthouse", size="1024x1024", quality="hd",
        style="vivid",
    )  # fmt: skip

    assert raw.headers["x-vaultgate-warning"] == "dropped unsupported parameters: quality, style"
    logged = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    assert logged[raw.headers["x-request-id"]]["cost_micros"] == FLUX_HD_PRICE


def test_moderated_task_is_content_policy_400_and_free(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="fake-moderated-image", prompt="something")

    assert caught.value.code == "content_policy_violation"
    request_id = caught.value.response.headers["x-request-id"]
    logged = wait_for_log_rows(gateway.database_url, [request_id])[request_id]
    assert (logged["status"], logged["charged_micros"]) == (400, 0)


def test_gpt_image_usage_relayed_and_logged(client: openai.OpenAI, gateway: Gateway) -> None:
    raw = client.images.with_raw_response.generate(
        model="fake-gpt-image", prompt="a lighthouse", quality="low", response_format="url"
    )

    result = raw.parse()
    assert result.usage is not None
    assert result.usage.model_dump(exclude_none=True) == GPT_USAGE
    assert result.data is not None
    assert result.data[0].url is not None
    assert httpx.get(result.data[0].url, timeout=10).content == png_image(8, 8)
    logged = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    row = logged[raw.headers["x-request-id"]]
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (12, 272, 5_000)
