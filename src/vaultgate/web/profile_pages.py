"""Profile: username, email, password, and signing out everywhere."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vaultgate.accounts.sessions import revoke_all_sessions
from vaultgate.accounts.users import check_password, update_user
from vaultgate.api.deps import SESSION_COOKIE
from vaultgate.errors import InvalidRequest, VaultGateError
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState


async def profile_page(request: Request, signed_in: PageSession) -> Response:
    """GET shows the profile; POST saves changes or signs out everywhere."""
    state: WebState = request.app.state.web
    user = signed_in.session.user
    if request.method == "GET":
        return page(request, "profile.html", {}, signed_in=signed_in)
    form = await request.form()
    if form.get("action") == "signout-all":
        await revoke_all_sessions(state.engine, user.id)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    username = str(form.get("username") or "").strip() or None
    email = str(form.get("email") or "").strip() or None
    password = str(form.get("password") or "") or None
    try:
        if (email and email.lower() != user.email) or password:
            current = str(form.get("current_password") or "")
            if await check_password(state.engine, user.email, current) is None:
                raise InvalidRequest(
                    "Your current password is needed to change the email "
                    "or password, and it was wrong."
                )
        await update_user(
            state.engine,
            user.id,
            username=username if username != user.username else None,
            email=email if email and email.lower() != user.email else None,
            password=password,
        )
    except VaultGateError as error:
        return page(
            request, "profile.html", {"error": error.message}, signed_in=signed_in, status=400
        )
    if password:
        await revoke_all_sessions(state.engine, user.id)
        response = RedirectResponse("/signin?changed=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return RedirectResponse("/dashboard/profile?saved=1", status_code=303)
