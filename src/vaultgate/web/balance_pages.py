"""Balance: the current balance, top-ups, redeem codes and the ledger with running balance;
admins also grant credit and make redeem codes here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.accounts.users import find_user_by_email
from vaultgate.billing.ledger import GRANT, balance_of, credit, history
from vaultgate.billing.pricing import parse_amount
from vaultgate.billing.redeem import MAX_BATCH, create_codes, redeem
from vaultgate.bounds import parse_natural, parse_whole
from vaultgate.errors import InvalidRequest, VaultGateError
from vaultgate.storage.tables import ledger_entries
from vaultgate.web.render import page, usd
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

PAGE_SIZE = 25


async def _running_totals(state: WebState, user_id: int, entries: list[Any]) -> list[int]:
    """The ledger total just after each entry (entries newest first)."""
    if not entries:
        return []
    async with state.engine.connect() as conn:
        total = await conn.scalar(
            select(func.coalesce(func.sum(ledger_entries.c.amount_micros), 0)).where(
                ledger_entries.c.user_id == user_id, ledger_entries.c.id <= entries[0].id
            )
        )
    running, totals = int(total or 0), []
    for entry in entries:
        totals.append(running)
        running -= entry.amount_micros
    return totals


async def _act(request: Request, signed_in: PageSession) -> str:
    """Carry out the posted form; return the message to show."""
    state: WebState = request.app.state.web
    form = await request.form()
    action = str(form.get("action") or "")
    user = signed_in.session.user
    if action == "redeem":
        amount = await redeem(state.engine, user_id=user.id, code=str(form.get("code") or ""))
        return f"Code redeemed: {usd(amount)} added."
    if action == "grant" and user.is_admin:
        target = await find_user_by_email(state.engine, str(form.get("email") or ""))
        if target is None:
            raise InvalidRequest("no user with that email")
        micros = parse_amount(str(form.get("amount") or ""))
        await credit(
            state.engine,
            user_id=target.id,
            kind=GRANT,
            amount_micros=micros,
            note=str(form.get("note") or "admin grant"),
            actor_id=user.id,
        )
        return f"Granted {usd(micros)} to {target.email}."
    if action == "codes" and user.is_admin:
        count = parse_whole(str(form.get("count") or ""), param="count", low=1, high=MAX_BATCH)
        codes = await create_codes(
            state.engine,
            count=count,
            amount_micros=parse_amount(str(form.get("amount") or "")),
            created_by=user.id,
        )
        request.state.codes = codes
        noun = "code" if len(codes) == 1 else "codes"
        return f"Made {len(codes)} {noun}. Copy them now: they are not shown again."
    raise InvalidRequest("unknown action")


async def balance_page(request: Request, signed_in: PageSession) -> Response:
    """The balance, its history and the top-up forms."""
    state: WebState = request.app.state.web
    user = signed_in.session.user
    message, error, status = None, None, 200
    if request.method == "POST":
        try:
            message = await _act(request, signed_in)
        except VaultGateError as failure:
            error, status = failure.message, 400
    before_id = parse_natural(request.query_params.get("before"))
    entries = await history(state.engine, user.id, limit=PAGE_SIZE, before_id=before_id)
    return page(request, "balance.html", {
        "balance": await balance_of(state.engine, user.id),
        "entries": list(zip(entries, await _running_totals(state, user.id, entries),
                            strict=True)),
        "next_before": entries[-1].id if len(entries) == PAGE_SIZE else None,
        "message": message, "error": error, "codes": getattr(request.state, "codes", None),
        "payments": bool(state.settings.stripe_secret_key and
                         state.settings.stripe_webhook_secret),
    }, signed_in=signed_in, status=status)  # fmt: skip
