"""The credit ledger: append-only entries whose sum is an account's money.

For every account, at every committed moment::

    balances.balance_micros + sum(live reservations) == sum(ledger entries)

and the balance never goes below zero (a check constraint backs the conditional updates).
Entries that come from outside (a Stripe event, a redeem code) carry a unique
``external_ref``, so delivering the same thing twice credits once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vaultgate.errors import InsufficientBalance, InvalidRequest
from vaultgate.storage.tables import balances, ledger_entries

GRANT = "grant"
TOPUP = "topup"
CHARGE = "charge"
REFUND = "refund"
ADJUSTMENT = "adjustment"
ENTRY_KINDS = (GRANT, TOPUP, CHARGE, REFUND, ADJUSTMENT)


class AlreadyApplied(Exception):
    """An entry with this external reference exists; nothing was changed."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger line, as shown in a history."""

    id: int
    kind: str
    amount_micros: int
    created_at: dt.datetime
    request_id: str | None
    model: str | None
    note: str | None
    estimated: bool


async def open_balance(conn: AsyncConnection, user_id: int) -> None:
    """Create the balance row of a new account (at zero)."""
    now = dt.datetime.now(dt.UTC)
    await conn.execute(insert(balances).values(user_id=user_id, balance_micros=0, updated_at=now))


async def post_entry(
    conn: AsyncConnection,
    *,
    user_id: int,
    kind: str,
    amount_micros: int,
    external_ref: str | None = None,
    note: str | None = None,
    actor_id: int | None = None,
) -> int:
    """Append an entry and move the balance with it, inside the caller's transaction.

    A negative amount needs the balance to cover it (InsufficientBalance otherwise). A
    repeated ``external_ref`` raises AlreadyApplied. After either error the caller's
    transaction must be rolled back, as ``engine.begin()`` does.
    """
    if kind not in ENTRY_KINDS:
        raise InvalidRequest(f"unknown ledger entry kind {kind!r}")
    if amount_micros == 0:
        raise InvalidRequest("amount must not be zero", param="amount")
    now = dt.datetime.now(dt.UTC)
    row = {
        "user_id": user_id, "kind": kind, "amount_micros": amount_micros, "created_at": now,
        "external_ref": external_ref, "note": note, "actor_id": actor_id, "estimated": False,
    }  # fmt: skip
    try:
        result = await conn.execute(
            insert(ledger_entries).values(row).returning(ledger_entries.c.id)
        )
    except IntegrityError:
        raise AlreadyApplied(external_ref) from None
    moved = await conn.execute(
        update(balances)
        .where(balances.c.user_id == user_id, balances.c.balance_micros + amount_micros >= 0)
        .values(balance_micros=balances.c.balance_micros + amount_micros, updated_at=now)
    )
    if moved.rowcount != 1:
        raise InsufficientBalance("the balance cannot cover this amount", param="amount")
    return int(result.scalar_one())


async def credit(
    engine: AsyncEngine,
    *,
    user_id: int,
    kind: str,
    amount_micros: int,
    external_ref: str | None = None,
    note: str | None = None,
    actor_id: int | None = None,
) -> int:
    """Post one entry in its own transaction; returns its id."""
    async with engine.begin() as conn:
        return await post_entry(
            conn, user_id=user_id, kind=kind, amount_micros=amount_micros,
            external_ref=external_ref, note=note, actor_id=actor_id,
        )  # fmt: skip


async def balance_of(engine: AsyncEngine, user_id: int) -> int:
    """The spendable balance (what is not held by requests in flight)."""
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(balances.c.balance_micros).where(balances.c.user_id == user_id)
        )
    return int(value or 0)


async def ledger_sum(engine: AsyncEngine, user_id: int) -> int:
    """The sum of every entry of an account."""
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(func.coalesce(func.sum(ledger_entries.c.amount_micros), 0)).where(
                ledger_entries.c.user_id == user_id
            )
        )
    return int(value or 0)


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row.id, kind=row.kind, amount_micros=row.amount_micros, created_at=row.created_at,
        request_id=row.request_id, model=row.model, note=row.note, estimated=row.estimated,
    )  # fmt: skip


async def history(
    engine: AsyncEngine, user_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[LedgerEntry]:
    """An account's entries, newest first, paged by id."""
    query = (
        select(ledger_entries)
        .where(ledger_entries.c.user_id == user_id)
        .order_by(ledger_entries.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(ledger_entries.c.id < before_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_entry(row) for row in rows]
