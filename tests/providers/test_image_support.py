"""The pieces image adapters share: OpenAI sizes as aspect ratios and dimensions, image
typing by signature, and fanning out one request per image."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.sample_images import jpeg_image, png_image
from vaultgate.errors import UpstreamError
from vaultgate.providers.image_sizes import (
    DimensionLimits,
    size_to_aspect_ratio,
    size_to_dimensions,
)
from vaultgate.providers.image_support import fan_out, image_from_base64, media_type_of

RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3")


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("256x256", "1:1"), ("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1792", "9:16"),
        ("1536x1024", "3:2"), ("1024x1536", "2:3"), ("1024x768", "4:3"), ("1344x768", None),
    ],
)  # fmt: skip
def test_size_to_aspect_ratio_uses_table_then_exact_ratio(size: str, ratio: str | None) -> None:
    if ratio is None:
        with pytest.raises(UpstreamError) as caught:
            size_to_aspect_ratio(size, RATIOS, provider="p")
        assert (caught.value.status, caught.value.param) == (400, "size")
        assert "1:1, 16:9" in caught.value.message
    else:
        assert size_to_aspect_ratio(size, RATIOS, provider="p") == ratio


@pytest.mark.parametrize(
    ("size", "allowed"),
    [("1024x1024", True), ("2048x2048", True), ("2048x2064", False), ("1000x1024", False),
     ("48x64", False)],
)  # fmt: skip
def test_size_to_dimensions_checks_range_step_and_pixels(size: str, allowed: bool) -> None:
    limits = DimensionLimits(low=64, high=4096, multiple=16, max_pixels=2048 * 2048)

    if allowed:
        assert size_to_dimensions(size, limits, provider="p") == tuple(
            int(side) for side in size.split("x")
        )
    else:
        with pytest.raises(UpstreamError) as caught:
            size_to_dimensions(size, limits, provider="p")
        assert caught.value.code == "unsupported_size"


def test_media_type_of_reads_signatures() -> None:
    webp = b"RIFF\x24\x00\x00\x00WEBPVP8L"

    assert media_type_of(png_image(2, 2)) == "image/png"
    assert media_type_of(jpeg_image(8, 8)) == "image/jpeg"
    assert media_type_of(webp) == "image/webp"
    assert media_type_of(b"<html>") is None


@pytest.mark.parametrize("text", ["not base64!", "PGh0bWw+", 42])
def test_image_from_base64_refuses_what_is_not_an_image(text: object) -> None:
    with pytest.raises(UpstreamError):
        image_from_base64(text, "p")


def test_fan_out_first_failure_cancels_the_others() -> None:
    cancelled: list[int] = []

    async def make(index: int) -> list[int]:
        if index == 0:
            raise UpstreamError("boom")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(index)
            raise
        return [index]

    with pytest.raises(UpstreamError):
        asyncio.run(fan_out(3, make))

    assert sorted(cancelled) == [1, 2]


def test_fan_out_keeps_order() -> None:
    async def make(index: int) -> list[int]:
        await asyncio.sleep(0.001 * (3 - index))
        return [index, index]

    assert asyncio.run(fan_out(3, make)) == [0, 0, 1, 1, 2, 2]
