"""Sessions, CSRF tokens and security headers for the server-rendered pages."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vaultgate.accounts.sessions import Session, find_session
from vaultgate.api.deps import SESSION_COOKIE
from vaultgate.web.state import WebState

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Adds a strict content-security policy and friends to every page response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True, slots=True)
class PageSession:
    """The signed-in session behind a page request."""

    session: Session
    cookie: str


async def page_session(request: Request) -> PageSession | None:
    """The live session of this browser, or None."""
    state: WebState = request.app.state.web
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session = await find_session(state.engine, cookie)
    return PageSession(session, cookie) if session else None


def csrf_ok(session: Session, sent: str | None) -> bool:
    """Whether a form or header carried the session's CSRF token."""
    return bool(sent) and hmac.compare_digest((sent or "").encode(), session.csrf_token.encode())
