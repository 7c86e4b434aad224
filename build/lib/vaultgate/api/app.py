"""The management API app, mounted under /api with its own OpenAPI schema."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from vaultgate.api import admin_routes, auth_routes, billing_routes, keys_routes, usage_routes
from vaultgate.api.state import ApiState
from vaultgate.errors import InternalError, InvalidRequest, VaultGateError
from vaultgate.gateway.responses import error_response

log = logging.getLogger("vaultgate.api")


async def _vaultgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultGateError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    message = f"{location}: {first.get('msg')}" if location else str(first.get("msg"))
    return error_response(InvalidRequest(message, param=location))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Without this the sub-app's own error middleware answers a plain-text 500.
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    return error_response(InternalError("The server had an error processing your request."))


def create_api(state: ApiState) -> FastAPI:
    """Build the management API around the shared state."""
    api = FastAPI(
        title="VaultGate management API",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        exception_handlers={
            VaultGateError: _vaultgate_error,
            RequestValidationError: _validation_error,
            Exception: _unexpected,
        },
    )
    api.state.api = state
    for module in (auth_routes, keys_routes, billing_routes, usage_routes, admin_routes):
        api.include_router(module.router)
    api.include_router(auth_routes.profile_router)
    return api
