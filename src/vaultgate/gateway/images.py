"""POST /v1/images/generations, and the downloads behind ``response_format=url``."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from vaultgate.accounts.keys import KeyRecord
from vaultgate.errors import InvalidRequest, NotFound, VaultGateError
from vaultgate.gateway.admission import Admission, admit_images
from vaultgate.gateway.context import GatewayState, KeyLoader, RequestTrace, bearer_token
from vaultgate.gateway.responses import JsonResponse, error_response, read_json
from vaultgate.gateway.validation import validate_images
from vaultgate.providers.base import GeneratedImage, ImageCall, ImageResult, JsonObject, Provider
from vaultgate.providers.catalog import Deployment, ModelEntry

DEFAULT_SIZE = "1024x1024"
DEFAULT_QUALITY = "standard"


async def image_generations(request: Request) -> Response:
    """Validate, authorise, price and generate images for a request sent with a bearer key."""
    state: GatewayState = request.app.state.gateway
    token = bearer_token(request)

    async def load_key() -> KeyRecord:
        return await state.keys.authenticate(token)

    async def read_body() -> Any:
        settings = state.settings
        return await read_json(
            request, settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
        )

    base_url = state.settings.public_url or str(request.base_url)
    trace = RequestTrace(endpoint="images")
    return await serve_images(
        state, trace, load_key=load_key, read_body=read_body, base_url=base_url
    )


async def serve_images(
    state: GatewayState,
    trace: RequestTrace,
    *,
    load_key: KeyLoader,
    read_body: Callable[[], Awaitable[Any]],
    base_url: str,
) -> Response:
    """Answer one image request for the key ``load_key`` finds (see ``serve_chat``);
    ``base_url`` roots the download links of ``response_format=url``."""
    try:
        trace.key = await load_key()
        body = await read_body()
        model_id = validate_images(body)
        trace.model = model_id
        model = state.resolve_model(model_id, trace.key, endpoint="images")
        return await _generate(state, trace, model, body, load_key=load_key, base_url=base_url)
    except VaultGateError as error:
        trace.finish(state, status=error.status, error=error)
        return error_response(error, trace.headers())
    except BaseException:
        trace.finish(state, status=500, error="internal error")
        raise


def _unit_price(model: ModelEntry, size: str, quality: str) -> int:
    price = model.pricing.image_price(size, quality)
    if price is None:
        offered = ", ".join(sorted(model.pricing.images)) or "none"
        raise InvalidRequest(
            f"'{model.id}' does not offer size {size} at quality {quality}; it offers: {offered}.",
            param="size",
        )
    return price


async def _generate(
    state: GatewayState,
    trace: RequestTrace,
    model: ModelEntry,
    body: JsonObject,
    *,
    load_key: KeyLoader,
    base_url: str,
) -> Response:
    size = body.get("size") or DEFAULT_SIZE
    quality = body.get("quality") or DEFAULT_QUALITY
    count = body.get("n") or 1
    response_format = body.get("response_format") or "url"
    unit_price = _unit_price(model, size, quality)

    async def admit(key: KeyRecord) -> tuple[ModelEntry, Admission]:
        fresh = state.resolve_model(model.id, key, endpoint="images")
        admitted = await admit_images(
            state.holds, state.limiter, key, amount_micros=unit_price * count,
            request_id=trace.request_id,
        )  # fmt: skip
        return fresh, admitted

    model, admission = await state.admit_fresh(trace, load_key, admit)
    trace.hold = admission.hold
    trace.extra_headers.update(admission.headers)
    trace.prices = {"per_image": unit_price, "size": size, "quality": quality}

    async def attempt(provider: Provider, deployment: Deployment) -> ImageResult:
        call = ImageCall(
            model.id, deployment.upstream, body["prompt"], count, size, quality,
            response_format, body, provider.config,
        )  # fmt: skip
        return await provider.images(call)

    result = await state.router.call(model, trace, attempt)
    data = [await _render(state, image, response_format, base_url) for image in result.images]
    trace.images = len(data)
    trace.mark_first_byte()
    cost = unit_price * len(data)
    trace.finish(state, status=200, usage=result.usage, cost_micros=cost)
    # Fields the provider reported (GPT image models' usage, output_format...) are relayed.
    payload = {"created": result.created, **result.extra, "data": data}
    headers = {**trace.headers(), **_warning_headers(result.dropped)}
    return JsonResponse(payload, headers=headers)


def _warning_headers(dropped: tuple[str, ...]) -> dict[str, str]:
    if not dropped:
        return {}
    return {"x-vaultgate-warning": "dropped unsupported parameters: " + ", ".join(dropped)}


async def _render(
    state: GatewayState, image: GeneratedImage, response_format: str, base_url: str
) -> JsonObject:
    item: JsonObject = {}
    if image.png is not None and response_format == "b64_json":
        item["b64_json"] = base64.b64encode(image.png).decode()
    elif image.png is not None:
        name = await state.images.save(image.png, image.media_type)
        item["url"] = f"{base_url.rstrip('/')}/v1/images/files/{name}"
    else:
        item.update({k: v for k, v in (("url", image.url), ("b64_json", image.b64_json)) if v})
    if image.revised_prompt:
        item["revised_prompt"] = image.revised_prompt
    return item


async def image_file(request: Request) -> Response:
    """Serve a generated image; its 128-bit random name is the capability to fetch it."""
    state: GatewayState = request.app.state.gateway
    path = state.images.path(request.path_params["name"])
    if path is None:
        return error_response(NotFound("No such image, or it has expired.", code="not_found"))
    return FileResponse(
        path,
        media_type=state.images.media_type(path.name),
        headers={"cache-control": "private, max-age=3600"},
    )
