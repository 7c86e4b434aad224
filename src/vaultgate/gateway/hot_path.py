"""A thin ASGI layer that sends the busiest /v1 endpoints straight to their handlers.

Starlette's router and middleware stack cost tens of microseconds per request; the chat
and image endpoints need none of it (they parse, authenticate and answer errors
themselves), so they skip it. Everything else goes through the full app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from vaultgate.errors import InternalError
from vaultgate.gateway.context import new_request_id
from vaultgate.gateway.responses import error_response

log = logging.getLogger("vaultgate.gateway")

Handler = Callable[[Request], Awaitable[Any]]


class HotPath:
    """Dispatches (method, path) pairs directly; delegates the rest to ``app``."""

    def __init__(self, app: Starlette, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.app = app
        self._routes = dict(routes)

    @property
    def state(self) -> Any:
        """The wrapped app's state (what handlers reach as ``request.app.state``)."""
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http":
            handler = self._routes.get((scope["method"], scope["path"]))
            if handler is not None:
                scope["app"] = self.app
                await self._serve(handler, scope, receive, send)
                return
            await self.app(scope, receive, _with_request_id(send))
            return
        await self.app(scope, receive, send)

    async def _serve(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await handler(Request(scope, receive, send))
        except Exception as exc:
            log.error("unhandled error", exc_info=exc, extra={"fields": {"path": scope["path"]}})
            response = error_response(
                InternalError("The server had an error processing your request.")
            )
            response.headers["x-request-id"] = new_request_id()
        await response(scope, receive, send)


def _with_request_id(send: Send) -> Send:
    """``send``, adding an ``x-request-id`` to a response that has none, so every response
    (models, errors, pages, probes) can be quoted in a support request."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", new_request_id().encode()))
                message = {**message, "headers": headers}
        await send(message)

    return send_with_id
