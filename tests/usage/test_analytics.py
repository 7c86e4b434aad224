"""Usage analytics from the rollups, on SQLite and PostgreSQL: the same totals per bucket,
key and model as a brute-force sum over the request log."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
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
from vaultgate.usage.analytics import Totals, Unit, usage

pytestmark = pytest.mark.anyio

START = dt.datetime(2025, 1, 30, 21, 10, tzinfo=dt.UTC)


def brute_usage(
    rows: list[Row[Any]], user_id: int, start: dt.datetime, end: dt.datetime, unit: Unit
) -> dict[str, dict[Any, tuple[int, ...]]]:
    """Totals per bucket, key and model, summed in Python from the log rows."""
    found: dict[str, dict[Any, list[int]]] = {
        part: defaultdict(lambda: [0, 0, 0, 0]) for part in ("time", "key", "model")
    }
    label = "%Y-%m-%d" if unit == "day" else "%Y-%m-%d %H:00"
    for row in rows:
        if row.user_id != user_id or not start <= row.created_at < end:
            continue
        values = (1, row.prompt_tokens, row.completion_tokens, row.charged_micros)
        for part, name in (("time", row.created_at.strftime(label)), ("key", row.key_id),
                           ("model", row.model or "(none)")):  # fmt: skip
            found[part][name] = [a + b for a, b in zip(found[part][name], values, strict=True)]
    return {part: {k: tuple(v) for k, v in sums.items()} for part, sums in found.items()}


def as_tuples(totals: dict[Any, Totals]) -> dict[Any, tuple[int, ...]]:
    """Non-empty totals as (requests, prompt, completion, spent) tuples."""
    return {
        name: (t.requests, t.prompt_tokens, t.completion_tokens, t.spent_micros)
        for name, t in totals.items()
        if t.requests
    }


@pytest.mark.parametrize(
    ("offset_hours", "hours", "unit"), [(0, 72, "day"), (26, 30, "hour"), (-48, 24 * 9, "day")]
)
async def test_usage_equals_brute_force_sums(
    engine: AsyncEngine, offset_hours: int, hours: int, unit: Unit
) -> None:
    rng = random.Random(offset_hours)
    first, second = await make_users(engine, 2)
    keys_by_user: dict[int | None, list[int | None]] = {first: [1, 2, None], second: [3]}
    entries = random_entries(rng, 900, keys_by_user=keys_by_user, start=START, days=4)
    await write_concurrently(engine, disordered_batches(rng, entries, 50), writers=3)
    start = START.replace(minute=0) + dt.timedelta(hours=offset_hours)
    end = start + dt.timedelta(hours=hours)

    found = await usage(engine, first, start=start, end=end, unit=unit)

    expected = brute_usage(await all_log_rows(engine), first, start, end, unit)
    assert as_tuples(found.by_time) == expected["time"]
    assert as_tuples(found.by_key) == expected["key"]
    assert as_tuples(found.by_model) == expected["model"]
    assert found.total.requests == sum(v[0] for v in expected["time"].values())
    assert found.total.spent_micros == sum(v[3] for v in expected["time"].values())


async def test_usage_start_inside_an_hour_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="whole hours"):
        await usage(engine, 1, start=START, end=START + dt.timedelta(days=1), unit="day")
