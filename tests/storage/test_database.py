"""The engine factory and the UTC timestamp column type."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage.database import create_engine, is_sqlite
from vaultgate.storage.tables import UtcDateTime

pytestmark = pytest.mark.anyio


async def test_create_engine_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.connect() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
    finally:
        await engine.dispose()

    assert journal == "wal"
    assert foreign_keys == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///x.db", True),
        ("sqlite:///x.db", True),
        ("postgresql+asyncpg://u@h/db", False),
    ],
)
def test_is_sqlite_by_url_scheme(url: str, expected: bool) -> None:
    assert is_sqlite(url) is expected


def test_utc_datetime_naive_value_is_rejected() -> None:
    column = UtcDateTime()

    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(dt.datetime(2024, 1, 1), dialect=None)  # type: ignore[arg-type]


def test_utc_datetime_other_zone_is_converted_to_utc_both_ways() -> None:
    column = UtcDateTime()
    plus_two = dt.timezone(dt.timedelta(hours=2))
    local = dt.datetime(2024, 1, 1, 12, tzinfo=plus_two)

    stored = column.process_bind_param(local, dialect=None)  # type: ignore[arg-type]
    naive_read = column.process_result_value(
        dt.datetime(2024, 1, 1, 10),
        dialect=None,  # type: ignore[arg-type]
    )

    assert stored == dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    assert stored is not None
    assert stored.tzinfo == dt.UTC
    assert naive_read == dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    assert column.process_result_value(None, dialect=None) is None  # type: ignore[arg-type]
