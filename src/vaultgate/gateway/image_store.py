"""Generated images kept on disk for a while, so ``response_format=url`` can link to them.

Files are named by 128 random bits and an extension for their type: PNG made here, JPEG
WebP and GIF as some providers deliver them."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
MEDIA_TYPES = {extension: media_type for media_type, extension in EXTENSIONS.items()}
FILE_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp|gif)$")


class ImageStore:
    """Image files under a directory, named by 128 random bits, deleted after a TTL."""

    def __init__(self, directory: Path, *, ttl_s: int) -> None:
        self._directory = directory
        self._ttl = ttl_s

    async def save(self, data: bytes, media_type: str = "image/png") -> str:
        """Store an image of a type in ``EXTENSIONS``; return its file name."""
        extension = EXTENSIONS.get(media_type)
        if extension is None:
            raise ValueError(f"cannot store images of type {media_type}")
        name = f"{secrets.token_hex(16)}.{extension}"
        await asyncio.to_thread(self._write, name, data)
        return name

    @staticmethod
    def media_type(name: str) -> str:
        """The media type of a stored file, by its extension."""
        return MEDIA_TYPES[name.rpartition(".")[2]]

    def _write(self, name: str, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        temporary = self._directory / (name + ".part")
        temporary.write_bytes(data)
        temporary.replace(self._directory / name)

    def path(self, name: str) -> Path | None:
        """The file for ``name`` if it is a valid, unexpired image."""
        if not FILE_NAME.match(name):
            return None
        path = self._directory / name
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return None
        return path if age <= self._ttl else None

    async def purge_expired(self) -> int:
        """Delete images past their TTL; return how many."""
        return await asyncio.to_thread(self._purge)

    def _purge(self) -> int:
        if not self._directory.is_dir():
            return 0
        cutoff = time.time() - self._ttl
        removed = 0
        for path in self._directory.iterdir():
            if not FILE_NAME.match(path.name):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
