"""Alerts: the user's notifications (mark one or all read) and the alert thresholds."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vaultgate.bounds import parse_natural
from vaultgate.storage.tables import notifications
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

PAGE_SIZE = 50


async def _mark_read(state: WebState, user_id: int, raw_id: str) -> None:
    """Mark one notification (or, for ``all``, every unread one) of this user read."""
    query = update(notifications).where(
        notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
    )
    if raw_id != "all":
        query = query.where(notifications.c.id == (parse_natural(raw_id) or 0))
    async with state.engine.begin() as conn:
        await conn.execute(query.values(read_at=dt.datetime.now(dt.UTC)))


async def alerts_page(request: Request, signed_in: PageSession) -> Response:
    """GET lists the notifications, newest first; POST marks them read."""
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    if request.method == "POST":
        form = await request.form()
        await _mark_read(state, user_id, str(form.get("id") or ""))
        return RedirectResponse("/dashboard/alerts", status_code=303)

    before = parse_natural(request.query_params.get("before"))
    query = select(notifications).where(notifications.c.user_id == user_id)
    if before is not None:
        query = query.where(notifications.c.id < before)
    async with state.engine.connect() as conn:
        rows = list((await conn.execute(
            query.order_by(notifications.c.id.desc()).limit(PAGE_SIZE + 1)
        )).all())  # fmt: skip
    settings = state.settings
    return page(request, "alerts.html", {
        "alerts": rows[:PAGE_SIZE],
        "older": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        "unread": any(row.read_at is None for row in rows[:PAGE_SIZE]),
        "quota_percents": settings.alert_quota_percents,
        "balance_micros": settings.alert_balance_micros,
        "webhook": bool(settings.alert_webhook_url),
    }, signed_in=signed_in)  # fmt: skip
