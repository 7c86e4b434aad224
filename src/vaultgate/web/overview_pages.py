"""The dashboard overview and the models page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.billing.ledger import balance_of
from vaultgate.storage.tables import notifications, usage_rollups
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState


async def _spend(
    state: WebState, user_id: int, *, month: dt.datetime, today: dt.datetime
) -> tuple[int, int, int, int]:
    """Requests and micro-USD charged since ``month`` and since ``today`` (whole UTC hours).

    Summed from the hourly usage rollups, which equal sums over the request log: a month is
    at most 744 hours of rollup rows per key and model, whatever the size of the log.
    """
    rollup = usage_rollups.c
    is_today = rollup.hour >= today
    query = select(
        func.sum(rollup.requests), func.sum(rollup.charged_micros),
        func.sum(case((is_today, rollup.requests), else_=0)),
        func.sum(case((is_today, rollup.charged_micros), else_=0)),
    ).where(rollup.user_id == user_id, rollup.hour >= month)  # fmt: skip
    async with state.engine.connect() as conn:
        row = (await conn.execute(query)).one()
    requests_month, spent_month, requests_today, spent_today = (int(v or 0) for v in row)
    return requests_today, spent_today, requests_month, spent_month


async def overview(request: Request, signed_in: PageSession) -> Response:
    """Balance, spend and requests today and this month (UTC), the latest alerts."""
    state: WebState = request.app.state.web
    user = signed_in.session.user
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    requests_today, spent_today, requests_month, spent_month = await _spend(
        state, user.id, month=today.replace(day=1), today=today
    )
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
