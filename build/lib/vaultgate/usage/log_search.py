"""Searching one user's request log: filters, keyset pages by id, one request, CSV batches.

Every query is scoped to one user and pages by ``id`` (never OFFSET), so a page costs the
same on the millionth row as on the first. Each filter has an index that starts with
``user_id`` and ends with ``id`` (see ``storage.tables``), so the database walks the index
backwards from the cursor and stops after one page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage.tables import request_logs

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
            low = int(self.status[0]) * 100
            found += [log.status >= low, log.status < low + 100]
        elif self.status and self.status.isdigit():
            found.append(log.status == int(self.status))
        if self.since is not None:
            found.append(log.created_at >= _midnight(self.since))
        if self.until is not None:
            found.append(log.created_at < _midnight(self.until + dt.timedelta(days=1)))
        return found


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of rows, newest first, and whether there are more on either side."""

    rows: list[Row[Any]]
    older: int | None
    newer: int | None


def _page_query(user_id: int, filters: LogFilter) -> Select[Any]:
    return select(*PAGE_COLUMNS).where(*filters.conditions(user_id))


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
    query = _page_query(user_id, filters)
    if after is not None:
        query = query.where(request_logs.c.id > after).order_by(request_logs.c.id.asc())
    else:
        if before is not None:
            query = query.where(request_logs.c.id < before)
        query = query.order_by(request_logs.c.id.desc())
    async with engine.connect() as conn:
        rows = list((await conn.execute(query.limit(limit + 1))).all())

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

    Each batch takes a connection of its own, so a slow reader never holds one.
    """
    before: int | None = None
    while True:
        page = await log_page(engine, user_id, filters, before=before, limit=batch_size)
        if page.rows:
            yield page.rows
        if page.older is None:
            return
        before = page.older
