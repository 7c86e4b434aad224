"""Writing request-log rows together with the hourly usage rollups that sum them.

Every writer of the request log goes through ``insert_log_rows``, inside the transaction that
writes the rows, so the rollups always equal sums over the log: the analytics page reads
only the rollups, and the logs page narrows a date range to an id range with their
``min_log_id``/``max_log_id``. Rows without a user are not summed (no page shows them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from vaultgate.storage.tables import request_logs, usage_rollups

ROLLUP_KEY = ("user_id", "hour", "key_id", "model", "provider", "status_class")
SUMMED = ("prompt_tokens", "completion_tokens", "cost_micros", "charged_micros")


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The UTC hour that ``moment`` falls in."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def rollup_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The rollup row a log row is summed into (NULLs as 0 or '', as the table keeps them)."""
    return (
        row["user_id"], hour_of(row["created_at"]), row.get("key_id") or 0,
        row.get("model") or "", row.get("provider") or "", int(row["status"]) // 100,
    )  # fmt: skip


def rollup_rows(
    rows: Sequence[Mapping[str, Any]], *, first_id: int, last_id: int
) -> list[dict[str, Any]]:
    """The sums of ``rows`` per rollup key, sorted by key; their ids lie in [first, last]."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        if row["user_id"] is None:
            continue
        key = rollup_key(row)
        found = sums.get(key)
        if found is None:
            found = sums[key] = {
                **dict(zip(ROLLUP_KEY, key, strict=True)), "requests": 0,
                **dict.fromkeys(SUMMED, 0), "min_log_id": first_id, "max_log_id": last_id,
            }  # fmt: skip
        found["requests"] += 1
        for name in SUMMED:
            found[name] += row.get(name) or 0
    # Sorted, so that concurrent batches on PostgreSQL lock shared rollup rows in one order.
    return [sums[key] for key in sorted(sums)]


def _rollup_upsert(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE adding to the sums and widening the id bounds."""
    if dialect == "postgresql":
        pg_statement = postgresql.insert(usage_rollups)
        return pg_statement.on_conflict_do_update(
            index_elements=list(ROLLUP_KEY), set_=_merged(pg_statement.excluded)
        )
    if dialect == "sqlite":
        lite_statement = sqlite.insert(usage_rollups)
        return lite_statement.on_conflict_do_update(
            index_elements=list(ROLLUP_KEY), set_=_merged(lite_statement.excluded)
        )
    raise ValueError(f"no upsert for the {dialect} dialect")


def _merged(new: Any) -> dict[str, ColumnElement[Any]]:
    """The values of a rollup row after adding the conflicting ``new`` row into it."""
    old = usage_rollups.c
    merged: dict[str, ColumnElement[Any]] = {
        name: old[name] + new[name] for name in ("requests", *SUMMED)
    }
    merged["min_log_id"] = case(
        (new.min_log_id < old.min_log_id, new.min_log_id), else_=old.min_log_id
    )
    merged["max_log_id"] = case(
        (new.max_log_id > old.max_log_id, new.max_log_id), else_=old.max_log_id
    )
    return merged


async def insert_log_rows(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert request-log rows and add them to the rollups, in the caller's transaction.

    Each rollup row of the batch gets the batch's lowest and highest new id as bounds: a
    little wider than its own rows' ids, never narrower, which is all the logs page needs.
    """
    if not rows:
        return
    inserted = await conn.execute(insert(request_logs).returning(request_logs.c.id), rows)
    ids = inserted.scalars().all()
    sums = rollup_rows(rows, first_id=min(ids), last_id=max(ids))
    if sums:
        await conn.execute(_rollup_upsert(conn.dialect.name), sums)
