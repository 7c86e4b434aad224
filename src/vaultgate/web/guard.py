"""Page guards: signed in, path ids in range, and CSRF-checked form posts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vaultgate.bounds import ID_MAX
from vaultgate.web.render import page, to_signin
from vaultgate.web.security import PageSession, csrf_ok, page_session

PageView = Callable[[Request, PageSession], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def names_no_row(request: Request) -> bool:
    """Whether a number in the path is too large for any row's id (the database would
    refuse to compare a column with it)."""
    return any(isinstance(value, int) and value > ID_MAX for value in request.path_params.values())


def ids_in_range(endpoint: Endpoint) -> Endpoint:
    """Wrap a public endpoint so that a path id no row can have is a plain 404."""

    async def checked(request: Request) -> Response:
        if names_no_row(request):
            raise HTTPException(404)
        return await endpoint(request)

    return checked


def signed_in_page(
    view: PageView, *, admin: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a view so it runs only for a signed-in user; forms must carry the CSRF token."""

    async def endpoint(request: Request) -> Response:
        signed_in = await page_session(request)
        if signed_in is None:
            return to_signin(request)
        if names_no_row(request):
            raise HTTPException(404)
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
