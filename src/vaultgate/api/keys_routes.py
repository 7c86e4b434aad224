"""API keys of the signed-in account: create (shown once), list, edit, revoke."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select, update

from vaultgate.accounts.keys import (
    check_expiry,
    create_key,
    normalise_restrictions,
    revoke_key,
)
from vaultgate.api.deps import Caller, CallerDep, api_state
from vaultgate.api.params import KeyId
from vaultgate.api.schemas import KeyCreateBody, KeyCreatedOut, KeyOut, KeyUpdateBody
from vaultgate.errors import InvalidRequest, NotFound
from vaultgate.storage.tables import api_keys

router = APIRouter(prefix="/keys", tags=["keys"])


def _key_out(row: Any) -> KeyOut:
    return KeyOut(
        id=row.id, name=row.name, prefix=row.prefix, rpm=row.rpm_limit, tpm=row.tpm_limit,
        token_quota=row.token_quota, tokens_used=row.tokens_used,
        models=list(row.allowed_models) if row.allowed_models else None,
        expires_at=row.expires_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at,
        created_at=row.created_at,
    )  # fmt: skip


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


async def _owned_row(request: Request, caller: Caller, key_id: int) -> Any:
    async with api_state(request).engine.connect() as conn:
        row = (await conn.execute(
            select(api_keys).where(api_keys.c.id == key_id,
                                   api_keys.c.user_id == caller.user.id)
        )).first()  # fmt: skip
    if row is None:
        raise NotFound(f"no API key with id {key_id}", code="key_not_found")
    return row


@router.get("")
async def list_keys(request: Request, caller: CallerDep) -> list[KeyOut]:
    """Every key of the account, newest first; never the keys themselves."""
    async with api_state(request).engine.connect() as conn:
        rows = (await conn.execute(
            select(api_keys).where(api_keys.c.user_id == caller.user.id)
            .order_by(api_keys.c.id.desc())
        )).all()  # fmt: skip
    return [_key_out(row) for row in rows]


@router.post("", status_code=201)
async def make_key(body: KeyCreateBody, request: Request, caller: CallerDep) -> KeyCreatedOut:
    """Create a key; the response holds the key itself, which is never shown again."""
    state = api_state(request)
    check_expiry(body.expires_at)
    key, record = await create_key(
        state.engine, user_id=caller.user.id, name=body.name, rpm_limit=body.rpm,
        tpm_limit=body.tpm, token_quota=body.token_quota, allowed_models=body.models,
        expires_at=_aware(body.expires_at), offered=state.models,
    )  # fmt: skip
    row = await _owned_row(request, caller, record.id)
    return KeyCreatedOut(**_key_out(row).model_dump(), key=key)


@router.get("/{key_id}")
async def get_key(key_id: KeyId, request: Request, caller: CallerDep) -> KeyOut:
    """One key."""
    return _key_out(await _owned_row(request, caller, key_id))


@router.patch("/{key_id}")
async def edit_key(
    key_id: KeyId, body: KeyUpdateBody, request: Request, caller: CallerDep
) -> KeyOut:
    """Change a key's name or limits; every process applies it on its next sync."""
    state = api_state(request)
    await _owned_row(request, caller, key_id)
    given = body.model_fields_set
    columns = {
        "name": "name",
        "rpm": "rpm_limit",
        "tpm": "tpm_limit",
        "token_quota": "token_quota",
        "expires_at": "expires_at",
    }
    values: dict[str, Any] = {
        column: getattr(body, field) for field, column in columns.items() if field in given
    }
    if "rpm" in given and body.rpm is None:
        raise InvalidRequest("rpm cannot be removed", param="rpm")
    if "name" in given and body.name is None:
        raise InvalidRequest("name cannot be removed", param="name")
    if "expires_at" in given:
        check_expiry(body.expires_at)
        values["expires_at"] = _aware(body.expires_at)
    if "models" in given:
        values["allowed_models"] = normalise_restrictions(body.models, state.models)
    values["updated_at"] = dt.datetime.now(dt.UTC)
    async with state.engine.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(values))
    state.keys.forget(key_id)
    return _key_out(await _owned_row(request, caller, key_id))


@router.delete("/{key_id}", status_code=204)
async def delete_key(key_id: KeyId, request: Request, caller: CallerDep) -> None:
    """Revoke a key; it stops working at once."""
    state = api_state(request)
    await revoke_key(state.engine, key_id, user_id=caller.user.id)
    state.keys.forget(key_id)
