"""Searching the request log, on SQLite and PostgreSQL: every page walk and the CSV batches
return exactly the rows a brute-force filter returns, in id order, with ids out of time
order as several writers leave them."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.random_logs import (
    all_log_rows,
    disordered_batches,
    make_users,
    random_entries,
    write_concurrently,
)
from vaultgate.billing.settlement import FinishedRequest, RequestLogEntry
from vaultgate.usage.log_search import LogFilter, log_batches, log_page

pytestmark = pytest.mark.anyio

START = dt.datetime(2025, 5, 10, 17, 45, tzinfo=dt.UTC)
DAYS = 6
STATUSES = [None, "2xx", "4xx", "5xx", "200", "429", "500", "404", "3xx", "201"]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def brute_force(rows: list[Row[Any]], user_id: int, filters: LogFilter) -> list[int]:
    """The ids of the rows the filter keeps, newest first, by plain Python."""
    kept = []
    for row in rows:
        status = filters.status
        if row.user_id != user_id:
            continue
        if filters.key_id is not None and row.key_id != filters.key_id:
            continue
        if filters.model and row.model != filters.model:
            continue
        if status in ("2xx", "4xx", "5xx") and str(row.status)[0] != status[0]:
            continue
        if status and status.isdigit() and row.status != int(status):
            continue
        if filters.since and row.created_at < _midnight(filters.since):
            continue
        if filters.until and row.created_at >= _midnight(filters.until) + dt.timedelta(days=1):
            continue
        kept.append(row.id)
    return sorted(kept, reverse=True)


def random_filter(rng: random.Random, keys: list[int | None]) -> LogFilter:
    """A filter with each part set or not at random; dates inside, at and beyond the edges."""
    days = [(START + dt.timedelta(days=n)).date() for n in range(-1, DAYS + 2)]
    since, until = rng.choice([None, *days]), rng.choice([None, *days])
    return LogFilter(
        key_id=rng.choice([None, None, *keys]),
        model=rng.choice([None, None, "m-alpha", "m-beta", "m-missing"]),
        status=rng.choice(STATUSES), since=since, until=until,
    )  # fmt: skip


async def walk_older(engine: AsyncEngine, user_id: int, filters: LogFilter) -> list[int]:
    """Every id from the first page on, following the older cursors."""
    found: list[int] = []
    before: int | None = None
    for _ in range(1000):
        page = await log_page(engine, user_id, filters, before=before, limit=37)
        found += [row.id for row in page.rows]
        if page.older is None:
            return found
        before = page.older
    raise AssertionError("the older cursors never ended")


async def walk_newer(engine: AsyncEngine, user_id: int, filters: LogFilter) -> list[int]:
    """Every id from the oldest page up, following the newer cursors; newest first."""
    pages: list[list[int]] = []
    after = 0
    for _ in range(1000):
        page = await log_page(engine, user_id, filters, after=after, limit=37)
        pages.append([row.id for row in page.rows])
        if page.newer is None:
            return [row_id for ids in reversed(pages) for row_id in ids]
        after = page.newer
    raise AssertionError("the newer cursors never ended")


async def exported(engine: AsyncEngine, user_id: int, filters: LogFilter) -> list[int]:
    """The ids of the CSV export's batches, in the order they come."""
    return [
        row.id
        async for batch in log_batches(engine, user_id, filters, batch_size=53)
        for row in batch
    ]


async def test_log_search_random_filters_equal_brute_force(engine: AsyncEngine) -> None:
    rng = random.Random(2024)
    first, second = await make_users(engine, 2)
    keys: list[int | None] = [11, 12, None, 21]
    keys_by_user: dict[int | None, list[int | None]] = {
        first: [11, 12, None], second: [21], None: [None],
    }  # fmt: skip
    entries = random_entries(rng, 2500, keys_by_user=keys_by_user, start=START, days=DAYS)
    await write_concurrently(engine, disordered_batches(rng, entries, 60), writers=4)
    rows = await all_log_rows(engine)
    by_id = [row.id for row in sorted(rows, key=lambda row: row.id)]
    assert by_id != [row.id for row in sorted(rows, key=lambda row: row.created_at)]

    for _ in range(40):
        user_id, filters = rng.choice([first, first, second]), random_filter(rng, keys)
        expected = brute_force(rows, user_id, filters)

        assert await walk_older(engine, user_id, filters) == expected, filters
        assert await walk_newer(engine, user_id, filters) == expected, filters
        assert await exported(engine, user_id, filters) == expected, filters


async def test_log_page_row_written_late_is_found_by_its_day(engine: AsyncEngine) -> None:
    (user,) = await make_users(engine, 1)
    day = START.date()
    on_time = [entry(user, START + dt.timedelta(days=n)) for n in range(4)]
    late = entry(user, START + dt.timedelta(minutes=5))
    await write_concurrently(engine, [[FinishedRequest(item)] for item in [*on_time, late]])

    page = await log_page(engine, user, LogFilter(since=day, until=day))

    assert [row.request_id for row in page.rows] == [late.request_id, on_time[0].request_id]


async def test_log_page_day_without_requests_is_empty(engine: AsyncEngine) -> None:
    (user,) = await make_users(engine, 1)
    await write_concurrently(engine, [[FinishedRequest(entry(user, START))]])
    day = (START + dt.timedelta(days=1)).date()

    page = await log_page(engine, user, LogFilter(since=day, until=day))

    assert (page.rows, page.older, page.newer) == ([], None, None)


def entry(user_id: int, when: dt.datetime) -> RequestLogEntry:
    """A plain successful request of ``user_id`` at ``when``."""
    return RequestLogEntry(
        created_at=when, request_id=f"req-{when:%Y%m%d%H%M%S}", endpoint="chat", status=200,
        latency_ms=5, user_id=user_id, key_id=1, model="m-alpha",
    )  # fmt: skip
