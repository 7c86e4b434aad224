"""The logs pages at scale: one user with 1,000,000 request-log rows, on SQLite and PostgreSQL.

Fills a fresh database (SQLite under /tmp; a new PostgreSQL database) with generated rows
— ``executemany`` in batches on SQLite, ``COPY`` through asyncpg on PostgreSQL — at the
schema revision before the usage rollups, then upgrades it, so the rollups are filled by the
migration's backfill as on an existing install. Then it starts ``vaultgate serve`` on it,
signs in over HTTP and times the real pages: the first page, a deep keyset page, filtered
pages, a request's detail, the overview, analytics, and the full CSV export (streamed, with
the server's resident memory sampled while it runs).

    .venv/bin/python bench/logs_scale.py [--rows 1000000] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from procs import free_port, wait_for_port
from vaultgate.accounts.keys import create_key
from vaultgate.accounts.users import create_user
from vaultgate.storage import migrate
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import request_logs

PG_ADMIN_DSN = os.environ.get(
    "VAULTGATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
EMAIL, PASSWORD = "scale@example.com", "correct horse battery"
MODELS = ["gpt-4o-text", "gpt-4o-mini-text", "claude-sonnet-text", "gemini-flash-text",
          "llama-3-text", "mistral-large-text"]  # fmt: skip
DAYS = 90
BATCH = 50_000
RUNS = 15
ROLLUP_REVISION = "0006"
COLUMNS = ("created_at", "request_id", "key_id", "user_id", "endpoint", "model", "provider",
           "status", "stream", "prompt_tokens", "completion_tokens", "cached_tokens", "images",
           "usage_estimated", "cost_micros", "charged_micros", "latency_ms", "ttft_ms",
           "attempts", "error")  # fmt: skip


def _status(rng: random.Random) -> int:
    roll = rng.random()
    return 200 if roll < 0.96 else (429 if roll < 0.98 else 400) if roll < 0.99 else 502


def generate(
    count: int, user_id: int, key_ids: list[int], start: dt.datetime
) -> Iterator[tuple[Any, ...]]:
    """``count`` rows in time order over ``DAYS`` days from ``start``."""
    rng = random.Random(7)
    step = DAYS * 86_400 / count
    for i in range(count):
        status = _status(rng)
        prompt, completion = rng.randint(5, 2000), rng.randint(0, 800) if status == 200 else 0
        cost = (prompt + 3 * completion) * 2
        request_id = f"req_{rng.getrandbits(128):032x}"
        yield (start + dt.timedelta(seconds=i * step), request_id,
               key_ids[i % len(key_ids)], user_id, "chat", MODELS[rng.randrange(len(MODELS))],
               "openai", status, i % 4 == 0, prompt, completion, 0, 0, False, cost, cost,
               rng.randint(80, 4000), rng.randint(40, 900) if i % 4 == 0 else None, 1,
               None if status == 200 else "upstream error")  # fmt: skip


def fill_sqlite(path: Path, rows: Iterator[tuple[Any, ...]]) -> None:
    """Bulk insert with the stdlib driver; timestamps in SQLAlchemy's SQLite text form."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    marks = ", ".join("?" * len(COLUMNS))
    # Built from constants only, never from input.
    sql = f"INSERT INTO request_logs ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append((row[0].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[1:]))
        if len(batch) == BATCH:
            conn.executemany(sql, batch)
            conn.commit()
            batch.clear()
    conn.executemany(sql, batch)
    conn.commit()
    conn.close()


async def fill_postgres(dsn: str, rows: Iterator[tuple[Any, ...]]) -> None:
    """Bulk load with COPY, in batches; then ANALYZE, as autovacuum would."""
    conn = await asyncpg.connect(dsn)
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                await conn.copy_records_to_table("request_logs", records=batch, columns=COLUMNS)
                batch.clear()
        await conn.copy_records_to_table("request_logs", records=batch, columns=COLUMNS)
    finally:
        await conn.close()


async def analyze_postgres(dsn: str) -> None:
    """ANALYZE, as autovacuum would after a load (and for the new expression index)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def revision_before_rollups() -> str:
    """The schema revision just before the usage rollups."""
    script = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(ROLLUP_REVISION)
    assert script is not None
    assert isinstance(script.down_revision, str)
    return script.down_revision


async def upgrade(url: str) -> None:
    """Migrate to the newest revision (the rollups are backfilled from the log)."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def prepare(url: str) -> tuple[int, list[int]]:
    """Migrate to before the rollups; make the user and two keys."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, revision_before_rollups())
        user = await create_user(engine, email=EMAIL, username="scale", password=PASSWORD)
        keys = [(await create_key(engine, user_id=user.id, name=name))[1].id
                for name in ("backend", "batch-jobs")]  # fmt: skip
        return user.id, keys
    finally:
        await engine.dispose()


async def new_pg_database() -> tuple[str, str]:
    """A fresh PostgreSQL database: (SQLAlchemy URL, asyncpg DSN)."""
    name = f"vg_logs_scale_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = PG_ADMIN_DSN.rpartition("/")[0] + "/" + name
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1), dsn


async def drop_pg_database(dsn: str) -> None:
    """Drop the database made by ``new_pg_database``."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(client: httpx.Client, path: str, runs: int = RUNS) -> tuple[float, float, int]:
    """Median and worst wall time (ms) of GET ``path`` after one warm-up; and the row count."""
    first = client.get(path)
    assert first.status_code == 200, (path, first.status_code, first.text[:300])
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times), response.text.count("<tr data-id=")


