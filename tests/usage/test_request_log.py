"""The batched request-log writer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.server import free_port
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import request_logs
from vaultgate.usage.request_log import RequestLogEntry, RequestLogWriter

pytestmark = pytest.mark.anyio

WAIT_LIMIT_S = 20.0


def entry(number: int) -> RequestLogEntry:
    """A finished chat request numbered ``number``."""
    return RequestLogEntry(
        created_at=dt.datetime.now(dt.UTC), request_id=f"req-{number:05d}", endpoint="chat",
        status=200, latency_ms=12, model="offline-small-text", provider="offline",
        prompt_tokens=number, completion_tokens=2 * number, cost_micros=7, attempts=1,
    )  # fmt: skip


def writer_for(engine: AsyncEngine, *, batch_size: int = 500, **options: Any) -> RequestLogWriter:
    """A writer whose background task only wakes when told to (or a batch fills)."""
    settings: dict[str, Any] = {"flush_interval_s": 3600.0, "max_pending": 100_000, **options}
    return RequestLogWriter(engine, batch_size=batch_size, **settings)


async def stored_ids(engine: AsyncEngine) -> list[str]:
    """Request ids in the log, in insertion order."""
    async with engine.connect() as conn:
        query = select(request_logs.c.request_id).order_by(request_logs.c.id)
        return list((await conn.execute(query)).scalars())


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for a background effect; fail (not hang) if it never comes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while not condition():
        assert loop.time() < deadline, "condition not reached"

        await asyncio.sleep(0.01)


async def rename_table(engine: AsyncEngine, old: str, new: str) -> None:
    """Rename a table: the writer's inserts fail while the log table is away."""
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def count_log_inserts(engine: AsyncEngine) -> list[int]:
    """A list that grows by one per INSERT statement sent for the request log."""
    calls: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO REQUEST_LOGS"):
            calls.append(1)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return calls


async def test_flush_writes_all_rows_in_batches(engine: AsyncEngine) -> None:
    writer = writer_for(engine, batch_size=10)
    inserts = count_log_inserts(engine)
    for number in range(25):
        writer.record(entry(number))

    assert await writer.flush() is True

    assert writer.written == 25
    assert writer.pending == 0
    assert len(inserts) == 3
    assert await stored_ids(engine) == [f"req-{n:05d}" for n in range(25)]


async def test_flush_row_values_are_stored(engine: AsyncEngine) -> None:
    writer = writer_for(engine)
    writer.record(entry(3))

    await writer.flush()

    async with engine.connect() as conn:
        row = (await conn.execute(select(request_logs))).one()
    assert (row.request_id, row.endpoint, row.status, row.model) == (
        "req-00003", "chat", 200, "offline-small-text",
    )  # fmt: skip
    assert (row.prompt_tokens, row.completion_tokens, row.cost_micros) == (3, 6, 7)
    assert row.created_at.tzinfo is not None


async def test_background_writer_full_batch_is_written_without_waiting(
    engine: AsyncEngine,
) -> None:
    writer = writer_for(engine, batch_size=10)
    writer.start()
    try:
        for number in range(10):
            writer.record(entry(number))
        await wait_until(lambda: writer.written == 10)
    finally:
        await writer.close()

    assert len(await stored_ids(engine)) == 10


async def test_background_writer_flush_interval_writes_partial_batch(
    engine: AsyncEngine,
) -> None:
    writer = writer_for(engine, flush_interval_s=0.02)
    writer.start()
    try:
        writer.record(entry(1))
        await wait_until(lambda: writer.written == 1)
        assert writer.running
    finally:
        await writer.close()

    assert not writer.running


async def test_close_writes_what_is_pending(engine: AsyncEngine) -> None:
    writer = writer_for(engine)
    writer.start()
    for number in range(3):
        writer.record(entry(number))

    await writer.close()

    assert writer.written == 3
    assert writer.pending == 0
    assert len(await stored_ids(engine)) == 3


async def test_close_without_start_writes_what_is_pending(engine: AsyncEngine) -> None:
    writer = writer_for(engine)
    writer.record(entry(1))

    await writer.close()

    assert await stored_ids(engine) == ["req-00001"]


async def test_flush_database_refusing_keeps_rows_then_retries_in_order(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    writer = writer_for(engine, batch_size=4)
    for number in range(10):
        writer.record(entry(number))
    await rename_table(engine, "request_logs", "request_logs_away")

    with caplog.at_level(logging.ERROR, logger="vaultgate.usage"):
        assert await writer.flush() is False

    assert writer.pending == 10
    assert writer.written == 0
    assert "request log write failed" in caplog.text
    writer.record(entry(10))
    await rename_table(engine, "request_logs_away", "request_logs")

    assert await writer.flush() is True

    assert writer.written == 11
    assert await stored_ids(engine) == [f"req-{n:05d}" for n in range(11)]


async def test_background_writer_database_refusing_retries_until_it_recovers(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # Retries come on the flush interval after a pause, so the interval must be short here.
    writer = writer_for(engine, batch_size=1, flush_interval_s=0.05)
    await rename_table(engine, "request_logs", "request_logs_away")
    writer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="vaultgate.usage"):
            writer.record(entry(1))
            await wait_until(lambda: "request log write failed" in caplog.text)
        assert writer.pending == 1
        await rename_table(engine, "request_logs_away", "request_logs")
        await wait_until(lambda: writer.written == 1)
    finally:
        await writer.close()

    assert await stored_ids(engine) == ["req-00001"]


async def test_flush_unreachable_database_keeps_rows_and_close_reports_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    writer = writer_for(unreachable)
    writer.record(entry(1))
    try:
        with caplog.at_level(logging.ERROR, logger="vaultgate.usage"):
            assert await writer.flush() is False
            assert writer.pending == 1
            await writer.close()
    finally:
        await unreachable.dispose()

    assert writer.written == 0
    assert "request log rows lost at shutdown" in caplog.text


def test_record_over_max_pending_drops_oldest() -> None:
    unused = create_engine("sqlite+aiosqlite:////nonexistent-dir/never/vaultgate.db")
    writer = writer_for(unused, max_pending=5)

    for number in range(8):
        writer.record(entry(number))

    assert writer.pending == 5
    assert writer.dropped == 3


async def test_record_over_max_pending_keeps_newest_rows(engine: AsyncEngine) -> None:
    writer = writer_for(engine, max_pending=5)
    for number in range(8):
        writer.record(entry(number))

    await writer.flush()

    assert await stored_ids(engine) == [f"req-{n:05d}" for n in range(3, 8)]
    async with engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(request_logs))).scalar()
    assert total == 5
