"""Holding a request's maximum cost and tokens before it is forwarded.

``reserve`` runs one short transaction of conditional updates, so it is exact under any
concurrency and across processes sharing the database: the key must still be live and have
quota for the tokens, the account must have balance for the money, or nothing changes. The
request-log writer settles a hold later, in the same transaction that writes the request's
log row and its ledger charge; holds orphaned by a crash are released by ``release_stale``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vaultgate.errors import AuthenticationFailed, InsufficientBalance, QuotaExhausted
from vaultgate.storage.tables import api_keys, balances, reservations


@dataclass(frozen=True, slots=True)
class Hold:
    """Money and tokens held for one request in flight."""

    id: str
    user_id: int
    key_id: int
    amount_micros: int
    tokens: int


class StaleKey(Exception):
    """The key was edited since this process cached it: reload it and admit again."""


async def explain_refusal(
    engine: AsyncEngine, key_id: int, tokens: int, version: dt.datetime | None
) -> Exception:
    """Why the key part of a hold was refused: 401, StaleKey or 429 (quota)."""
    async with engine.connect() as conn:
        return await _why_key_refused(conn, key_id, tokens, version)


async def _why_key_refused(
    conn: AsyncConnection, key_id: int, tokens: int, version: dt.datetime | None
) -> Exception:
    row = (
        await conn.execute(
            select(api_keys.c.revoked_at, api_keys.c.expires_at, api_keys.c.token_quota,
                   api_keys.c.tokens_used, api_keys.c.tokens_reserved, api_keys.c.updated_at)
            .where(api_keys.c.id == key_id)
        )
    ).first()  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        return AuthenticationFailed("API key is revoked or expired")
    if version is not None and row.updated_at != version:
        return StaleKey()
    left = max(row.token_quota - row.tokens_used - row.tokens_reserved, 0)
    return QuotaExhausted(
        f"This key's token quota cannot cover this request: it may need up to {tokens} "
        f"tokens and {left} remain. Ask for fewer tokens (max_tokens, n) or raise the quota.",
    )


async def reserve(
    engine: AsyncEngine,
    *,
    user_id: int,
    key_id: int,
    amount_micros: int,
    tokens: int,
    key_version: dt.datetime | None = None,
) -> Hold:
    """Hold money and tokens for a request, or raise 401, 429 (quota) or 402.

    With ``key_version`` (the cached key's ``updated_at``) a key edited by any process
    since it was cached raises StaleKey, so edits apply to the very next request.
    """
    hold = Hold("rsv_" + secrets.token_hex(12), user_id, key_id, amount_micros, tokens)
    now = dt.datetime.now(dt.UTC)
    async with engine.begin() as conn:
        key_ok = await conn.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
                true() if key_version is None else api_keys.c.updated_at == key_version,
                or_(
                    api_keys.c.token_quota.is_(None),
                    api_keys.c.tokens_used + api_keys.c.tokens_reserved + tokens
                    <= api_keys.c.token_quota,
                ),
            )
            .values(tokens_reserved=api_keys.c.tokens_reserved + tokens)
        )
        if key_ok.rowcount != 1:
            raise await _why_key_refused(conn, key_id, tokens, key_version)
        if amount_micros:
            paid = await conn.execute(
                update(balances)
                .where(balances.c.user_id == user_id,
                       balances.c.balance_micros >= amount_micros)
                .values(balance_micros=balances.c.balance_micros - amount_micros)
            )  # fmt: skip
            if paid.rowcount != 1:
                raise InsufficientBalance(
                    "Your credit balance is too low for this request: it may cost up to "
                    f"{amount_micros} micro-USD. Top up, or ask for less (max_tokens, n)."
                )
        await conn.execute(
            insert(reservations).values(
                id=hold.id, user_id=user_id, key_id=key_id, amount_micros=amount_micros,
                tokens=tokens, created_at=now,
            )
        )  # fmt: skip
    return hold


async def release_stale(engine: AsyncEngine, *, older_than: dt.timedelta) -> int:
    """Return the holds of requests that can no longer settle (their process died)."""
    cutoff = dt.datetime.now(dt.UTC) - older_than
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(reservations).where(reservations.c.created_at < cutoff))
        ).all()
    released = 0
    for row in rows:
        async with engine.begin() as conn:
            gone = await conn.execute(delete(reservations).where(reservations.c.id == row.id))
            if gone.rowcount != 1:
                continue
            await refund_hold(conn, row.user_id, row.key_id, row.amount_micros, row.tokens)
            released += 1
    return released


async def refund_hold(
    conn: AsyncConnection, user_id: int, key_id: int, amount_micros: int, tokens: int
) -> None:
    """Give back a whole hold (inside the caller's transaction); the key row is locked
    before the balance row, in the same order as everywhere else."""
    if tokens:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(tokens_reserved=api_keys.c.tokens_reserved - tokens)
        )
    if amount_micros:
        await conn.execute(
            update(balances)
            .where(balances.c.user_id == user_id)
            .values(balance_micros=balances.c.balance_micros + amount_micros)
        )
