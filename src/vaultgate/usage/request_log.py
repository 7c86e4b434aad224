"""The request log: one row per request, written in batches off the response path.

``record`` only appends to an in-memory list, so a request never waits for the database.
A background task writes the rows in batches — each request's log row, ledger charge and
the release of its hold in one transaction — at the latest every flush interval; on
shutdown ``close`` writes whatever is left. If the database is unreachable, rows are kept
(up to a bound) and retried, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.billing.settlement import (
    FinishedRequest,
    RequestLogEntry,
    StaleHold,
    write_batch,
    write_one,
)

log = logging.getLogger("vaultgate.usage")

RETRY_DELAY_S = 1.0

__all__ = ["FinishedRequest", "RequestLogEntry", "RequestLogWriter"]


class RequestLogWriter:
    """Buffers finished requests and settles them in batches from a background task."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_interval_s: float,
        batch_size: int,
        max_pending: int,
        on_settled: Callable[[set[int], set[int]], Awaitable[object]] | None = None,
    ) -> None:
        self._engine = engine
        self._on_settled = on_settled
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: list[FinishedRequest] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0

    def record(self, entry: RequestLogEntry | FinishedRequest) -> None:
        """Queue one finished request; never blocks."""
        item = entry if isinstance(entry, FinishedRequest) else FinishedRequest(entry)
        self._pending.append(item)
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
                await self._write(batch)
            except (SQLAlchemyError, OSError):
                self._pending[:0] = batch
                self.failed_batches += 1
                log.exception("request log write failed", extra={"fields": {"rows": len(batch)}})
                return False
            self.written += len(batch)
            await self._notify(batch)
        return True

    async def _notify(self, batch: list[FinishedRequest]) -> None:
        """Tell the alert checker which keys and accounts just spent."""
        if self._on_settled is None:
            return
        key_ids = {item.hold.key_id for item in batch if item.hold}
        user_ids = {item.hold.user_id for item in batch if item.hold}
        if not key_ids:
            return
        try:
            await self._on_settled(key_ids, user_ids)
        except (SQLAlchemyError, OSError):
            log.exception("alert check failed")

    async def _write(self, batch: list[FinishedRequest]) -> None:
        try:
            async with self._engine.begin() as conn:
                await write_batch(conn, batch)
        except (StaleHold, IntegrityError, DataError):
            # A hold was released after a crash, an earlier attempt committed without our
            # seeing it, or one row is unwritable: settle one by one, each on its own.
            for item in batch:
                try:
                    async with self._engine.begin() as conn:
                        await write_one(conn, item)
                except (IntegrityError, DataError):
                    # Retrying cannot fix this row; its hold is released as stale later.
                    self.dropped += 1
                    log.exception(
                        "request log row dropped",
                        extra={"fields": {"request_id": item.entry.request_id}},
                    )

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
