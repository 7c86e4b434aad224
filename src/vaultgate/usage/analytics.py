"""Usage analytics: one user's requests, tokens and spend per time bucket, key and model.

Read from the hourly usage rollups (``storage.log_rows`` keeps them equal to sums over the
request log), never from the log itself, so a 90-day range costs a few thousand rows. One
GROUP BY query returns a row per (bucket, key, model); the totals per bucket, per key and
per model are summed from those few rows here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, String, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage.log_rows import hour_of
from vaultgate.storage.tables import usage_rollups

Unit = Literal["day", "hour"]

# The label of a bucket, the same text on both databases (and in Python: see bucket_labels).
SQLITE_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}
POSTGRES_FORMATS = {"day": "YYYY-MM-DD", "hour": "YYYY-MM-DD HH24:00"}
PYTHON_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}


def time_bucket(
    column: ColumnElement[dt.datetime], unit: Unit, dialect: str
) -> ColumnElement[str]:
    """A SQL expression labelling each timestamp with its UTC day or hour.

    SQLite keeps timestamps as UTC text, so ``strftime`` reads them directly; PostgreSQL
    keeps ``timestamptz``, which is formatted after converting to UTC explicitly.
    """
    if dialect == "sqlite":
        return func.strftime(SQLITE_FORMATS[unit], column, type_=String)
    if dialect == "postgresql":
        utc = func.timezone("UTC", column)
        return func.to_char(utc, POSTGRES_FORMATS[unit], type_=String)
    raise ValueError(f"no time bucketing for the {dialect} dialect")


def bucket_labels(start: dt.datetime, end: dt.datetime, unit: Unit) -> list[str]:
    """Every bucket label from ``start`` up to (not including) ``end``, in order."""
    step = dt.timedelta(days=1) if unit == "day" else dt.timedelta(hours=1)
    moment = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        moment = moment.replace(hour=0)
    labels = []
    while moment < end:
        labels.append(moment.strftime(PYTHON_FORMATS[unit]))
        moment += step
    return labels


@dataclass(slots=True)
class Totals:
    """Requests, tokens and money spent (micro-USD)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spent_micros: int = 0

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Totals) -> None:
        """Add another total into this one."""
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.spent_micros += other.spent_micros


@dataclass(slots=True)
class Usage:
    """Totals over a range, and broken down by bucket, key and model."""

    total: Totals = field(default_factory=Totals)
    by_time: dict[str, Totals] = field(default_factory=dict)
    by_key: dict[int | None, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_model: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))


async def usage(
    engine: AsyncEngine, user_id: int, *, start: dt.datetime, end: dt.datetime, unit: Unit
) -> Usage:
    """One user's usage from ``start`` up to ``end`` (both whole UTC hours), by ``unit``."""
    if start != hour_of(start) or end != hour_of(end):
        raise ValueError("usage is summed by the hour: start and end must be whole hours")
    rollup = usage_rollups.c
    bucket = time_bucket(rollup.hour, unit, engine.dialect.name).label("bucket")
    query = (
        select(
            bucket, rollup.key_id, rollup.model, func.sum(rollup.requests),
            func.sum(rollup.prompt_tokens), func.sum(rollup.completion_tokens),
            func.sum(rollup.charged_micros),
        )
        .where(rollup.user_id == user_id, rollup.hour >= start, rollup.hour < end)
        .group_by(bucket, rollup.key_id, rollup.model)
    )  # fmt: skip
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()

    result = Usage(by_time={label: Totals() for label in bucket_labels(start, end, unit)})
    for label, key_id, model, count, prompt, completion, spent in rows:
        totals = Totals(int(count), int(prompt), int(completion), int(spent))
        result.total.add(totals)
        result.by_time.setdefault(str(label), Totals()).add(totals)
        # The rollups keep "no key" as key 0 (see storage.tables).
        result.by_key[int(key_id) or None].add(totals)
        result.by_model[model or "(none)"].add(totals)
    return result
