"""Image generation through the official SDK: URLs that serve real PNGs, and base64."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import assert_openai_error, png_size


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("offline-painter-image", "256x256"),
        ("offline-painter-image", "1792x1024"),
        ("offline-omni-hybrid", "512x512"),
    ],
)
def test_images_url_format_serves_png_of_requested_size(
    client: openai.OpenAI, model: str, size: str
) -> None:
    result = client.images.generate(model=model, prompt="a lighthouse", size=size)

    assert result.data is not None
    assert len(result.data) == 1
    url = result.data[0].url
    assert url is not None
    assert url.startswith("http://127.0.0.1:")
    download = httpx.get(url, timeout=10)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    width, height = (int(part) for part in size.split("x"))
    assert png_size(download.content) == (width, height)


def test_images_b64_json_returns_distinct_pngs(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="offline-painter-image",
        prompt="two foxes",
        size="256x256",
        n=2,
        response_format="b64_json",
    )

    assert result.data is not None
    pngs = [base64.b64decode(item.b64_json or "") for item in result.data]
    assert [png_size(png) for png in pngs] == [(256, 256), (256, 256)]
    assert pngs[0] != pngs[1]
    assert all(item.url is None for item in result.data)
    assert result.data[0].revised_prompt == "two foxes"


def test_images_upstream_provider_results_are_relayed(client: openai.OpenAI) -> None:
    linked = client.images.generate(model="fake-dalle-image", prompt="x", size="256x256", n=2)
    inline = client.images.generate(
        model="fake-dalle-image", prompt="x", response_format="b64_json"
    )

    assert linked.data is not None
    assert [item.url for item in linked.data] == ["https://images.example.invalid/fake.png"] * 2
    assert inline.data is not None
    assert png_size(base64.b64decode(inline.data[0].b64_json or "")) == (1, 1)


def test_images_unoffered_size_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="offline-painter-image", prompt="x", size="300x300")

    assert caught.value.param == "size"
    assert "256x256" in caught.value.message


def test_images_unknown_file_name_is_openai_shaped_404(shared: Gateway) -> None:
    for name in ("0" * 32 + ".png", "nothing", "..%2F..%2Fvaultgate.db"):
        response = httpx.get(f"{shared.base_url}/v1/images/files/{name}", timeout=10)
        assert assert_openai_error(response, 404)["code"] in ("not_found", "unknown_path")
