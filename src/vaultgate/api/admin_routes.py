"""Admin-only: users, credit grants and redeem codes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from vaultgate.accounts.users import User, find_user_by_email
from vaultgate.api.auth_routes import user_out
from vaultgate.api.deps import AdminDep, api_state
from vaultgate.api.schemas import BalanceOut, CodesBody, CreditBody, UserOut
from vaultgate.billing.ledger import GRANT, balance_of, credit
from vaultgate.billing.pricing import format_micros, parse_amount
from vaultgate.billing.redeem import create_codes
from vaultgate.errors import NotFound
from vaultgate.routing.router import deployment_id
from vaultgate.storage.tables import users

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users")
async def list_users(request: Request, admin: AdminDep) -> list[UserOut]:
    """Every account."""
    async with api_state(request).engine.connect() as conn:
        rows = (await conn.execute(
            select(users.c.id, users.c.email, users.c.username, users.c.is_admin,
                   users.c.is_active).order_by(users.c.id)
        )).all()  # fmt: skip
    return [user_out(User(*row)) for row in rows]


@router.post("/credits")
async def grant_credit(body: CreditBody, request: Request, admin: AdminDep) -> BalanceOut:
    """Grant credit to an account."""
    state = api_state(request)
    target = await find_user_by_email(state.engine, body.email)
    if target is None:
        raise NotFound(f"no user with email {body.email}", code="user_not_found")
    await credit(
        state.engine,
        user_id=target.id,
        kind=GRANT,
        amount_micros=parse_amount(body.amount),
        note=body.note or "admin grant",
        actor_id=admin.user.id,
    )
    balance = await balance_of(state.engine, target.id)
    return BalanceOut(balance_micros=balance, balance=format_micros(balance), held_micros=0)


@router.post("/redeem-codes", status_code=201)
async def make_codes(body: CodesBody, request: Request, admin: AdminDep) -> dict[str, object]:
    """Make a batch of redeem codes; the codes are shown only in this response."""
    codes = await create_codes(
        api_state(request).engine,
        count=body.count,
        amount_micros=parse_amount(body.amount),
        created_by=admin.user.id,
    )
    return {"codes": codes, "amount": body.amount}


@router.get("/deployments")
async def deployment_health(request: Request, admin: AdminDep) -> dict[str, object]:
    """Every deployment of every offered model, with its circuit breaker's state here."""
    state = api_state(request)
    known = state.breakers.snapshot()
    deployments = []
    for model in sorted(state.models.values(), key=lambda m: m.id):
        for deployment in model.deployments:
            key = deployment_id(deployment)
            health = known.get(
                key, {"status": "closed", "consecutive_failures": 0, "cooldown_remaining_s": 0.0}
            )
            deployments.append({
                "model": model.id, "provider": deployment.provider,
                "upstream": deployment.upstream, "priority": deployment.priority,
                "weight": deployment.weight, **health,
            })  # fmt: skip
    return {"deployments": deployments}
