"""Async tests here run on asyncio through the anyio plugin."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Only asyncio: the package is built on it."""
    return "asyncio"
