"""Page guards: signed in, and CSRF-checked form posts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from vaultgate.web.render import page, to_signin
from vaultgate.web.security import PageSession, csrf_ok, page_session

PageView = Callable[[Request, PageSession], Awaitable[Response]]


def signed_in_page(
    view: PageView, *, admin: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a view so it runs only for a signed-in user; forms must carry the CSRF token."""

    async def endpoint(request: Request) -> Response:
        signed_in = await page_session(request)
        if signed_in is None:
            return to_signin(request)
        if admin and not signed_in.session.user.is_admin:
            return page(
                request,
                "error.html",
                {"status": 403, "message": "Admins only."},
                signed_in=signed_in,
                status=403,
            )
        if request.method == "POST":
            form = await request.form()
            sent = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
            if not csrf_ok(signed_in.session, sent):
                return page(
                    request,
                    "error.html",
                    {
                        "status": 403,
                        "message": "This form expired. Go back, reload the page and try again.",
                    },
                    signed_in=signed_in,
                    status=403,
                )
        return await view(request, signed_in)

    return endpoint
