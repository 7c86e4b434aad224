"""Fast paths for taking a hold: one thread hop on SQLite, one round trip on PostgreSQL.

Taking a hold is the one database write on the request path, so it bypasses the ORM layer:
on SQLite it runs as a single short ``BEGIN IMMEDIATE`` transaction on a dedicated
connection in a dedicated thread; on PostgreSQL it is one call of the ``vaultgate_reserve``
function (created by migration 0003), which runs the same conditional updates atomically.
Both follow ``reservations.reserve`` exactly; refusals are explained by its slow path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.billing.reservations import Hold, explain_refusal, reserve
from vaultgate.errors import InsufficientBalance

KEY_REFUSED = "key"
BALANCE_REFUSED = "balance"
ACCEPTED = "ok"


class HoldStore(Protocol):
    """Takes holds for requests."""

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """Hold money and tokens, or raise 401, 429 (quota), 402 or StaleKey."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


def _new_hold(user_id: int, key_id: int, amount: int, tokens: int) -> Hold:
    # Unique, not secret: the fast generator is enough.
    return Hold(f"rsv_{random.getrandbits(96):024x}", user_id, key_id, amount, tokens)


async def _refuse(
    engine: AsyncEngine, outcome: str, hold: Hold, key_version: dt.datetime | None
) -> Exception:
    if outcome == BALANCE_REFUSED:
        return InsufficientBalance(
            "Your credit balance is too low for this request: it may cost up to "
            f"{hold.amount_micros} micro-USD. Top up, or ask for less (max_tokens, n)."
        )
    return await explain_refusal(engine, hold.key_id, hold.tokens, key_version)


class GenericHoldStore:
    """The portable path through SQLAlchemy, for any database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """Delegate to ``reservations.reserve``."""
        return await reserve(
            self._engine,
            user_id=user_id,
            key_id=key_id,
            amount_micros=amount_micros,
            tokens=tokens,
            key_version=key_version,
        )

    async def aclose(self) -> None:
        """Nothing of its own to release."""


def _sqlite_time(moment: dt.datetime) -> str:
    """A UTC time in the text form SQLAlchemy stores in SQLite."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_SQLITE_KEY = (
    "UPDATE api_keys SET tokens_reserved = tokens_reserved + ? WHERE id = ? "
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) "
    "AND (? IS NULL OR updated_at = ?) "
    "AND (token_quota IS NULL OR tokens_used + tokens_reserved + ? <= token_quota)"
)
_SQLITE_BALANCE = (
    "UPDATE balances SET balance_micros = balance_micros - ? "
    "WHERE user_id = ? AND balance_micros >= ?"
)
_SQLITE_INSERT = (
    "INSERT INTO reservations (id, user_id, key_id, amount_micros, tokens, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class SqliteHoldStore:
    """Holds on SQLite through stdlib connections, without the ORM.

    The common case runs inline on the event loop: an uncontended ``BEGIN IMMEDIATE``
    transaction of three statements takes tens of microseconds, far less than handing it to
    a thread (which costs a GIL hand-over each way). When another writer holds the database
    (a settlement batch, another process), the inline attempt gives up at once and the hold
    is taken by a worker thread that waits for the lock.
    """

    def __init__(self, engine: AsyncEngine, path: str) -> None:
        self._engine = engine
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vaultgate-holds")
        self._inline: sqlite3.Connection | None = None
        self._threaded: sqlite3.Connection | None = None

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, timeout=30, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        return connection

    def _reserve_inline(self, hold: Hold, version: str | None, now: str) -> str | None:
        """The outcome, or None when the database is busy and the thread must do it."""
        if self._inline is None:
            self._inline = self._open(busy_timeout_ms=0)
        try:
            return _run_reserve(self._inline, hold, version, now)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise

    def _reserve_threaded(self, hold: Hold, version: str | None, now: str) -> str:
        if self._threaded is None:
            self._threaded = self._open(busy_timeout_ms=30_000)
        return _run_reserve(self._threaded, hold, version, now)

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """Inline when the database is free, else on the worker thread."""
        hold = _new_hold(user_id, key_id, amount_micros, tokens)
        version = _sqlite_time(key_version) if key_version else None
        now = _sqlite_time(dt.datetime.now(dt.UTC))
        outcome = self._reserve_inline(hold, version, now)
        if outcome is None:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                self._executor, self._reserve_threaded, hold, version, now
            )
        if outcome != ACCEPTED:
            raise await _refuse(self._engine, outcome, hold, key_version)
        return hold

    async def aclose(self) -> None:
        """Close both connections, each in the thread that uses it, then stop the thread."""

        def close_threaded() -> None:
            if self._threaded is not None:
                self._threaded.close()
                self._threaded = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_threaded)
        self._executor.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
            self._inline = None


def _run_reserve(connection: sqlite3.Connection, hold: Hold, version: str | None, now: str) -> str:
    """The hold's transaction on a stdlib SQLite connection; returns the outcome."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        key = connection.execute(
            _SQLITE_KEY, (hold.tokens, hold.key_id, now, version, version, hold.tokens)
        )
        if key.rowcount != 1:
            connection.execute("ROLLBACK")
            return KEY_REFUSED
        if hold.amount_micros:
            paid = connection.execute(
                _SQLITE_BALANCE, (hold.amount_micros, hold.user_id, hold.amount_micros)
            )
            if paid.rowcount != 1:
                connection.execute("ROLLBACK")
                return BALANCE_REFUSED
        connection.execute(
            _SQLITE_INSERT,
            (hold.id, hold.user_id, hold.key_id, hold.amount_micros, hold.tokens, now),
        )
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return ACCEPTED


class PostgresHoldStore:
    """Holds on PostgreSQL: one call of ``vaultgate_reserve`` per request."""

    def __init__(self, engine: AsyncEngine, dsn: str, *, pool_size: int = 5) -> None:
        self._engine = engine
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _acquire_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    # Not waiting for the WAL flush is safe here: a hold lost in a crash
                    # takes its balance change with it, and settlement charges a request
                    # whose hold is gone straight from the balance.
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=self._pool_size,
                        server_settings={"synchronous_commit": "off"},
                    )  # fmt: skip
        return self._pool

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """One round trip; the slow path only explains refusals."""
        hold = _new_hold(user_id, key_id, amount_micros, tokens)
        pool = await self._acquire_pool()
        outcome = await pool.fetchval(
            "SELECT vaultgate_reserve($1, $2, $3, $4, $5, $6, $7)",
            hold.id, user_id, key_id, amount_micros, tokens, key_version,
            dt.datetime.now(dt.UTC),
        )  # fmt: skip
        if outcome != ACCEPTED:
            raise await _refuse(self._engine, outcome, hold, key_version)
        return hold

    async def aclose(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def build_hold_store(engine: AsyncEngine, url: str, *, pool_size: int = 5) -> HoldStore:
    """The fastest store for the database behind ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return SqliteHoldStore(engine, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresHoldStore(engine, dsn, pool_size=pool_size)
    return GenericHoldStore(engine)
