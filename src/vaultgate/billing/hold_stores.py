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
import secrets
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
    return Hold("rsv_" + secrets.token_hex(12), user_id, key_id, amount, tokens)


async def _refuse(
    engine: AsyncEngine, outcome: str, hold: Hold, key_version: dt.datetime | None
) -> Exception:
    if outcome == BALANCE_REFUSED:
        return InsufficientBalance(
            "Your credit balance is too low for this request: it may cost up to "
            f"{hold.amount_micros} micro-USD. Top up or lower max_tokens."
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
    """Holds on SQLite through one stdlib connection owned by one worker thread."""

    def __init__(self, engine: AsyncEngine, path: str) -> None:
        self._engine = engine
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vaultgate-holds")
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, timeout=30, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._connection = connection
        return self._connection

    def _reserve_sync(self, hold: Hold, version: str | None, now: str) -> str:
        connection = self._connect()
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

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """One hop to the holds thread; the slow path only explains refusals."""
        hold = _new_hold(user_id, key_id, amount_micros, tokens)
        version = _sqlite_time(key_version) if key_version else None
        now = _sqlite_time(dt.datetime.now(dt.UTC))
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(
            self._executor, self._reserve_sync, hold, version, now
        )
        if outcome != ACCEPTED:
            raise await _refuse(self._engine, outcome, hold, key_version)
        return hold

    async def aclose(self) -> None:
        """Close the connection in its own thread, then stop the thread."""

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


class PostgresHoldStore:
    """Holds on PostgreSQL: one call of ``vaultgate_reserve`` per request."""

    def __init__(self, engine: AsyncEngine, dsn: str) -> None:
        self._engine = engine
        self._dsn = dsn
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
                        self._dsn, min_size=1, max_size=20,
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


def build_hold_store(engine: AsyncEngine, url: str) -> HoldStore:
    """The fastest store for the database behind ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return SqliteHoldStore(engine, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresHoldStore(engine, dsn)
    return GenericHoldStore(engine)
