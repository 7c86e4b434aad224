"""Searching one user's request log: filters, keyset pages by id, one request, CSV batches.

Every query is scoped to one user and pages by ``id`` (never OFFSET), so a page costs the
same on the millionth row as on the first. Each filter has an index that starts with
``user_id`` and ends with ``id`` (see ``storage.tables``), so the database walks the index
backwards from the cursor and stops after one page.

A date range has no such index: ``created_at`` orders rows by time, not by id. Ids follow
time only roughly — each server process writes its rows in batches, several processes
interleave theirs, and rows kept through a database outage are written late — so the range
is first narrowed to the lowest and highest id of the usage rollups of its hours (which
bound every row summed in them), and the rows are still filtered on ``created_at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vaultgate.storage.tables import request_log_status_class, request_logs, usage_rollups

STATUS_CLASSES = ("2xx", "4xx", "5xx")
PAGE_COLUMNS = (
    request_logs.c.id, request_logs.c.created_at, request_logs.c.request_id,
    request_logs.c.key_id, request_logs.c.model, request_logs.c.provider,
    request_logs.c.status, request_logs.c.stream, request_logs.c.prompt_tokens,
    request_logs.c.completion_tokens, request_logs.c.charged_micros, request_logs.c.latency_ms,
    request_logs.c.ttft_ms,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What to show: every field is optional; ``until`` is inclusive (a whole day)."""

    key_id: int | None = None
    model: str | None = None
    status: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def conditions(self, user_id: int) -> list[ColumnElement[bool]]:
        """The WHERE clauses for one user's rows that pass this filter."""
        log = request_logs.c
        found: list[ColumnElement[bool]] = [log.user_id == user_id]
        if self.key_id is not None:
            found.append(log.key_id == self.key_id)
        if self.model:
            found.append(log.model == self.model)
        if self.status in STATUS_CLASSES:
            found.append(request_log_status_class == int(self.status[0]))
        elif self.status and self.status.isdigit():
            found.append(log.status == int(self.status))
        if self.start is not None:
            found.append(log.created_at >= self.start)
        if self.end is not None:
            found.append(log.created_at < self.end)
        return found

    @property
    def status_class(self) -> int | None:
        """The class (4 for 4xx) of the statuses the filter keeps, or None for any status."""
        if self.status in STATUS_CLASSES:
            return int(self.status[0])
        if self.status and self.status.isdigit():
            return int(self.status) // 100
        return None

    @property
    def dated(self) -> bool:
        """Whether the filter has a date range."""
        return self.since is not None or self.until is not None

    @property
    def start(self) -> dt.datetime | None:
        """The first moment of the range, or None."""
        return None if self.since is None else _midnight(self.since)

    @property
    def end(self) -> dt.datetime | None:
        """The moment after the range, or None."""
        return None if self.until is None else _midnight(self.until + dt.timedelta(days=1))

    def rollup_conditions(self, user_id: int) -> list[ColumnElement[bool]]:
        """The WHERE clauses for the usage rollups that sum every row passing this filter."""
        rollup = usage_rollups.c
        found: list[ColumnElement[bool]] = [rollup.user_id == user_id]
        if self.key_id is not None:
            found.append(rollup.key_id == self.key_id)
        if self.model:
            found.append(rollup.model == self.model)
        if self.status_class is not None:
            found.append(rollup.status_class == self.status_class)
        # Whole days are whole hours, so the rollup hours cover the range exactly.
        if self.start is not None:
            found.append(rollup.hour >= self.start)
        if self.end is not None:
            found.append(rollup.hour < self.end)
        return found


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of rows, newest first, and whether there are more on either side."""

    rows: list[Row[Any]]
    older: int | None
    newer: int | None


async def id_bounds(
    conn: AsyncConnection, user_id: int, filters: LogFilter
) -> list[ColumnElement[bool]]:
    """Extra WHERE clauses limiting a dated filter to the ids its rollups bound.

    Nothing for a filter without dates; a clause matching nothing when no rollup does.
    """
    if not filters.dated:
        return []
    rollup = usage_rollups.c
    query = select(func.min(rollup.min_log_id), func.max(rollup.max_log_id))
    low, high = (await conn.execute(query.where(*filters.rollup_conditions(user_id)))).one()
    if low is None:
        return [false()]
    return [request_logs.c.id >= low, request_logs.c.id <= high]


def _page_query(
    where: list[ColumnElement[bool]], *, before: int | None, after: int | None, limit: int
) -> Select[Any]:
    """Up to ``limit`` + 1 rows beyond the cursor, in the order they are walked."""
    query = select(*PAGE_COLUMNS).where(*where)
    if after is not None:
        query = query.where(request_logs.c.id > after).order_by(request_logs.c.id.asc())
    else:
        if before is not None:
            query = query.where(request_logs.c.id < before)
        query = query.order_by(request_logs.c.id.desc())
    return query.limit(limit + 1)


async def log_page(
    engine: AsyncEngine,
    user_id: int,
    filters: LogFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> LogPage:
    """Rows with id below ``before`` (or above ``after``), newest first.

    ``older`` and ``newer`` are the cursors for the neighbouring pages, None at either end.
    """
    async with engine.connect() as conn:
        where = filters.conditions(user_id) + await id_bounds(conn, user_id, filters)
        query = _page_query(where, before=before, after=after, limit=limit)
        rows = list((await conn.execute(query)).all())
    return _paged(rows, before=before, after=after, limit=limit)


def _paged(rows: list[Row[Any]], *, before: int | None, after: int | None, limit: int) -> LogPage:
    """A page from the rows fetched for it (one more than ``limit`` if there are more)."""
    more = len(rows) > limit
    rows = rows[:limit]
    if after is not None:
        rows.reverse()
        return LogPage(
            rows, older=rows[-1].id if rows else None, newer=rows[0].id if more else None
        )
    older = rows[-1].id if more else None
    newer = rows[0].id if rows and before is not None else None
    return LogPage(rows, older=older, newer=newer)


async def find_log(engine: AsyncEngine, user_id: int, request_id: str) -> Row[Any] | None:
    """One of the user's requests by its request id, or None."""
    query = select(request_logs).where(
        request_logs.c.request_id == request_id, request_logs.c.user_id == user_id
    )
    async with engine.connect() as conn:
        return (await conn.execute(query.order_by(request_logs.c.id.desc()).limit(1))).first()


async def log_batches(
    engine: AsyncEngine, user_id: int, filters: LogFilter, *, batch_size: int = 2000
) -> AsyncIterator[list[Row[Any]]]:
    """Every matching row, newest first, in keyset-paged batches.

    Each batch takes a connection of its own, so a slow reader never holds one; a date range
    is turned into ids once, at the start.
    """
    async with engine.connect() as conn:
        where = filters.conditions(user_id) + await id_bounds(conn, user_id, filters)
    before: int | None = None
    while True:
        query = _page_query(where, before=before, after=None, limit=batch_size)
        async with engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        page = _paged(rows, before=before, after=None, limit=batch_size)
        if page.rows:
            yield page.rows
        if page.older is None:
            return
        before = page.older
