"""What the /v1 handlers share: the gateway's state, and the trace of one request."""

from __future__ import annotations

import datetime as dt
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from vaultgate.accounts.keys import KeyCache, KeyRecord
from vaultgate.billing.hold_stores import HoldStore
from vaultgate.billing.reservations import Hold, StaleKey
from vaultgate.config import Settings
from vaultgate.errors import (
    InternalError,
    ModelNotAllowed,
    ModelNotFound,
    StorageUnavailable,
    VaultGateError,
    WrongEndpoint,
)
from vaultgate.gateway.image_store import ImageStore
from vaultgate.limits.base import SlidingWindowLimiter
from vaultgate.log import access_log_enabled, log_access
from vaultgate.metrics.requests import RequestMetrics
from vaultgate.providers.base import Usage
from vaultgate.providers.catalog import ModelEntry
from vaultgate.providers.registry import Registry
from vaultgate.routing.router import Router
from vaultgate.usage.request_log import FinishedRequest, RequestLogEntry, RequestLogWriter

T = TypeVar("T")
# Finds the request's key: from the bearer token on /v1, by id in the playground.
KeyLoader = Callable[[], Awaitable[KeyRecord]]
MAX_KEY_RELOADS = 3
# Failures of the database or Redis while admitting: the request is not the problem.
STORAGE_ERRORS = (SQLAlchemyError, asyncpg.PostgresError, sqlite3.Error, RedisError, OSError)

log = logging.getLogger("vaultgate.gateway")


@dataclass
class GatewayState:
    """Long-lived objects the app factory builds for the /v1 handlers."""

    settings: Settings
    registry: Registry
    keys: KeyCache
    request_log: RequestLogWriter
    images: ImageStore
    engine: AsyncEngine
    limiter: SlidingWindowLimiter
    holds: HoldStore
    router: Router
    metrics: RequestMetrics

    def resolve_model(self, model_id: str, key: KeyRecord, *, endpoint: str) -> ModelEntry:
        """The model a key asks for, checked for existence, endpoint and permission."""
        model = self.registry.models.get(model_id)
        if model is None:
            # The name is the client's: echo a bounded part of it.
            shown = model_id if len(model_id) <= 100 else model_id[:100] + "..."
            raise ModelNotFound(
                f"The model '{shown}' does not exist. GET /v1/models lists the models "
                "this key can use.",
                param="model",
            )
        if endpoint == "chat" and not model.serves_chat():
            raise WrongEndpoint(
                f"'{model_id}' is an image model: send it to /v1/images/generations.",
                param="model",
            )
        if endpoint == "images" and not model.serves_images():
            raise WrongEndpoint(
                f"'{model_id}' is a text model: send it to /v1/chat/completions.",
                param="model",
            )
        if not key.allows(model.id, model.type, model.providers):
            raise ModelNotAllowed(
                f"This API key may not use the model '{model_id}'.", param="model"
            )
        return model

    async def admit_fresh(
        self,
        trace: RequestTrace,
        load_key: KeyLoader,
        admit: Callable[[KeyRecord], Awaitable[T]],
    ) -> T:
        """Run ``admit`` with the trace's key, reloading the key with ``load_key`` if another
        process edited it since this one cached it (so edits apply to the very next request)."""
        for _ in range(MAX_KEY_RELOADS):
            assert trace.key is not None
            try:
                return await admit(trace.key)
            except StaleKey:
                self.keys.forget(trace.key.id)
                trace.key = await load_key()
            except STORAGE_ERRORS as exc:
                log.error(
                    "storage unavailable while admitting a request",
                    extra={
                        "fields": {"request_id": trace.request_id, "error": type(exc).__name__}
                    },
                )
                raise StorageUnavailable(
                    "The gateway's storage is unavailable; try again shortly."
                ) from None
        raise InternalError("the API key kept changing while the request was admitted")


def bearer_token(request: Request) -> str | None:
    """The key from ``Authorization: Bearer ...``, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def new_request_id() -> str:
    """A short random id that ties the response, the log line and the log row together.

    It needs uniqueness, not secrecy, so the fast non-cryptographic generator will do.
    """
    return f"req_{random.getrandbits(96):024x}"


@dataclass
class RequestTrace:
    """Everything the request log and the access log need about one request."""

    endpoint: str
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    key: KeyRecord | None = None
    model: str | None = None
    provider: str | None = None
    attempts: int = 0
    stream: bool = False
    first_byte: float | None = None
    images: int = 0
    hold: Hold | None = None
    prices: dict[str, object] | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def mark_first_byte(self) -> None:
        """Note the time the first content reached the client."""
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    def headers(self) -> dict[str, str]:
        """Response headers that identify the request and who served it."""
        headers = {"x-request-id": self.request_id, **self.extra_headers}
        if self.provider:
            headers["x-vaultgate-provider"] = self.provider
        headers["x-vaultgate-attempts"] = str(self.attempts)
        return headers

    def finish(
        self,
        state: GatewayState,
        *,
        status: int,
        usage: Usage | None = None,
        cost_micros: int = 0,
        error: VaultGateError | str | None = None,
    ) -> None:
        """Queue the request-log row, count the request in the metrics and write the
        access-log line."""
        now = time.perf_counter()
        latency_ms = int((now - self.started) * 1000)
        ttft_ms = int((self.first_byte - self.started) * 1000) if self.first_byte else None
        usage = usage or Usage()
        message = error.message if isinstance(error, VaultGateError) else error
        # The hold is an upper bound; capping at it keeps the balance from going negative
        # even if a provider over-reports.
        charged = min(cost_micros, self.hold.amount_micros) if self.hold else 0
        tokens_used = min(usage.total_tokens, self.hold.tokens) if self.hold else 0
        entry = RequestLogEntry(
            created_at=dt.datetime.now(dt.UTC),
            request_id=self.request_id,
            endpoint=self.endpoint,
            status=status,
            latency_ms=latency_ms,
            key_id=self.key.id if self.key else None,
            user_id=self.key.user_id if self.key else None,
            model=self.model,
            provider=self.provider,
            stream=self.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            images=self.images,
            usage_estimated=usage.estimated,
            cost_micros=cost_micros,
            charged_micros=charged,
            ttft_ms=ttft_ms,
            attempts=self.attempts,
            error=message,
        )
        state.request_log.record(FinishedRequest(entry, self.hold, tokens_used, self.prices or {}))
        state.metrics.observe(entry, error)
        if not access_log_enabled():
            return
        log_access(
            {
                "request_id": self.request_id,
                "endpoint": self.endpoint,
                "key_id": entry.key_id,
                "model": self.model,
                "provider": self.provider,
                "status": status,
                "latency_ms": latency_ms,
                "ttft_ms": ttft_ms,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_micros": cost_micros,
                "attempts": self.attempts,
            }
        )
