"""The dashboard overview and the models page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.billing.ledger import balance_of
from vaultgate.storage.tables import notifications, request_logs
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState


async def _spend_since(state: WebState, user_id: int, since: dt.datetime) -> tuple[int, int]:
    query = select(func.count(), func.coalesce(func.sum(request_logs.c.charged_micros), 0)).where(
        request_logs.c.user_id == user_id, request_logs.c.created_at >= since
    )
    async with state.engine.connect() as conn:
        count, spent = (await conn.execute(query)).one()
    return int(count), int(spent)


async def overview(request: Request, signed_in: PageSession) -> Response:
    """Balance, spend and requests today and this month, the latest alerts."""
    state: WebState = request.app.state.web
    user = signed_in.session.user
    now = dt.datetime.now(dt.UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    requests_today, spent_today = await _spend_since(state, user.id, today)
    requests_month, spent_month = await _spend_since(state, user.id, month)
    async with state.engine.connect() as conn:
        alerts = (await conn.execute(
            select(notifications).where(notifications.c.user_id == user.id)
            .order_by(notifications.c.id.desc()).limit(5)
        )).all()  # fmt: skip
    return page(request, "overview.html", {
        "balance": await balance_of(state.engine, user.id),
        "requests_today": requests_today, "spent_today": spent_today,
        "requests_month": requests_month, "spent_month": spent_month,
        "alerts": alerts,
    }, signed_in=signed_in)  # fmt: skip


async def models(request: Request, signed_in: PageSession) -> Response:
    """Every offered model, filtered by type, provider and text."""
    state: WebState = request.app.state.web
    kind = request.query_params.get("type", "")
    provider = request.query_params.get("provider", "")
    text = request.query_params.get("q", "").strip().lower()
    listed = [
        m for m in sorted(state.models.values(), key=lambda m: m.id)
        if (not kind or m.type == kind)
        and (not provider or provider in m.providers)
        and (not text or text in m.id.lower())
    ]  # fmt: skip
    providers = sorted({p for m in state.models.values() for p in m.providers})
    return page(request, "models.html", {
        "models": listed, "providers": providers, "type": kind, "provider": provider,
        "q": text, "total": len(state.models),
    }, signed_in=signed_in)  # fmt: skip
