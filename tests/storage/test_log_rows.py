"""Log rows and their usage rollups, written together: on SQLite and PostgreSQL, after
concurrent settlement batches, the rollups equal sums over the log and bound its ids."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.random_logs import (
    all_log_rows,
    all_rollups,
    brute_rollups,
    disordered_batches,
    ids_outside_bounds,
    make_users,
    random_entries,
    stored_rollups,
    write_concurrently,
)
from vaultgate.billing.settlement import FinishedRequest, RequestLogEntry
from vaultgate.storage.database import create_engine
from vaultgate.storage.log_rows import hour_of, insert_log_rows, rollup_rows

pytestmark = pytest.mark.anyio

START = dt.datetime(2025, 3, 1, 22, 30, tzinfo=dt.UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh migrated database (SQLite and PostgreSQL)."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def entry(when: dt.datetime, **fields: object) -> RequestLogEntry:
    """A request of user 1 with key 5 at ``when``."""
    values: dict[str, object] = {
        "created_at": when, "request_id": f"req-{when.timestamp()}-{fields}", "endpoint": "chat",
        "status": 200, "latency_ms": 3, "key_id": 5, "user_id": 1, "model": "m",
        "provider": "p", "prompt_tokens": 10, "completion_tokens": 4, "cost_micros": 30,
        "charged_micros": 25, **fields,
    }  # fmt: skip
    return RequestLogEntry(**values)  # type: ignore[arg-type]


def test_hour_of_other_time_zone_is_the_utc_hour() -> None:
    moment = dt.datetime(2025, 3, 2, 1, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    assert hour_of(moment) == dt.datetime(2025, 3, 1, 23, tzinfo=dt.UTC)


def test_rollup_rows_same_hour_and_key_are_summed_once() -> None:
    rows = [entry(START).row(), entry(START + dt.timedelta(minutes=29)).row()]

    (summed,) = rollup_rows(rows, first_id=7, last_id=8)

    assert summed == {
        "user_id": 1, "hour": START.replace(minute=0), "key_id": 5, "model": "m",
        "provider": "p", "status_class": 2, "requests": 2, "prompt_tokens": 20,
        "completion_tokens": 8, "cost_micros": 60, "charged_micros": 50, "min_log_id": 7,
        "max_log_id": 8,
    }  # fmt: skip


def test_rollup_rows_missing_key_model_provider_become_zero_and_empty() -> None:
    rows = [entry(START, key_id=None, model=None, provider=None, status=502).row()]

    (summed,) = rollup_rows(rows, first_id=1, last_id=1)

    assert (summed["key_id"], summed["model"], summed["provider"]) == (0, "", "")
    assert summed["status_class"] == 5


def test_rollup_rows_without_user_are_left_out() -> None:
    assert rollup_rows([entry(START, user_id=None).row()], first_id=1, last_id=1) == []


async def test_insert_log_rows_second_batch_same_hour_adds_and_widens_bounds(
    db: AsyncEngine,
) -> None:
    for minute in (0, 59):
        async with db.begin() as conn:
            await insert_log_rows(conn, [entry(START.replace(minute=minute)).row()])

    (rollup,) = await all_rollups(db)
    ids = sorted(row.id for row in await all_log_rows(db))

    assert (rollup.requests, rollup.prompt_tokens, rollup.charged_micros) == (2, 20, 50)
    assert (rollup.min_log_id, rollup.max_log_id) == (ids[0], ids[1])
    assert rollup.hour == START.replace(minute=0)


async def test_concurrent_batches_rollups_equal_sums_over_the_log(db: AsyncEngine) -> None:
    rng = random.Random(11)
    first, second = await make_users(db, 2)
    keys_by_user: dict[int | None, list[int | None]] = {
        first: [5, 6, None], second: [7], None: [None],
    }  # fmt: skip
    entries = random_entries(rng, 1500, keys_by_user=keys_by_user, start=START, days=3)

    await write_concurrently(db, disordered_batches(rng, entries, 40), writers=6)

    rows, rollups = await all_log_rows(db), await all_rollups(db)
    assert len(rows) == 1500
    assert stored_rollups(rollups) == brute_rollups(rows)
    assert ids_outside_bounds(rows, rollups) == []


async def test_write_batch_one_request_updates_rollups_like_a_batch(db: AsyncEngine) -> None:
    rng = random.Random(5)
    (user,) = await make_users(db, 1)
    entries = random_entries(rng, 60, keys_by_user={user: [4, None]}, start=START, days=1)

    await write_concurrently(db, [[FinishedRequest(item)] for item in entries], writers=3)

    rows, rollups = await all_log_rows(db), await all_rollups(db)
    assert stored_rollups(rollups) == brute_rollups(rows)
    assert ids_outside_bounds(rows, rollups) == []
