"""Admin: every account with its balance, and the health of every deployment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.bounds import parse_natural
from vaultgate.routing.router import deployment_id
from vaultgate.storage.tables import balances, users
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

PAGE_SIZE = 100
CLOSED = {"status": "closed", "consecutive_failures": 0, "cooldown_remaining_s": 0.0}


async def _users(state: WebState, after: int | None) -> list[Any]:
    query = (
        select(users.c.id, users.c.email, users.c.username, users.c.is_admin,
               users.c.is_active, balances.c.balance_micros)
        .select_from(users.outerjoin(balances, balances.c.user_id == users.c.id))
        .order_by(users.c.id).limit(PAGE_SIZE + 1)
    )  # fmt: skip
    if after is not None:
        query = query.where(users.c.id > after)
    async with state.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def deployment_health(state: WebState) -> list[dict[str, object]]:
    """Every deployment of every model, with its breaker's state in this process."""
    known = state.breakers.snapshot()
    return [
        {"model": model.id, "provider": deployment.provider, "upstream": deployment.upstream,
         "priority": deployment.priority, **known.get(deployment_id(deployment), CLOSED)}
        for model in sorted(state.models.values(), key=lambda m: m.id)
        for deployment in model.deployments
    ]  # fmt: skip


async def admin_page(request: Request, signed_in: PageSession) -> Response:
    """Users, providers and deployment health (admins only: see the route's guard)."""
    state: WebState = request.app.state.web
    raw = request.query_params.get("after", "")
    rows = await _users(state, parse_natural(raw))
    deployments = deployment_health(state)
    return page(request, "admin.html", {
        "users": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        "deployments": deployments,
        "providers": sorted({str(d["provider"]) for d in deployments}),
        "model_count": len(state.models),
    }, signed_in=signed_in)  # fmt: skip
