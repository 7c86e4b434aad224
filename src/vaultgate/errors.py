"""The exception tree, and its rendering as OpenAI's error JSON.

Each class knows its HTTP status, its OpenAI error ``type`` and its ``code``. Code anywhere in
the package raises one of these; the app turns it into
``{"error": {"message", "type", "param", "code"}}`` in one place.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Mapping

import orjson

# A provider's retry-after is relayed as whole seconds within this range: a client told to
# wait days (or a number no client can parse) would never come back.
MAX_RETRY_AFTER_S = 3600


def retry_after_seconds(value: str) -> int | None:
    """A ``retry-after`` value (seconds, possibly fractional, or an HTTP date) as whole
    seconds clamped to 0..MAX_RETRY_AFTER_S; None when it is neither."""
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text)
    if seconds is None or math.isnan(seconds):
        return None
    return math.ceil(min(max(seconds, 0.0), MAX_RETRY_AFTER_S))


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - dt.datetime.now(dt.UTC)).total_seconds()


def _with_sane_retry_after(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with a ``retry-after`` a provider sent made sane, or dropped when it is
    not a time at all."""
    sane = {k: v for k, v in headers.items() if k.lower() != "retry-after"}
    for name, value in headers.items():
        seconds = retry_after_seconds(value) if name.lower() == "retry-after" else None
        if seconds is not None:
            sane["retry-after"] = str(seconds)
    return sane


class VaultGateError(Exception):
    """Base of every error VaultGate reports to a client."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI-shaped error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def json_bytes(self) -> bytes:
        """The error object serialised as JSON."""
        return orjson.dumps(self.body())


class InvalidRequest(VaultGateError):
    """The request is malformed or names something impossible (400)."""

    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class WrongEndpoint(InvalidRequest):
    """The model exists but serves another endpoint (400)."""

    code = "wrong_endpoint"


class AuthenticationFailed(VaultGateError):
    """Missing, unknown, revoked or expired API key (401)."""

    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class InsufficientBalance(VaultGateError):
    """The account cannot pay for the request (402)."""

    status = 402
    error_type = "insufficient_balance"
    code = "insufficient_balance"


class ModelNotAllowed(VaultGateError):
    """The key may not use the requested model (403)."""

    status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class Forbidden(VaultGateError):
    """The caller may not read this resource from where it is (403)."""

    status = 403
    error_type = "permission_error"
    code = "forbidden"


class NotFound(VaultGateError):
    """No such resource (404)."""

    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    """No such model in the catalog (404)."""

    code = "model_not_found"


class MethodNotAllowed(VaultGateError):
    """The path exists but not for this HTTP method (405)."""

    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(VaultGateError):
    """The client did not send its whole request body in time (408)."""

    status = 408
    error_type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(VaultGateError):
    """The request body is over the configured limit (413)."""

    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(VaultGateError):
    """The body is not JSON, or comes in a content encoding the gateway does not read
    (415)."""

    status = 415
    error_type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(VaultGateError):
    """A request-rate or token limit is exceeded (429)."""

    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class QuotaExhausted(RateLimited):
    """The key's token quota is used up (429)."""

    error_type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamError(VaultGateError):
    """A provider answered with an error; status and message come from it."""

    status = 502
    error_type = "upstream_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, param=param, code=code, headers=_with_sane_retry_after(headers or {})
        )
        self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.retryable = retryable


class UpstreamTimeout(UpstreamError):
    """A provider did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=504, error_type="timeout", code="upstream_timeout")


class NoProviderAvailable(VaultGateError):
    """Every deployment behind the model failed or is cooling down (503)."""

    status = 503
    error_type = "server_error"
    code = "no_provider_available"


class StorageUnavailable(VaultGateError):
    """The database (or Redis) could not be reached to admit the request (503)."""

    status = 503
    error_type = "server_error"
    code = "storage_unavailable"


class InternalError(VaultGateError):
    """An unexpected failure; the details go to the log, never to the client (500)."""

    status = 500
    error_type = "server_error"
    code = "internal_error"


class ConfigError(Exception):
    """The catalog or the operator's config file is invalid (raised at start-up)."""
