"""Signing up, in and out, and the profile."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response

from vaultgate.accounts.sessions import (
    SESSION_LIFETIME,
    find_session,
    open_session,
    revoke_all_sessions,
    revoke_session,
)
from vaultgate.accounts.throttle import sign_in_refusal
from vaultgate.accounts.users import (
    User,
    check_password,
    create_user,
    normalise_email,
    update_user,
)
from vaultgate.api.deps import SESSION_COOKIE, CallerDep, api_state
from vaultgate.api.schemas import LoginBody, ProfileBody, RegisterBody, SessionOut, UserOut
from vaultgate.api.state import ApiState
from vaultgate.errors import AuthenticationFailed, InvalidRequest, RateLimited

router = APIRouter(prefix="/auth", tags=["accounts"])
profile_router = APIRouter(tags=["accounts"])

REGISTRATIONS_PER_ADDRESS = 30


def user_out(user: User) -> UserOut:
    """The public view of an account."""
    return UserOut(id=user.id, email=user.email, username=user.username, is_admin=user.is_admin)


def _is_https(request: Request) -> bool:
    # The scheme already reflects X-Forwarded-Proto when proxy headers are trusted.
    return request.url.scheme == "https"


async def _start_session(request: Request, response: Response, user: User) -> SessionOut:
    state = api_state(request)
    session_id, csrf = await open_session(state.engine, user.id)
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True, samesite="lax", secure=_is_https(request), path="/",
    )  # fmt: skip
    return SessionOut(user=user_out(user), csrf_token=csrf)


async def _throttle(state: ApiState, subject: str, limit: int, request_id: str) -> None:
    decision = await state.limiter.hit(subject, limit=limit, weight=1, member=request_id)
    if not decision.allowed:
        raise RateLimited(
            "Too many sign-in attempts; try again later.",
            headers={"retry-after": str(decision.retry_after_s())},
        )


def _attempt_id() -> str:
    # Unique per attempt: the Redis limiter keeps one entry per member, and id(request)
    # repeats across requests, which would let repeated attempts count once.
    return secrets.token_hex(8)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201)
async def register(body: RegisterBody, request: Request, response: Response) -> SessionOut:
    """Create an account (with the starter credit) and sign it in."""
    state = api_state(request)
    marker = _attempt_id()
    await _throttle(
        state, f"register:{_client_address(request)}", REGISTRATIONS_PER_ADDRESS, marker
    )
    user = await create_user(
        state.engine, email=body.email, username=body.username, password=body.password,
        starter_credit_micros=state.settings.starter_credit_micros,
    )  # fmt: skip
    return await _start_session(request, response, user)


@router.post("/login")
async def login(body: LoginBody, request: Request, response: Response) -> SessionOut:
    """Sign in; throttled per account and client address, and per client address."""
    state = api_state(request)
    email = normalise_email(body.email)
    refusal = await sign_in_refusal(state.limiter, email=email, address=_client_address(request))
    if refusal is not None:
        raise RateLimited(
            "Too many sign-in attempts; try again later.",
            headers={"retry-after": str(refusal.retry_after_s())},
        )
    user = await check_password(state.engine, email, body.password)
    if user is None:
        raise AuthenticationFailed("wrong email or password", code="invalid_credentials")
    return await _start_session(request, response, user)


@router.post("/logout", status_code=204)
async def logout(request: Request, response: Response, caller: CallerDep) -> None:
    """End this session."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await revoke_session(api_state(request).engine, cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.post("/logout-all", status_code=204)
async def logout_all(request: Request, response: Response, caller: CallerDep) -> None:
    """End every session of this account (sign out everywhere)."""
    await revoke_all_sessions(api_state(request).engine, caller.user.id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@profile_router.get("/me")
async def me(caller: CallerDep) -> UserOut:
    """The signed-in account."""
    return user_out(caller.user)


@profile_router.patch("/me")
async def update_me(
    body: ProfileBody,
    request: Request,
    response: Response,
    caller: CallerDep,
) -> UserOut:
    """Change username, email or password; the latter two need the current password.

    A password change ends every session, and signs this client in again.
    """
    state = api_state(request)
    if body.email is not None or body.password is not None:
        current = body.current_password or ""
        if await check_password(state.engine, caller.user.email, current) is None:
            raise InvalidRequest("the current password is wrong", param="current_password")
    user = await update_user(
        state.engine,
        caller.user.id,
        username=body.username,
        email=body.email,
        password=body.password,
    )
    if body.password is not None:
        await revoke_all_sessions(state.engine, user.id)
        if not caller.via_key:
            await _start_session(request, response, user)
    return user_out(user)


@router.get("/session")
async def current_session(request: Request) -> SessionOut:
    """The signed-in session's user and CSRF token (for pages that need the token)."""
    state = api_state(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await find_session(state.engine, cookie) if cookie else None
    if session is None:
        raise AuthenticationFailed("sign in first", code="not_signed_in")
    return SessionOut(user=user_out(session.user), csrf_token=session.csrf_token)
