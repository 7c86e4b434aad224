"""The usage-rollup migration fills the rollups from the log already there, on SQLite and
PostgreSQL, in the form the writer uses: later batches add to the same rollup rows."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.random_logs import (
    all_log_rows,
    all_rollups,
    brute_rollups,
    ids_outside_bounds,
    random_entries,
    stored_rollups,
)
from vaultgate.storage import migrate
from vaultgate.storage.log_rows import insert_log_rows
from vaultgate.storage.tables import request_logs

pytestmark = pytest.mark.anyio

ROLLUP_REVISION = "0006"
START = dt.datetime(2024, 12, 30, 20, tzinfo=dt.UTC)
KEYS_BY_USER: dict[int | None, list[int | None]] = {1: [1, 2, None], 2: [3], None: [None]}


def revision_before_rollups() -> str:
    """The revision just before the rollups were added."""
    script = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(ROLLUP_REVISION)
    assert script is not None
    assert isinstance(script.down_revision, str)
    return script.down_revision


async def test_rollup_migration_existing_log_is_summed_and_bounded(engine: AsyncEngine) -> None:
    entries = random_entries(random.Random(3), 800, keys_by_user=KEYS_BY_USER, start=START,
                             days=4)  # fmt: skip
    await migrate.upgrade(engine, revision_before_rollups())
    async with engine.begin() as conn:
        await conn.execute(insert(request_logs), [entry.row() for entry in entries])

    await migrate.upgrade(engine)

    rows, rollups = await all_log_rows(engine), await all_rollups(engine)
    assert len(rows) == 800
    assert stored_rollups(rollups) == brute_rollups(rows)
    assert ids_outside_bounds(rows, rollups) == []


async def test_rollup_migration_then_writer_same_hours_add_to_the_same_rows(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(4)
    before = random_entries(rng, 300, keys_by_user=KEYS_BY_USER, start=START, days=1)
    await migrate.upgrade(engine, revision_before_rollups())
    async with engine.begin() as conn:
        await conn.execute(insert(request_logs), [entry.row() for entry in before])
    await migrate.upgrade(engine)
    backfilled = len(await all_rollups(engine))

    async with engine.begin() as conn:
        await insert_log_rows(conn, [entry.row() for entry in before])

    rows, rollups = await all_log_rows(engine), await all_rollups(engine)
    assert len(rollups) == backfilled
    assert stored_rollups(rollups) == brute_rollups(rows)
    assert ids_outside_bounds(rows, rollups) == []
