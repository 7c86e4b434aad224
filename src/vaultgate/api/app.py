"""The management API app, mounted under /api with its own OpenAPI schema."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from vaultgate.api import admin_routes, auth_routes, billing_routes, keys_routes, usage_routes
from vaultgate.api.params import NOT_FOUND_CODES
from vaultgate.api.state import ApiState
from vaultgate.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    StorageUnavailable,
    VaultGateError,
)
from vaultgate.gateway.responses import error_response

log = logging.getLogger("vaultgate.api")


async def _vaultgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultGateError)
    return error_response(exc)


def _not_json() -> InvalidRequest:
    return InvalidRequest("request body is not valid JSON", code="invalid_json")


def _unknown_id(problem: Mapping[str, Any]) -> NotFound:
    """A path id no row can have (not a number, or out of range) names nothing: 404."""
    name = str(problem["loc"][-1])
    code = NOT_FOUND_CODES.get(name, "not_found")
    return NotFound(f"no {name.removesuffix('_id')} with id {problem.get('input')}", code=code)


def _invalid(problems: Sequence[Mapping[str, Any]]) -> VaultGateError:
    """The first problem FastAPI found with a request, as one of ours."""
    on_path = [problem for problem in problems if problem.get("loc", ("",))[0] == "path"]
    if on_path:
        return _unknown_id(on_path[0])
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":
        return _not_json()
    location = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    if location is None:
        return InvalidRequest(f"request body: {first.get('msg', 'invalid')}")
    return InvalidRequest(f"{location}: {first.get('msg')}", param=location)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(_invalid(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> Response:
    # Routing's own answers (unknown path, wrong method) in the OpenAI shape like the rest.
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"Unknown path {request.url.path}.", code="unknown_path"))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"{request.method} is not allowed here."))
    if exc.status_code == 400:
        # FastAPI's answer to a JSON body it cannot even decode (bytes that are not UTF-8).
        return error_response(_not_json())
    error = VaultGateError(str(exc.detail))
    error.status, error.error_type = exc.status_code, "invalid_request_error"
    return error_response(error)


async def _storage_error(request: Request, exc: Exception) -> Response:
    # Redis keeps the sign-in and redeem throttles; without it they cannot be checked.
    log.error("redis unavailable", extra={"fields": {"error": type(exc).__name__}})
    return error_response(
        StorageUnavailable("The gateway's storage is unavailable; try again shortly.")
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Without this the sub-app's own error middleware answers a plain-text 500.
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    return error_response(InternalError("The server had an error processing your request."))


def create_api(state: ApiState) -> FastAPI:
    """Build the management API around the shared state."""
    api = FastAPI(
        title="VaultGate management API",
        version="1",
        # Swagger UI loads its scripts from a CDN, which an offline install cannot reach and
        # the strict content-security policy forbids; the schema itself is served.
        docs_url=None,
        openapi_url="/openapi.json",
        redoc_url=None,
        exception_handlers={
            VaultGateError: _vaultgate_error,
            RequestValidationError: _validation_error,
            HTTPException: _http_error,
            RedisError: _storage_error,
            Exception: _unexpected,
        },
    )
    api.state.api = state
    for module in (auth_routes, keys_routes, billing_routes, usage_routes, admin_routes):
        api.include_router(module.router)
    api.include_router(auth_routes.profile_router)
    return api
