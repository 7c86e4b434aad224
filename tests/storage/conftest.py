"""Async tests here run on asyncio through the anyio plugin; empty databases of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.server import create_postgres_database, drop_postgres_database
from vaultgate.storage.database import create_engine


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Only asyncio: the package is built on it."""
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool
) -> Iterator[str]:
    """A database of each kind with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if not postgres_ok:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the empty database."""
    engine = create_engine(empty_database_url)
    yield engine
    await engine.dispose()