def export_csv(client: httpx.Client, pid: int) -> dict[str, float]:
    """Stream the full CSV export; time it, count it, and sample the server's memory."""
    before, peak, done = rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began, size, lines = time.perf_counter(), 0, 0
    with client.stream("GET", "/dashboard/logs.csv") as response:
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - began
    done.set()
    sampler.join()
    return {"seconds": elapsed, "mb": size / 2**20, "rows": lines - 1, "rss_before": before,
            "rss_peak": peak[0]}  # fmt: skip


def scenarios(max_id: int, key_id: int, now: dt.datetime) -> list[tuple[str, str]]:
    """The pages to time: (what, path)."""
    day = dt.timedelta(days=1)
    old = (now - 60 * day).date().isoformat()
    return [
        ("first page", "/dashboard/logs"),
        ("deep page (900k rows in)", f"/dashboard/logs?before={max_id - 900_000}"),
        ("model filter", "/dashboard/logs?model=claude-sonnet-text"),
        ("model filter, deep",
         f"/dashboard/logs?model=claude-sonnet-text&before={max_id - 900_000}"),
        ("key filter", f"/dashboard/logs?key={key_id}"),
        ("status 200", "/dashboard/logs?status=200"),
        ("status 4xx (3%)", "/dashboard/logs?status=4xx"),
        ("status 5xx (1%)", "/dashboard/logs?status=5xx"),
        ("status 5xx, deep", f"/dashboard/logs?status=5xx&before={max_id - 900_000}"),
        ("status 4xx, deep", f"/dashboard/logs?status=4xx&before={max_id - 900_000}"),
        ("last 7 days", f"/dashboard/logs?from={(now - 7 * day).date().isoformat()}"),
        ("one day, 60 days ago", f"/dashboard/logs?from={old}&to={old}"),
        ("model + 4xx + 30-day range",
         f"/dashboard/logs?model=gpt-4o-text&status=4xx&from={(now - 60 * day).date()}"
         f"&to={(now - 30 * day).date()}"),
    ]  # fmt: skip


def measure(url: str, data_dir: Path, user_id: int, keys: list[int], max_id: int) -> list[str]:
    """Start the server, sign in, time every scenario; returns table lines."""
    port = free_port()
    env = {**os.environ, "VAULTGATE_DATABASE_URL": url, "VAULTGATE_DATA_DIR": str(data_dir),
           "VAULTGATE_PORT": str(port), "VAULTGATE_HOST": "127.0.0.1"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "vaultgate", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lines = []
    try:
        wait_for_port(port, server, 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            assert (
                client.post("/signin", data={"email": EMAIL, "password": PASSWORD}).status_code
                == 303
            )
            now = dt.datetime.now(dt.UTC)
            for what, path in scenarios(max_id, keys[0], now):
                median, worst, rows = timed(client, path)
                lines.append(f"| {what} | {median:.1f} | {worst:.1f} | {rows} |")
            detail = (
                client.get("/dashboard/logs").text.split('href="/dashboard/logs/')[1].split('"')[0]
            )
            median, worst, _ = timed(client, f"/dashboard/logs/{detail}")
            lines.append(f"| request detail | {median:.1f} | {worst:.1f} | 1 |")
            median, worst, _ = timed(client, "/dashboard")
            lines.append(f"| overview (today, this month) | {median:.1f} | {worst:.1f} | |")
            for days in (7, 30, 90):
                median, worst, _ = timed(client, f"/dashboard/analytics?days={days}", runs=3)
                lines.append(f"| analytics, {days} days | {median:.1f} | {worst:.1f} | |")
            csv_run = export_csv(client, server.pid)
            lines.append(
                f"| CSV export, all rows | {csv_run['seconds'] * 1000:.0f} (one run) | | "
                f"{csv_run['rows']:.0f} rows, {csv_run['mb']:.0f} MiB; server RSS "
                f"{csv_run['rss_before']:.0f} → peak {csv_run['rss_peak']:.0f} MiB |"
            )
    finally:
        server.terminate()
        server.wait(30)
    return lines


async def max_log_id(url: str) -> int:
    """The newest log id."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.max(request_logs.c.id))) or 0)
    finally:
        await engine.dispose()


def run_one(kind: str, count: int) -> list[str]:
    """Fill a fresh database of ``kind`` and measure it."""
    work = Path(tempfile.mkdtemp(prefix=f"vg-logs-{kind}-"))
    dsn = ""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{work / 'vaultgate.db'}"
    else:
        url, dsn = asyncio.run(new_pg_database())
    try:
        user_id, keys = asyncio.run(prepare(url))
        began = time.perf_counter()
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
        rows = generate(count, user_id, keys, start)
        if kind == "sqlite":
            fill_sqlite(work / "vaultgate.db", rows)
        else:
            asyncio.run(fill_postgres(dsn, rows))
        print(f"{kind}: {count:,} rows loaded in {time.perf_counter() - began:.1f} s", flush=True)
        began = time.perf_counter()
        asyncio.run(upgrade(url))
        print(f"{kind}: migrated (rollups backfilled) in {time.perf_counter() - began:.1f} s",
              flush=True)  # fmt: skip
        if dsn:
            asyncio.run(analyze_postgres(dsn))
        return measure(url, work / "data", user_id, keys, asyncio.run(max_log_id(url)))
    finally:
        if dsn:
            asyncio.run(drop_pg_database(dsn))


def main() -> None:
    """Run the scale benchmark and print a Markdown table per database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for kind in [args.only] if args.only else ["sqlite", "postgres"]:
        lines = run_one(kind, args.rows)
        print(f"\n### {kind}, {args.rows:,} rows\n")
        print("| page | median ms | worst ms | rows shown |\n|---|---|---|---|")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
