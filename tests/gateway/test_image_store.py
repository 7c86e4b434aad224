"""The on-disk store behind ``response_format=url``: PNG, JPEG and WebP files named by
random bits and typed by extension, expired after their TTL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.sample_images import jpeg_image, png_image
from vaultgate.gateway.image_store import ImageStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only."""
    return "asyncio"


def file_names(directory: Path) -> list[str]:
    """The names of the files in a directory, sorted."""
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize(
    ("media_type", "extension"),
    [
        ("image/png", ".png"),
        ("image/jpeg", ".jpg"),
        ("image/webp", ".webp"),
        ("image/gif", ".gif"),
    ],
)
async def test_save_names_file_by_type_and_path_finds_it(
    tmp_path: Path, media_type: str, extension: str
) -> None:
    store = ImageStore(tmp_path, ttl_s=60)

    name = await store.save(b"image bytes", media_type)

    assert name.endswith(extension)
    assert len(name) == 32 + len(extension)
    path = store.path(name)
    assert path is not None
    assert path.read_bytes() == b"image bytes"
    assert store.media_type(name) == media_type


async def test_save_defaults_to_png(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, ttl_s=60)

    name = await store.save(png_image(4, 4))

    assert store.media_type(name) == "image/png"


async def test_save_unknown_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image/tiff"):
        await ImageStore(tmp_path, ttl_s=60).save(b"II*\x00", "image/tiff")


@pytest.mark.parametrize("name", ["0" * 32 + ".tif", "0" * 31 + ".png", "../" + "0" * 32])
async def test_path_refuses_names_outside_the_pattern(tmp_path: Path, name: str) -> None:
    assert ImageStore(tmp_path, ttl_s=60).path(name) is None


async def test_purge_removes_expired_images_of_every_type_only(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, ttl_s=60)
    old_png = await store.save(png_image(4, 4))
    old_jpeg = await store.save(jpeg_image(8, 8), "image/jpeg")
    fresh = await store.save(jpeg_image(8, 8), "image/jpeg")
    stranger = tmp_path / "notes.txt"
    stranger.write_text("keep")
    past = time.time() - 120
    for name in (old_png, old_jpeg):
        os.utime(tmp_path / name, (past, past))
    os.utime(stranger, (past, past))

    removed = await store.purge_expired()

    assert removed == 2
    assert file_names(tmp_path) == sorted([fresh, "notes.txt"])
    assert store.path(old_jpeg) is None
