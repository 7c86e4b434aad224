"""The web app's routes, mounted at the root below /v1 and /api."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaultgate.web.admin_pages import admin_page
from vaultgate.web.alerts_pages import alerts_page
from vaultgate.web.analytics_pages import analytics_page
from vaultgate.web.auth_pages import signin, signout, signup
from vaultgate.web.balance_pages import balance_page
from vaultgate.web.chat_routes import chat_routes
from vaultgate.web.docs_pages import docs_routes
from vaultgate.web.guard import signed_in_page
from vaultgate.web.keys_pages import edit_key, keys_page, revoke_key_page
from vaultgate.web.logs_pages import log_detail, logs_csv, logs_page
from vaultgate.web.overview_pages import models, overview
from vaultgate.web.playground_pages import playground_chat, playground_images, playground_page
from vaultgate.web.profile_pages import profile_page
from vaultgate.web.render import page
from vaultgate.web.security import SecurityHeaders, page_session
from vaultgate.web.state import WebState

STATIC_DIR = Path(__file__).parent / "static"
GET_POST = ["GET", "POST"]


async def landing(request: Request) -> Response:
    """The portal: what VaultGate is, and the way to the dashboard."""
    return page(request, "landing.html", signed_in=await page_session(request))


async def _error_page(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "This page does not exist.", 405: "That is not allowed here."}.get(
        status, "Something went wrong on our side."
    )
    return page(
        request,
        "error.html",
        {"status": status, "message": message},
        signed_in=await page_session(request),
        status=status,
    )


def page_routes() -> list[Route | Mount]:
    """Every page of the web app."""
    return [
        Route("/", landing),
        Route("/signin", signin, methods=GET_POST),
        Route("/signup", signup, methods=GET_POST),
        Route("/signout", signout, methods=["POST"]),
        Route("/dashboard", signed_in_page(overview)),
        Route("/dashboard/models", signed_in_page(models)),
        Route("/dashboard/keys", signed_in_page(keys_page), methods=GET_POST),
        Route("/dashboard/keys/{key_id:int}/edit", signed_in_page(edit_key), methods=GET_POST),
        Route(
            "/dashboard/keys/{key_id:int}/revoke",
            signed_in_page(revoke_key_page),
            methods=GET_POST,
        ),
        Route("/dashboard/balance", signed_in_page(balance_page), methods=GET_POST),
        Route("/dashboard/profile", signed_in_page(profile_page), methods=GET_POST),
        Route("/dashboard/logs", signed_in_page(logs_page)),
        Route("/dashboard/logs.csv", signed_in_page(logs_csv)),
        Route("/dashboard/logs/{request_id}", signed_in_page(log_detail)),
        Route("/dashboard/analytics", signed_in_page(analytics_page)),
        Route("/dashboard/alerts", signed_in_page(alerts_page), methods=GET_POST),
        Route("/dashboard/admin", signed_in_page(admin_page, admin=True)),
        Route("/dashboard/playground", signed_in_page(playground_page)),
        Route("/dashboard/playground/chat", signed_in_page(playground_chat), methods=["POST"]),
        Route("/dashboard/playground/images", signed_in_page(playground_images), methods=["POST"]),
        *chat_routes(),
        *docs_routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]


def create_web(state: WebState) -> SecurityHeaders:
    """The pages as an ASGI app with security headers on every response."""
    app = Starlette(routes=page_routes(), exception_handlers={
        HTTPException: _error_page, Exception: _error_page,
    })  # fmt: skip
    app.state.web = state
    return SecurityHeaders(app)
