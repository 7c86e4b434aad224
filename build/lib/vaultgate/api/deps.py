"""Who is calling the management API: a signed-in browser session (with its CSRF token on
state-changing requests) or an admin's API key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from vaultgate.accounts.sessions import find_session
from vaultgate.accounts.users import User, find_user_by_id
from vaultgate.api.state import ApiState
from vaultgate.errors import AuthenticationFailed, VaultGateError
from vaultgate.gateway.context import bearer_token

SESSION_COOKIE = "vg_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Forbidden(VaultGateError):
    """The caller is known but may not do this (403)."""

    status = 403
    error_type = "permission_error"
    code = "forbidden"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of a management request."""

    user: User
    via_key: bool


def api_state(request: Request) -> ApiState:
    """The shared state the app factory attached."""
    state: ApiState = request.app.state.api
    return state


async def current_caller(request: Request) -> Caller:
    """Authenticate by admin key or by session cookie (+ CSRF for unsafe methods)."""
    state = api_state(request)
    token = bearer_token(request)
    if token:
        record = await state.keys.authenticate(token)
        user = await find_user_by_id(state.engine, record.user_id)
        if user is None or not user.is_admin:
            raise Forbidden("only an admin's API key may call the management API")
        return Caller(user, via_key=True)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await find_session(state.engine, cookie) if cookie else None
    if session is None:
        raise AuthenticationFailed("sign in first", code="not_signed_in")
    if request.method not in SAFE_METHODS:
        # Compared as bytes: compare_digest refuses str with non-ASCII characters, and a
        # header may carry any Latin-1 text.
        sent = request.headers.get(CSRF_HEADER, "").encode()
        if not hmac.compare_digest(sent, session.csrf_token.encode()):
            raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    return Caller(session.user, via_key=False)


async def current_admin(request: Request) -> Caller:
    """Like current_caller, but only for admins."""
    caller = await current_caller(request)
    if not caller.user.is_admin:
        raise Forbidden("admins only")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
AdminDep = Annotated[Caller, Depends(current_admin)]
