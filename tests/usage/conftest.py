"""Async tests here run on asyncio through the anyio plugin, against both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage.database import create_engine


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Only asyncio: the package is built on it."""
    return "asyncio"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh migrated database (SQLite and PostgreSQL)."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()
