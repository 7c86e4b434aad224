"""Balance, ledger history, redeem codes and payment-provider top-ups."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sqlalchemy import func, select

from vaultgate.api.deps import CallerDep, api_state
from vaultgate.api.params import BeforeId, PageSize
from vaultgate.api.schemas import BalanceOut, CheckoutBody, LedgerEntryOut, RedeemBody
from vaultgate.billing.ledger import balance_of, history
from vaultgate.billing.payments import apply_event, create_checkout, verify_event
from vaultgate.billing.pricing import format_micros
from vaultgate.billing.redeem import redeem
from vaultgate.errors import NotFound, RateLimited
from vaultgate.storage.tables import reservations

router = APIRouter(tags=["credit"])

REDEEM_ATTEMPTS_PER_MINUTE = 10


@router.get("/balance")
async def get_balance(request: Request, caller: CallerDep) -> BalanceOut:
    """The spendable balance, and what requests in flight hold."""
    state = api_state(request)
    balance = await balance_of(state.engine, caller.user.id)
    async with state.engine.connect() as conn:
        held = await conn.scalar(
            select(func.coalesce(func.sum(reservations.c.amount_micros), 0))
            .where(reservations.c.user_id == caller.user.id)
        )  # fmt: skip
    return BalanceOut(
        balance_micros=balance, balance=format_micros(balance), held_micros=int(held or 0)
    )


@router.get("/ledger")
async def get_ledger(
    request: Request,
    caller: CallerDep,
    limit: PageSize = 50,
    before_id: BeforeId = None,
) -> list[LedgerEntryOut]:
    """The account's ledger, newest first; page with ``before_id``."""
    entries = await history(
        api_state(request).engine, caller.user.id, limit=limit, before_id=before_id
    )
    return [
        LedgerEntryOut(
            id=e.id, kind=e.kind, amount_micros=e.amount_micros,
            amount=format_micros(e.amount_micros) if e.amount_micros >= 0
            else "-" + format_micros(-e.amount_micros),
            created_at=e.created_at, request_id=e.request_id, model=e.model, note=e.note,
            estimated=e.estimated,
        )
        for e in entries
    ]  # fmt: skip


@router.post("/redeem")
async def redeem_code(body: RedeemBody, request: Request, caller: CallerDep) -> BalanceOut:
    """Redeem a code; each code works once."""
    state = api_state(request)
    decision = await state.limiter.hit(
        f"redeem:{caller.user.id}", limit=REDEEM_ATTEMPTS_PER_MINUTE, weight=1,
        member=secrets.token_hex(8),
    )  # fmt: skip
    if not decision.allowed:
        raise RateLimited("Too many redeem attempts; try again in a minute.")
    await redeem(state.engine, user_id=caller.user.id, code=body.code)
    return await get_balance(request, caller)


@router.post("/billing/checkout")
async def checkout(body: CheckoutBody, request: Request, caller: CallerDep) -> dict[str, str]:
    """Start a payment-provider checkout; returns the URL to send the user to."""
    state = api_state(request)
    if state.stripe is None:
        raise NotFound("no payment provider is configured", code="payments_disabled")
    url = await create_checkout(
        state.stripe, user_id=caller.user.id, amount_cents=body.amount_cents
    )
    return {"url": url}


@router.post("/billing/stripe/webhook", include_in_schema=False)
async def stripe_webhook(
    request: Request,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> dict[str, str]:
    """Stripe's events: verified by signature, each credited at most once."""
    state = api_state(request)
    if state.stripe is None:
        raise NotFound("no payment provider is configured", code="payments_disabled")
    payload = await request.body()
    event = verify_event(state.stripe, payload, stripe_signature)
    outcome = await apply_event(state.engine, event, currency=state.stripe.currency)
    return {"status": outcome}
