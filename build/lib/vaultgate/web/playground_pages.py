"""The playground: try a model with one of your keys, through the very code path of /v1.

The browser never holds a key (only their hashes are stored): it names one of the user's
keys by id, and the server runs the OpenAI request with that key's record. Validation,
limits, holds, billing, the request log and streaming are the gateway's own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import or_, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vaultgate.accounts.keys import KeyRecord, find_key_by_id
from vaultgate.errors import AuthenticationFailed, InvalidRequest, NotFound, VaultGateError
from vaultgate.gateway.chat import serve_chat
from vaultgate.gateway.context import KeyLoader, RequestTrace
from vaultgate.gateway.images import serve_images
from vaultgate.gateway.responses import EventStreamResponse, error_response, read_json
from vaultgate.providers.catalog import ModelEntry
from vaultgate.storage.tables import api_keys
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState


class _AsgiPassthrough(Response):
    """Lets a page view return the gateway's event stream: an ASGI app rather than a
    Starlette Response, because it watches for the client leaving to stop the upstream."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the exchange to the wrapped app."""
        await self._app(scope, receive, send)


def _public_base(request: Request, state: WebState) -> str:
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


async def _active_keys(state: WebState, user_id: int) -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    query = (
        select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix)
        .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .where(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        .order_by(api_keys.c.id.desc())
    )
    async with state.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def _model_option(model: ModelEntry) -> dict[str, Any]:
    """What the page's script needs about a model: its type and exact prices in micros."""
    return {
        "id": model.id,
        "type": model.type,
        "input": model.pricing.input_per_m,
        "cached": model.pricing.cached_input_per_m,
        "output": model.pricing.output_per_m,
        "images": dict(model.pricing.images),
    }


async def playground_page(request: Request, signed_in: PageSession) -> Response:
    """The playground page: models, the user's active keys, settings and the conversation."""
    state: WebState = request.app.state.web
    models = [_model_option(m) for m in sorted(state.models.values(), key=lambda m: m.id)]
    return page(request, "playground.html", {
        "models": models,
        "keys": await _active_keys(state, signed_in.session.user.id),
        "api_base": _public_base(request, state) + "/v1",
    }, signed_in=signed_in)  # fmt: skip


def _envelope(raw: Any) -> tuple[int, dict[str, Any]]:
    """The key id and the OpenAI request of a playground call."""
    if not isinstance(raw, dict):
        raise InvalidRequest("Send a JSON object with 'key_id' and 'request'.")
    key_id, body = raw.get("key_id"), raw.get("request")
    if isinstance(key_id, bool) or not isinstance(key_id, int):
        raise InvalidRequest("'key_id' must be the id of one of your keys.", param="key_id")
    if not isinstance(body, dict):
        raise InvalidRequest("'request' must be an OpenAI request object.", param="request")
    return key_id, body


def _own_key_loader(state: WebState, user_id: int, key_id: int) -> KeyLoader:
    """Finds the key by id, fresh from the database, only when it is the user's and usable."""

    async def load() -> KeyRecord:
        record = await find_key_by_id(state.engine, key_id)
        if record is None or record.user_id != user_id:
            raise NotFound(f"You have no API key with id {key_id}.", code="key_not_found")
        if not record.usable_at(time.time()):
            raise AuthenticationFailed("API key is revoked, expired or its account disabled")
        return record

    return load


Serve = Callable[[KeyLoader, Callable[[], Awaitable[Any]]], Awaitable[Response | ASGIApp]]


async def _run(request: Request, signed_in: PageSession, serve: Serve) -> Response:
    state: WebState = request.app.state.web
    try:
        key_id, body = _envelope(await read_json(request, state.settings.max_body_bytes))
    except VaultGateError as error:
        return error_response(error)

    async def read_body() -> Any:
        return body

    answer = await serve(_own_key_loader(state, signed_in.session.user.id, key_id), read_body)
    return answer if isinstance(answer, Response) else _AsgiPassthrough(answer)


async def playground_chat(request: Request, signed_in: PageSession) -> Response:
    """POST a chat request with one of the user's keys; answered exactly as /v1 would."""
    gateway = request.app.state.web.gateway

    async def serve(
        load_key: KeyLoader, read_body: Callable[[], Awaitable[Any]]
    ) -> Response | EventStreamResponse:
        trace = RequestTrace(endpoint="chat")
        return await serve_chat(gateway, trace, load_key=load_key, read_body=read_body)

    return await _run(request, signed_in, serve)


async def playground_images(request: Request, signed_in: PageSession) -> Response:
    """POST an image request with one of the user's keys; answered exactly as /v1 would."""
    state: WebState = request.app.state.web
    base_url = _public_base(request, state)

    async def serve(load_key: KeyLoader, read_body: Callable[[], Awaitable[Any]]) -> Response:
        trace = RequestTrace(endpoint="images")
        return await serve_images(
            state.gateway, trace, load_key=load_key, read_body=read_body, base_url=base_url
        )

    return await _run(request, signed_in, serve)
