"""The ledger audit: every invariant of the money path, checked against the database.

- each account: balance >= 0, and balance + live holds == the sum of its ledger entries;
- each charge matches a logged request of the same id and amount, and no request is
  charged twice;
- each request logged as charged has its ledger charge;
- each key: token counters >= 0, used tokens within the quota, and reserved tokens equal to
  the tokens of its live holds.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vaultgate.billing.ledger import CHARGE
from vaultgate.storage.tables import api_keys, balances, ledger_entries, request_logs, reservations


async def _account_problems(conn: AsyncConnection) -> list[str]:
    sums = dict(
        (await conn.execute(
            select(ledger_entries.c.user_id, func.sum(ledger_entries.c.amount_micros))
            .group_by(ledger_entries.c.user_id)
        )).all()
    )  # fmt: skip
    held = dict(
        (await conn.execute(
            select(reservations.c.user_id, func.sum(reservations.c.amount_micros))
            .group_by(reservations.c.user_id)
        )).all()
    )  # fmt: skip
    problems = []
    for user_id, balance in (
        await conn.execute(select(balances.c.user_id, balances.c.balance_micros))
    ).all():
        if balance < 0:
            problems.append(f"user {user_id}: balance {balance} is below zero")
        expected = int(sums.get(user_id) or 0)
        actual = balance + int(held.get(user_id) or 0)
        if actual != expected:
            problems.append(
                f"user {user_id}: balance {balance} + holds {held.get(user_id) or 0} "
                f"!= ledger sum {expected}"
            )
    return problems


async def _charge_problems(conn: AsyncConnection) -> list[str]:
    problems = []
    duplicates = (await conn.execute(
        select(ledger_entries.c.request_id, func.count())
        .where(ledger_entries.c.kind == CHARGE)
        .group_by(ledger_entries.c.request_id).having(func.count() > 1)
    )).all()  # fmt: skip
    problems += [f"request {rid}: charged {n} times" for rid, n in duplicates]
    logged = (
        select(request_logs.c.request_id, request_logs.c.charged_micros)
        .where(request_logs.c.charged_micros > 0).subquery()
    )  # fmt: skip
    mismatched = (await conn.execute(
        select(ledger_entries.c.request_id, ledger_entries.c.amount_micros,
               logged.c.charged_micros)
        .select_from(ledger_entries.outerjoin(
            logged, logged.c.request_id == ledger_entries.c.request_id))
        .where(ledger_entries.c.kind == CHARGE)
    )).all()  # fmt: skip
    for request_id, amount, charged in mismatched:
        if charged is None:
            problems.append(f"request {request_id}: charge {-amount} has no logged request")
        elif -amount != charged:
            problems.append(f"request {request_id}: charge {-amount} != logged {charged}")
    unbilled = (await conn.execute(
        select(request_logs.c.request_id)
        .select_from(request_logs.outerjoin(
            ledger_entries, ledger_entries.c.request_id == request_logs.c.request_id))
        .where(request_logs.c.charged_micros > 0, ledger_entries.c.id.is_(None))
    )).all()  # fmt: skip
    problems += [f"request {rid}: logged as charged but no ledger charge" for (rid,) in unbilled]
    return problems


async def _key_problems(conn: AsyncConnection) -> list[str]:
    held = dict(
        (await conn.execute(
            select(reservations.c.key_id, func.sum(reservations.c.tokens))
            .group_by(reservations.c.key_id)
        )).all()
    )  # fmt: skip
    problems = []
    rows = (
        await conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.token_quota,
                api_keys.c.tokens_used,
                api_keys.c.tokens_reserved,
            )
        )
    ).all()
    for key_id, quota, used, reserved in rows:
        if used < 0 or reserved < 0:
            problems.append(f"key {key_id}: negative token counters ({used}, {reserved})")
        if quota is not None and used > quota:
            problems.append(f"key {key_id}: used {used} tokens, over its quota {quota}")
        if reserved != int(held.get(key_id) or 0):
            problems.append(
                f"key {key_id}: {reserved} tokens reserved but holds total {held.get(key_id) or 0}"
            )
    return problems


async def audit_ledger(engine: AsyncEngine) -> list[str]:
    """Every mismatch found, in words; empty when the books are clean.

    All checks read one snapshot, so that a server settling batches meanwhile cannot make
    a balance from before a batch disagree with a ledger from after it.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The driver opens no transaction for reads; an explicit one pins the snapshot.
            await conn.exec_driver_sql("BEGIN")
        else:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
        try:
            return (
                await _account_problems(conn)
                + await _charge_problems(conn)
                + await _key_problems(conn)
            )
        finally:
            await conn.rollback()
