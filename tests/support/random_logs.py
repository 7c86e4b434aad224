"""Random request-log entries, written out of time order the way several server processes
write them, and brute-force answers to check the usage rollups and the log search against.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.users import create_user
from vaultgate.billing.settlement import FinishedRequest, RequestLogEntry, write_batch
from vaultgate.storage.tables import request_logs, usage_rollups

MODELS = ["m-alpha", "m-beta", "m-gamma", None]
PROVIDERS = ["p-one", "p-two", None]
STATUSES = [200, 200, 200, 201, 400, 404, 429, 500, 502, 503]
SUMMED = ("requests", "prompt_tokens", "completion_tokens", "cost_micros", "charged_micros")


def random_entries(
    rng: random.Random,
    count: int,
    *,
    keys_by_user: dict[int | None, list[int | None]],
    start: dt.datetime,
    days: int,
) -> list[RequestLogEntry]:
    """``count`` entries spread over ``days`` days from ``start``; some on hour edges."""
    users = list(keys_by_user)
    entries = []
    for number in range(count):
        user = rng.choice(users)
        moment = start + dt.timedelta(seconds=rng.uniform(0, days * 86_400))
        if number % 50 == 0:  # exactly on an hour, or the last microsecond before one
            moment = moment.replace(minute=0, second=0, microsecond=0)
            moment -= dt.timedelta(microseconds=number % 100 // 50)
        status = rng.choice(STATUSES)
        entries.append(RequestLogEntry(
            created_at=moment, request_id=f"req-{number:06d}-{rng.getrandbits(32):08x}",
            endpoint="chat", status=status, latency_ms=rng.randint(1, 900),
            key_id=rng.choice(keys_by_user[user]), user_id=user, model=rng.choice(MODELS),
            provider=rng.choice(PROVIDERS), prompt_tokens=rng.randint(0, 5000),
            completion_tokens=rng.randint(0, 3000) if status < 300 else 0,
            cost_micros=rng.randint(0, 90_000),
            charged_micros=0 if user is None else rng.randint(0, 90_000),
        ))  # fmt: skip
    return entries


async def make_users(engine: AsyncEngine, count: int) -> list[int]:
    """``count`` accounts (their charges need them); returns their ids."""
    ids = []
    for number in range(count):
        user = await create_user(
            engine, email=f"log{number}@example.com", username=f"log{number}",
            password="correct horse battery",
        )  # fmt: skip
        ids.append(user.id)
    return ids


def disordered_batches(
    rng: random.Random, entries: Sequence[RequestLogEntry], batch_size: int
) -> list[list[FinishedRequest]]:
    """Batches mostly in time order, some delayed (as after an outage), each a bit shuffled.

    Ids then follow time only roughly, as they do with several processes writing.
    """
    ordered = sorted(entries, key=lambda entry: entry.created_at)
    batches = [
        [FinishedRequest(entry) for entry in ordered[i : i + batch_size]]
        for i in range(0, len(ordered), batch_size)
    ]
    for batch in batches:
        cut = rng.randrange(len(batch))
        batch[cut:] = rng.sample(batch[cut:], len(batch) - cut)
    for _ in range(len(batches) // 4):
        late = batches.pop(rng.randrange(len(batches)))
        batches.insert(rng.randrange(len(batches) + 1), late)
    return batches


async def write_concurrently(
    engine: AsyncEngine, batches: Sequence[list[FinishedRequest]], *, writers: int = 4
) -> None:
    """Settle the batches from ``writers`` tasks at once, each batch in its own transaction."""
    queue = list(reversed(batches))

    async def writer() -> None:
        while queue:
            batch = queue.pop()
            async with engine.begin() as conn:
                await write_batch(conn, batch)

    await asyncio.gather(*(writer() for _ in range(writers)))


async def all_log_rows(engine: AsyncEngine) -> list[Row[Any]]:
    """Every request-log row."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(request_logs))).all())


async def all_rollups(engine: AsyncEngine) -> list[Row[Any]]:
    """Every usage rollup row."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(usage_rollups))).all())


def rollup_key_of(row: Row[Any]) -> tuple[Any, ...]:
    """The rollup a log row belongs to, worked out independently of the package."""
    hour = row.created_at.replace(minute=0, second=0, microsecond=0)
    return (row.user_id, hour, row.key_id or 0, row.model or "", row.provider or "",
            row.status // 100)  # fmt: skip


def brute_rollups(rows: Sequence[Row[Any]]) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The sums per rollup key, straight from the log rows (rows without a user left out)."""
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(SUMMED))
    for row in rows:
        if row.user_id is None:
            continue
        found = sums[rollup_key_of(row)]
        found[0] += 1
        for index, name in enumerate(SUMMED[1:], start=1):
            found[index] += getattr(row, name)
    return {key: tuple(values) for key, values in sums.items()}


def stored_rollups(rollups: Sequence[Row[Any]]) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The sums per rollup key as the rollup table holds them."""
    return {
        (r.user_id, r.hour, r.key_id, r.model, r.provider, r.status_class): tuple(
            getattr(r, name) for name in SUMMED
        )
        for r in rollups
    }


def ids_outside_bounds(rows: Sequence[Row[Any]], rollups: Sequence[Row[Any]]) -> list[int]:
    """Log ids that are not within the id bounds of their rollup row (should be none)."""
    bounds = {
        (r.user_id, r.hour, r.key_id, r.model, r.provider, r.status_class): (
            r.min_log_id, r.max_log_id,
        )
        for r in rollups
    }  # fmt: skip
    outside = []
    for row in rows:
        if row.user_id is None:
            continue
        low, high = bounds[rollup_key_of(row)]
        if not low <= row.id <= high:
            outside.append(row.id)
    return outside
