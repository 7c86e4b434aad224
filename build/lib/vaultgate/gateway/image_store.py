"""Generated images kept on disk for a while, so ``response_format=url`` can link to them."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path

FILE_NAME = re.compile(r"^[0-9a-f]{32}\.png$")


class ImageStore:
    """PNG files under a directory, named by 128 random bits, deleted after a TTL."""

    def __init__(self, directory: Path, *, ttl_s: int) -> None:
        self._directory = directory
        self._ttl = ttl_s

    async def save(self, png: bytes) -> str:
        """Store an image; return its file name."""
        name = secrets.token_hex(16) + ".png"
        await asyncio.to_thread(self._write, name, png)
        return name

    def _write(self, name: str, png: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        temporary = self._directory / (name + ".part")
        temporary.write_bytes(png)
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
        for path in self._directory.glob("*.png"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
