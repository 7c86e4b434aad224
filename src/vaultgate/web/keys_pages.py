"""API keys: create (shown once), list, edit, revoke with confirmation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vaultgate.accounts.keys import (
    DEFAULT_RPM,
    MAX_RPM,
    MAX_TOKEN_QUOTA,
    MAX_TPM,
    check_expiry,
    create_key,
    normalise_restrictions,
    revoke_key,
)
from vaultgate.bounds import parse_whole
from vaultgate.errors import InvalidRequest, VaultGateError
from vaultgate.storage.tables import api_keys
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

# The documented range of each number a key form may carry.
RANGES = {"rpm": (1, MAX_RPM), "tpm": (1, MAX_TPM), "token_quota": (0, MAX_TOKEN_QUOTA)}


def _optional_int(form: FormData, name: str) -> int | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    low, high = RANGES[name]
    return parse_whole(raw, param=name, low=low, high=high)


def _restrictions(form: FormData) -> list[str] | None:
    raw = str(form.get("models") or "")
    return [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()] or None


def _expiry(form: FormData) -> dt.datetime | None:
    raw = str(form.get("expires") or "").strip()
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest("expiry must be a date", param="expires") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _edited_expiry(form: FormData, current: dt.datetime | None) -> dt.datetime | None:
    """The expiry an edit asks for: the stored one when the form shows its date unchanged
    (the form has days only), else a new one, which must be in the future."""
    wanted = _expiry(form)
    if wanted is not None and current is not None and wanted.date() == current.date():
        return current
    check_expiry(wanted)
    return wanted


async def _key_rows(state: WebState, user_id: int) -> list[Any]:
    async with state.engine.connect() as conn:
        return list((await conn.execute(
            select(api_keys).where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.revoked_at.is_not(None), api_keys.c.id.desc())
        )).all())  # fmt: skip


async def _render(
    request: Request, signed_in: PageSession, status: int = 200, **context: Any
) -> Response:
    state: WebState = request.app.state.web
    rows = await _key_rows(state, signed_in.session.user.id)
    return page(
        request,
        "keys.html",
        {"keys": rows, "default_rpm": DEFAULT_RPM, "now": dt.datetime.now(dt.UTC), **context},
        signed_in=signed_in,
        status=status,
    )


async def keys_page(request: Request, signed_in: PageSession) -> Response:
    """GET lists the keys; POST creates one and shows it once."""
    if request.method == "GET":
        return await _render(request, signed_in)
    state: WebState = request.app.state.web
    form = await request.form()
    try:
        expires_at = _expiry(form)
        check_expiry(expires_at)
        key, record = await create_key(
            state.engine, user_id=signed_in.session.user.id,
            name=str(form.get("name") or ""), rpm_limit=_optional_int(form, "rpm") or DEFAULT_RPM,
            tpm_limit=_optional_int(form, "tpm"), token_quota=_optional_int(form, "token_quota"),
            allowed_models=_restrictions(form), expires_at=expires_at, offered=state.models,
        )  # fmt: skip
    except VaultGateError as error:
        return await _render(request, signed_in, status=400, error=error.message, form=dict(form))
    return await _render(request, signed_in, new_key=key, new_key_name=record.name)


async def _owned(state: WebState, user_id: int, key_id: int) -> Any:
    async with state.engine.connect() as conn:
        return (await conn.execute(
            select(api_keys).where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
        )).first()  # fmt: skip


async def edit_key(request: Request, signed_in: PageSession) -> Response:
    """GET shows a key's settings; POST saves them (applied on the next request)."""
    state: WebState = request.app.state.web
    key_id = int(request.path_params["key_id"])
    row = await _owned(state, signed_in.session.user.id, key_id)
    if row is None:
        return page(
            request,
            "error.html",
            {"status": 404, "message": "No such key."},
            signed_in=signed_in,
            status=404,
        )
    if request.method == "GET":
        return page(request, "key_edit.html", {"key": row}, signed_in=signed_in)
    form = await request.form()
    try:
        values = {
            "name": str(form.get("name") or "").strip() or row.name,
            "rpm_limit": _optional_int(form, "rpm") or DEFAULT_RPM,
            "tpm_limit": _optional_int(form, "tpm"),
            "token_quota": _optional_int(form, "token_quota"),
            "allowed_models": normalise_restrictions(_restrictions(form), state.models),
            "expires_at": _edited_expiry(form, row.expires_at),
            "updated_at": dt.datetime.now(dt.UTC),
        }
    except VaultGateError as error:
        return page(
            request,
            "key_edit.html",
            {"key": row, "error": error.message},
            signed_in=signed_in,
            status=400,
        )
    async with state.engine.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(values))
    state.keys.forget(key_id)
    return RedirectResponse("/dashboard/keys?saved=1", status_code=303)


async def revoke_key_page(request: Request, signed_in: PageSession) -> Response:
    """GET asks for confirmation; POST revokes the key at once."""
    state: WebState = request.app.state.web
    key_id = int(request.path_params["key_id"])
    row = await _owned(state, signed_in.session.user.id, key_id)
    if row is None or row.revoked_at is not None:
        return page(
            request,
            "error.html",
            {"status": 404, "message": "No such active key."},
            signed_in=signed_in,
            status=404,
        )
    if request.method == "GET":
        return page(request, "key_revoke.html", {"key": row}, signed_in=signed_in)
    await revoke_key(state.engine, key_id, user_id=signed_in.session.user.id)
    state.keys.forget(key_id)
    return RedirectResponse("/dashboard/keys?revoked=1", status_code=303)
