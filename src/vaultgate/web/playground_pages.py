"""The playground: try a model with one of your keys, through the very code path of /v1
(see ``gateway_calls``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from vaultgate.errors import InvalidRequest, VaultGateError
from vaultgate.gateway.chat import serve_chat
from vaultgate.gateway.context import KeyLoader, RequestTrace
from vaultgate.gateway.images import serve_images
from vaultgate.gateway.responses import EventStreamResponse, error_response, read_json
from vaultgate.providers.catalog import ModelEntry
from vaultgate.web.gateway_calls import AsgiPassthrough, active_keys, own_key_loader, public_base
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState


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
        "keys": await active_keys(state, signed_in.session.user.id),
        "api_base": public_base(request, state) + "/v1",
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


Serve = Callable[[KeyLoader, Callable[[], Awaitable[Any]]], Awaitable[Response | ASGIApp]]


async def _run(request: Request, signed_in: PageSession, serve: Serve) -> Response:
    state: WebState = request.app.state.web
    try:
        key_id, body = _envelope(
            await read_json(
                request,
                state.settings.max_body_bytes,
                timeout_s=state.settings.body_read_timeout_s,
            )
        )
    except VaultGateError as error:
        return error_response(error)

    async def read_body() -> Any:
        return body

    answer = await serve(own_key_loader(state, signed_in.session.user.id, key_id), read_body)
    return answer if isinstance(answer, Response) else AsgiPassthrough(answer)


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
    base_url = public_base(request, state)

    async def serve(load_key: KeyLoader, read_body: Callable[[], Awaitable[Any]]) -> Response:
        trace = RequestTrace(endpoint="images")
        return await serve_images(
            state.gateway, trace, load_key=load_key, read_body=read_body, base_url=base_url
        )

    return await _run(request, signed_in, serve)
