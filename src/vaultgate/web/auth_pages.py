"""Signing up, in and out, as HTML forms."""

from __future__ import annotations

import random

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vaultgate.accounts.sessions import SESSION_LIFETIME, open_session, revoke_session
from vaultgate.accounts.throttle import sign_in_refusal
from vaultgate.accounts.users import User, check_password, create_user
from vaultgate.api.deps import SESSION_COOKIE
from vaultgate.errors import VaultGateError
from vaultgate.web.render import page, safe_next
from vaultgate.web.security import csrf_ok, page_session
from vaultgate.web.state import WebState

ATTEMPTS_PER_MINUTE = 10


def _with_session_cookie(request: Request, response: Response, session_id: str) -> Response:
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return response


async def _signed_in_redirect(request: Request, user: User, target: str) -> Response:
    state: WebState = request.app.state.web
    session_id, _ = await open_session(state.engine, user.id)
    return _with_session_cookie(request, RedirectResponse(target, status_code=303), session_id)


async def _throttled(request: Request, subject: str) -> bool:
    state: WebState = request.app.state.web
    decision = await state.limiter.hit(
        subject, limit=ATTEMPTS_PER_MINUTE, weight=1, member=f"{random.getrandbits(64):x}"
    )
    return not decision.allowed


async def signin(request: Request) -> Response:
    """GET shows the form; POST checks the credentials and starts a session."""
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return page(request, "signin.html", {"next": target})
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    address = request.client.host if request.client else "unknown"
    state: WebState = request.app.state.web
    if await sign_in_refusal(state.limiter, email=email, address=address) is not None:
        return page(
            request,
            "signin.html",
            {
                "next": target,
                "email": email,
                "error": "Too many attempts. Wait a minute and try again.",
            },
            status=429,
        )
    user = await check_password(state.engine, email, password)
    if user is None:
        return page(
            request,
            "signin.html",
            {"next": target, "email": email, "error": "Wrong email or password."},
            status=401,
        )
    return await _signed_in_redirect(request, user, target)


async def signup(request: Request) -> Response:
    """GET shows the form; POST creates the account and signs it in."""
    if request.method == "GET":
        return page(request, "signup.html")
    form = await request.form()
    fields = {name: str(form.get(name, "")) for name in ("email", "username", "password")}
    address = request.client.host if request.client else "unknown"
    if await _throttled(request, f"register:{address}"):
        return page(
            request,
            "signup.html",
            {**fields, "password": "", "error": "Too many attempts. Wait a minute and try again."},
            status=429,
        )
    state: WebState = request.app.state.web
    try:
        user = await create_user(
            state.engine, email=fields["email"], username=fields["username"],
            password=fields["password"],
            starter_credit_micros=state.settings.starter_credit_micros,
        )  # fmt: skip
    except VaultGateError as error:
        return page(
            request,
            "signup.html",
            {**fields, "password": "", "error": error.message, "field": error.param},
            status=400,
        )
    return await _signed_in_redirect(request, user, "/dashboard")


async def signout(request: Request) -> Response:
    """End this browser's session (POST with the CSRF token)."""
    signed_in = await page_session(request)
    form = await request.form()
    if signed_in and csrf_ok(signed_in.session, str(form.get("csrf_token", ""))):
        state: WebState = request.app.state.web
        await revoke_session(state.engine, signed_in.cookie)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
