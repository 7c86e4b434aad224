"""Settling requests: the request-log rows, the ledger charges and the release of holds of a
batch of finished requests, written in one transaction.

Because a request's charge and its log row commit together, the ledger audit can match them
one to one. A hold is deleted in the same transaction that applies it, so it is settled at
most once; a hold that is already gone (released after a crash) is charged straight from the
balance instead, never below zero.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vaultgate.billing.ledger import CHARGE
from vaultgate.billing.reservations import Hold
from vaultgate.storage.log_rows import insert_log_rows
from vaultgate.storage.tables import api_keys, balances, ledger_entries, request_logs, reservations

log = logging.getLogger("vaultgate.billing")


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
    charged_micros: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    error: str | None = None

    def row(self) -> dict[str, Any]:
        """The entry as a table row (without ``asdict``'s deep copies)."""
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in fields(RequestLogEntry))


@dataclass(slots=True)
class FinishedRequest:
    """A log row, and when the request held money, what to settle."""

    entry: RequestLogEntry
    hold: Hold | None = None
    tokens_used: int = 0
    prices: dict[str, Any] = field(default_factory=dict)


class StaleHold(Exception):
    """A hold in the batch no longer exists; the batch is settled one request at a time."""


_REFUND = (
    update(balances)
    .where(balances.c.user_id == bindparam("p_user"))
    .values(balance_micros=balances.c.balance_micros + bindparam("p_refund"))
)
_KEY_TOKENS = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("p_key"))
    .values(
        tokens_reserved=api_keys.c.tokens_reserved - bindparam("p_held"),
        tokens_used=api_keys.c.tokens_used + bindparam("p_used"),
        last_used_at=bindparam("p_when"),
    )
)


def _charge_row(item: FinishedRequest) -> dict[str, Any]:
    entry = item.entry
    return {
        "user_id": entry.user_id, "kind": CHARGE, "amount_micros": -entry.charged_micros,
        "created_at": entry.created_at, "request_id": entry.request_id,
        "external_ref": None, "key_id": entry.key_id, "model": entry.model,
        "prices": item.prices or None, "estimated": entry.usage_estimated, "note": None,
        "actor_id": None,
    }  # fmt: skip


async def write_batch(conn: AsyncConnection, batch: Sequence[FinishedRequest]) -> None:
    """Write a batch inside the caller's transaction; StaleHold if a hold is gone."""
    ids = [item.hold.id for item in batch if item.hold is not None]
    if ids:
        gone = await conn.execute(delete(reservations).where(reservations.c.id.in_(ids)))
        if gone.rowcount != len(ids):
            raise StaleHold()
    await _apply(conn, batch)


def _refunds_by_user(held: Sequence[FinishedRequest]) -> list[dict[str, int]]:
    """One refund per account: what its holds took beyond what was charged."""
    totals: dict[int, int] = defaultdict(int)
    for item in held:
        assert item.hold is not None
        totals[item.hold.user_id] += item.hold.amount_micros - item.entry.charged_micros
    return [{"p_user": user, "p_refund": amount} for user, amount in totals.items() if amount]


def _tokens_by_key(held: Sequence[FinishedRequest]) -> list[dict[str, Any]]:
    """One token update per key: holds released, tokens used, latest use."""
    totals: dict[int, dict[str, Any]] = {}
    for item in held:
        assert item.hold is not None
        row = totals.setdefault(
            item.hold.key_id,
            {"p_key": item.hold.key_id, "p_held": 0, "p_used": 0, "p_when": item.entry.created_at},
        )
        row["p_held"] += item.hold.tokens
        row["p_used"] += item.tokens_used
        row["p_when"] = max(row["p_when"], item.entry.created_at)
    return list(totals.values())


async def _apply(conn: AsyncConnection, batch: Sequence[FinishedRequest]) -> None:
    """Log rows, charges, refunds and token counts of requests whose holds are deleted.

    Refunds and token counts are summed per account and per key first, so a batch costs a
    handful of statements however many requests it settles.
    """
    # The hourly usage rollups are updated here too; their rows are locked before any key
    # or balance, in one order, so batches never deadlock on them either.
    await insert_log_rows(conn, [item.entry.row() for item in batch])
    held = [item for item in batch if item.hold is not None]
    charges = [_charge_row(item) for item in batch if item.entry.charged_micros > 0]
    if charges:
        await conn.execute(insert(ledger_entries), charges)
    # Rows are locked in one order everywhere — keys by id, then balances by account —
    # the order in which taking a hold locks them, so the two can never deadlock.
    tokens = sorted(_tokens_by_key(held), key=lambda row: row["p_key"])
    if tokens:
        await conn.execute(_KEY_TOKENS, tokens)
    refunds = sorted(_refunds_by_user(held), key=lambda row: row["p_user"])
    if refunds:
        await conn.execute(_REFUND, refunds)


async def write_one(conn: AsyncConnection, item: FinishedRequest) -> None:
    """Settle a single request, coping with a hold that was already released."""
    entry = item.entry
    seen = await conn.scalar(
        select(request_logs.c.id).where(request_logs.c.request_id == entry.request_id)
    )
    if seen is not None:
        return  # written by an earlier attempt whose commit we did not see
    hold = item.hold
    if hold is not None:
        gone = await conn.execute(delete(reservations).where(reservations.c.id == hold.id))
        if gone.rowcount != 1:
            await _charge_without_hold(conn, item)
            item = FinishedRequest(entry, None, item.tokens_used, item.prices)
    await _apply(conn, [item])


async def _charge_without_hold(conn: AsyncConnection, item: FinishedRequest) -> None:
    """The hold was returned already: take the charge from the balance if it is there."""
    entry = item.entry
    if item.tokens_used and entry.key_id is not None:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == entry.key_id)
            .values(tokens_used=api_keys.c.tokens_used + item.tokens_used)
        )  # fmt: skip
    paid = await conn.execute(
        update(balances)
        .where(balances.c.user_id == entry.user_id,
               balances.c.balance_micros >= entry.charged_micros)
        .values(balance_micros=balances.c.balance_micros - entry.charged_micros)
    )  # fmt: skip
    if paid.rowcount != 1:
        log.error(
            "charge written off: balance too low after hold release",
            extra={
                "fields": {"request_id": entry.request_id, "charged_micros": entry.charged_micros}
            },
        )
        entry.charged_micros = 0
