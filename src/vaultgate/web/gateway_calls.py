"""Running a signed-in user's request through the /v1 code path with one of their keys.

The browser never holds a key (only their hashes are stored): it names one of the user's
keys by id, and the server runs the OpenAI request with that key's record. Validation,
limits, holds, billing, the request log and streaming are the gateway's own. The
playground and the chat both call the gateway this way.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import or_, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vaultgate.accounts.keys import KeyRecord, find_key_by_id
from vaultgate.errors import AuthenticationFailed, NotFound
from vaultgate.gateway.context import KeyLoader
from vaultgate.storage.tables import api_keys
from vaultgate.web.state import WebState


class AsgiPassthrough(Response):
    """Lets a page view return the gateway's event stream: an ASGI app rather than a
    Starlette Response, because it watches for the client leaving to stop the upstream."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the exchange to the wrapped app."""
        await self._app(scope, receive, send)


def public_base(request: Request, state: WebState) -> str:
    """The server's public root URL, without a trailing slash."""
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


async def active_keys(state: WebState, user_id: int) -> list[Any]:
    """The user's keys that work now (id, name, prefix), newest first."""
    now = dt.datetime.now(dt.UTC)
    query = (
        select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix)
        .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .where(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        .order_by(api_keys.c.id.desc())
    )
    async with state.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def own_key_loader(state: WebState, user_id: int, key_id: int) -> KeyLoader:
    """Finds the key by id, fresh from the database, only when it is the user's and usable."""

    async def load() -> KeyRecord:
        record = await find_key_by_id(state.engine, key_id)
        if record is None or record.user_id != user_id:
            raise NotFound(f"You have no API key with id {key_id}.", code="key_not_found")
        if not record.usable_at(time.time()):
            raise AuthenticationFailed("API key is revoked, expired or its account disabled")
        return record

    return load
