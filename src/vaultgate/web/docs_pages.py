"""The documentation under /docs: public pages, the same for every reader.

The examples carry this server's own address, and the model list is the live catalog with
its prices; nothing about the reader's account is shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vaultgate.accounts.keys import DEFAULT_RPM
from vaultgate.providers.catalog import ModelEntry
from vaultgate.web import docs_content
from vaultgate.web.gateway_calls import public_base
from vaultgate.web.render import page
from vaultgate.web.security import page_session
from vaultgate.web.state import WebState

# (path, title, template); the order of the docs' own navigation.
DOCS = (
    ("/docs", "Getting started", "docs_start.html"),
    ("/docs/api", "API reference", "docs_api.html"),
    ("/docs/sdks", "SDK examples", "docs_sdks.html"),
    ("/docs/models", "Models and prices", "docs_models.html"),
    ("/docs/errors", "Errors", "docs_errors.html"),
    ("/docs/limits", "Rate limits and quotas", "docs_limits.html"),
)
MODEL_TYPES = (("text", "Text models"), ("hybrid", "Text and image models"),
               ("image", "Image models"))  # fmt: skip
PREFERRED_TEXT = "offline-small-text"
PREFERRED_IMAGE = "offline-painter-image"


def _example(models: dict[str, ModelEntry], preferred: str, kinds: tuple[str, ...]) -> str | None:
    if preferred in models:
        return preferred
    return next((m for m in sorted(models) if models[m].type in kinds), None)


def _common(request: Request) -> dict[str, Any]:
    state: WebState = request.app.state.web
    models = dict(state.models)
    origin = public_base(request, state)
    text_model = _example(models, PREFERRED_TEXT, ("text", "hybrid")) or "your-model-text"
    image_model = _example(models, PREFERRED_IMAGE, ("image", "hybrid"))
    return {
        "docs": DOCS, "origin": origin, "api_base": origin + "/v1",
        "text_model": text_model, "image_model": image_model,
        "snippets": docs_content.sdk_snippets(origin + "/v1", text_model, image_model),
    }  # fmt: skip


def _models_context(request: Request) -> dict[str, Any]:
    state: WebState = request.app.state.web
    ordered = sorted(state.models.values(), key=lambda m: m.id)
    groups = [(kind, title, [m for m in ordered if m.type == kind]) for kind, title in MODEL_TYPES]
    providers = sorted({p for m in ordered for p in m.providers})
    return {"groups": [g for g in groups if g[2]], "model_count": len(ordered),
            "providers": providers}  # fmt: skip


def _reference_context(request: Request) -> dict[str, Any]:
    return {
        "chat_fields": docs_content.CHAT_FIELDS, "image_fields": docs_content.IMAGE_FIELDS,
        "headers": docs_content.RESPONSE_HEADERS, "stream_example": docs_content.STREAM_EXAMPLE,
        "stream_error_example": docs_content.STREAM_ERROR_EXAMPLE,
    }  # fmt: skip


def _errors_context(request: Request) -> dict[str, Any]:
    codes = docs_content.ERROR_CODES
    return {
        "api_errors": sorted((e for e in codes if e.where == "API"), key=lambda e: e.status),
        "stream_errors": [e for e in codes if e.where == "stream"],
        "dashboard_errors": [e for e in codes if e.where == "dashboard"],
        "management_errors": [e for e in codes if e.where == "/api"],
        "error_example": docs_content.ERROR_EXAMPLE,
    }  # fmt: skip


def _limits_context(request: Request) -> dict[str, Any]:
    state: WebState = request.app.state.web
    return {"default_rpm": DEFAULT_RPM, "starter_credit": state.settings.starter_credit_micros}


EXTRA: dict[str, Callable[[Request], dict[str, Any]]] = {
    "/docs/api": _reference_context,
    "/docs/models": _models_context,
    "/docs/errors": _errors_context,
    "/docs/limits": _limits_context,
}


def _view(path: str, title: str, template: str) -> Callable[[Request], Awaitable[Response]]:
    async def view(request: Request) -> Response:
        context = {**_common(request), "doc_title": title}
        extra = EXTRA.get(path)
        if extra is not None:
            context.update(extra(request))
        return page(request, template, context, signed_in=await page_session(request))

    return view


def docs_routes() -> list[Route]:
    """One public route per documentation page."""
    return [Route(path, _view(path, title, template)) for path, title, template in DOCS]
