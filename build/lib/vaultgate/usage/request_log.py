"""The request log: one row per request, written in batches off the response path.

``record`` only appends to an in-memory list, so a request never waits for the database.
A background task writes the rows in batches, at the latest every flush interval; on
shutdown ``close`` writes whatever is left. If the database is unreachable, rows are kept
(up to a bound) and retried, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import asdict, dataclass

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage.tables import request_logs

log = logging.getLogger("vaultgate.usage")

RETRY_DELAY_S = 1.0


@dataclass(slots=True)
class RequestLogEntry:
    """One row of the request log."""

    created_at: dt.datetime
    request_id: str
    endpoint: str
    status: int
    latency_ms: int
    key_id: int | None = None
    user_id: int | None = None
    model: str | None = None
    provider: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    images: int = 0
    usage_estimated: bool = False
    cost_micros: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    error: str | None = None


class RequestLogWriter:
    """Buffers entries and writes them in batches from a background task."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_interval_s: float,
        batch_size: int,
        max_pending: int,
    ) -> None:
        self._engine = engine
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[RequestLogEntry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0

    def record(self, entry: RequestLogEntry) -> None:
        """Queue one entry; never blocks."""
        self._pending.append(entry)
        if len(self._pending) > self._max_pending:
            overflow = len(self._pending) - self._max_pending
            del self._pending[:overflow]
            self.dropped += overflow
            log.error("request log overflow", extra={"fields": {"dropped": overflow}})
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Entries not yet written."""
        return len(self._pending)

    def start(self) -> None:
        """Start the background writer in the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="request-log-writer")

    @property
    def running(self) -> bool:
        """Whether the background writer is alive."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_DELAY_S)

    async def flush(self) -> bool:
        """Write everything pending; False if the database refused (rows are kept)."""
        while self._pending:
            batch = self._pending[: self._batch_size]
            del self._pending[: len(batch)]
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert(request_logs), [asdict(e) for e in batch])
            except (SQLAlchemyError, OSError):
                self._pending[:0] = batch
                log.exception("request log write failed", extra={"fields": {"rows": len(batch)}})
                return False
            self.written += len(batch)
        return True

    async def close(self) -> None:
        """Stop the background task and write what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if not await self.flush():
            log.error(
                "request log rows lost at shutdown", extra={"fields": {"rows": self.pending}}
            )
