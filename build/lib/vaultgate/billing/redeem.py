"""Redeem codes: an admin makes a batch, each code credits its amount exactly once.

Codes are stored only as hashes. Redeeming claims the code with one conditional update,
so two requests presenting the same code at the same instant cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.billing.ledger import TOPUP, post_entry
from vaultgate.errors import InvalidRequest
from vaultgate.storage.tables import redeem_codes

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_BATCH = 1000


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def new_code() -> str:
    """A code like ``VG-ABCD-EFGH-JKLM-NPQR`` (80 random bits)."""
    groups = ["".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(4)]
    return "VG-" + "-".join(groups)


async def create_codes(
    engine: AsyncEngine, *, count: int, amount_micros: int, created_by: int | None
) -> list[str]:
    """Make ``count`` codes worth ``amount_micros`` each; the codes are shown once."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidRequest(f"count must be between 1 and {MAX_BATCH}", param="count")
    if amount_micros <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    batch = "batch_" + secrets.token_hex(6)
    now = dt.datetime.now(dt.UTC)
    codes = [new_code() for _ in range(count)]
    rows = [
        {"code_hash": _hash(code), "amount_micros": amount_micros, "batch": batch,
         "created_at": now, "created_by": created_by}
        for code in codes
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(insert(redeem_codes), rows)
    return codes


async def redeem(engine: AsyncEngine, *, user_id: int, code: str) -> int:
    """Credit a code to an account; returns the amount. InvalidRequest if not redeemable."""
    now = dt.datetime.now(dt.UTC)
    digest = _hash(code)
    async with engine.begin() as conn:
        claimed = await conn.execute(
            update(redeem_codes)
            .where(redeem_codes.c.code_hash == digest, redeem_codes.c.redeemed_by.is_(None))
            .values(redeemed_by=user_id, redeemed_at=now)
        )
        if claimed.rowcount != 1:
            raise InvalidRequest(
                "This code is unknown or has already been redeemed.",
                param="code",
                code="invalid_code",
            )
        code_id, amount = (await conn.execute(
            select(redeem_codes.c.id, redeem_codes.c.amount_micros)
            .where(redeem_codes.c.code_hash == digest)
        )).one()  # fmt: skip
        await post_entry(
            conn,
            user_id=user_id,
            kind=TOPUP,
            amount_micros=amount,
            external_ref=f"redeem:{code_id}",
            note="redeem code",
        )
    return int(amount)
