"""The account's request log and notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from vaultgate.api.deps import CallerDep, api_state
from vaultgate.api.params import BeforeId, KeyFilter, PageSize, StatusFilter
from vaultgate.api.schemas import NotificationOut, UsageOut
from vaultgate.storage.tables import notifications, request_logs

router = APIRouter(tags=["usage"])


@router.get("/usage")
async def get_usage(
    request: Request,
    caller: CallerDep,
    limit: PageSize = 50,
    before_id: BeforeId = None,
    key_id: KeyFilter = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    status: StatusFilter = None,
) -> list[UsageOut]:
    """The account's requests, newest first; page with ``before_id``."""
    query = (
        select(request_logs)
        .where(request_logs.c.user_id == caller.user.id)
        .order_by(request_logs.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(request_logs.c.id < before_id)
    if key_id is not None:
        query = query.where(request_logs.c.key_id == key_id)
    if model is not None:
        query = query.where(request_logs.c.model == model)
    if status is not None:
        query = query.where(request_logs.c.status == status)
    async with api_state(request).engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [UsageOut.model_validate(row._asdict()) for row in rows]


@router.get("/notifications")
async def get_notifications(request: Request, caller: CallerDep) -> list[NotificationOut]:
    """The account's latest notifications."""
    query = (
        select(notifications)
        .where(notifications.c.user_id == caller.user.id)
        .order_by(notifications.c.id.desc())
        .limit(100)
    )
    async with api_state(request).engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [NotificationOut.model_validate(row._asdict()) for row in rows]
