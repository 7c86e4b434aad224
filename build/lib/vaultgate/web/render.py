"""Rendering pages: the template environment and the context every page gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from vaultgate.billing.pricing import format_micros
from vaultgate.web.security import PageSession

TEMPLATES_DIR = Path(__file__).parent / "templates"


def usd(micros: int | None) -> str:
    """Micro-dollars as a dollar amount for display: '$1.234567', '-$0.50'."""
    value = micros or 0
    sign = "-" if value < 0 else ""
    return f"{sign}${format_micros(abs(value))}"


def build_templates() -> Jinja2Templates:
    """The Jinja2 environment: autoescaping on, with the page filters."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["usd"] = usd
    templates.env.autoescape = True
    return templates


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    signed_in: PageSession | None = None,
    status: int = 200,
) -> Response:
    """Render a page with the signed-in user and CSRF token in its context."""
    templates: Jinja2Templates = request.app.state.web.templates
    full = {
        "user": signed_in.session.user if signed_in else None,
        "csrf_token": signed_in.session.csrf_token if signed_in else "",
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status)


def to_signin(request: Request) -> Response:
    """Send the browser to the sign-in page, coming back here afterwards."""
    return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/dashboard"
