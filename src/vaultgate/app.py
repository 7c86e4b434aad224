"""The app factory: builds every long-lived object and wires the routes. No import side
effects: nothing happens until ``create_app`` is called and its lifespan starts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from vaultgate.accounts.keys import KeyCache
from vaultgate.api.app import create_api
from vaultgate.api.state import ApiState
from vaultgate.billing.alerts import AlertChecker, AlertRules
from vaultgate.billing.hold_stores import build_hold_store
from vaultgate.billing.payments import StripeConfig
from vaultgate.billing.reservations import release_stale
from vaultgate.clock import Clock, WallClock
from vaultgate.config import Settings
from vaultgate.errors import InternalError, MethodNotAllowed, NotFound, VaultGateError
from vaultgate.gateway.chat import chat_completions
from vaultgate.gateway.context import GatewayState
from vaultgate.gateway.hot_path import HotPath
from vaultgate.gateway.image_store import ImageStore
from vaultgate.gateway.images import image_file, image_generations
from vaultgate.gateway.models import get_model, list_models
from vaultgate.gateway.responses import JsonResponse, error_response
from vaultgate.limits.base import SlidingWindowLimiter
from vaultgate.limits.memory import MemoryLimiter
from vaultgate.limits.redis import RedisLimiter
from vaultgate.metrics.endpoint import metrics_endpoint
from vaultgate.metrics.requests import RequestMetrics
from vaultgate.metrics.scrape import MetricsExporter
from vaultgate.providers.catalog import load_catalog
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.registry import Registry
from vaultgate.providers.repricing import DailyRepricer
from vaultgate.routing.breaker import BreakerPolicy, Breakers
from vaultgate.routing.router import RetryPolicy, Router
from vaultgate.routing.shared_breaker import SharedBreakers
from vaultgate.storage.database import create_engine
from vaultgate.usage.request_log import RequestLogWriter
from vaultgate.web.app import create_web
from vaultgate.web.render import build_templates
from vaultgate.web.state import WebState

log = logging.getLogger("vaultgate.app")

IMAGE_PURGE_INTERVAL_S = 300.0
STALE_HOLD_CHECK_S = 60.0
BREAKER_SYNC_S = 0.5
READY_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the database answers and the request-log writer runs."""
    state: GatewayState = request.app.state.gateway
    checks = {"database": "ok", "request_log": "ok"}
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        checks["database"] = "unavailable"
    if not state.request_log.running:
        checks["request_log"] = "stopped"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
V1_PATHS = frozenset({"/v1/chat/completions", "/v1/images/generations", "/v1/models"})


async def _v1_unknown(request: Request) -> Response:
    """Anything else under /v1 answers in OpenAI's error shape, never as a web page."""
    if request.url.path in V1_PATHS or request.url.path.startswith("/v1/models/"):
        return error_response(MethodNotAllowed(f"{request.method} is not allowed here."))
    return error_response(NotFound(f"Unknown path {request.url.path}.", code="unknown_path"))


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(NotFound(f"Unknown path {request.url.path}.", code="unknown_path"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"{request.method} is not allowed here."))
    if exc.status_code == 404:
        return await _not_found(request, exc)
    error = VaultGateError(str(exc.detail))
    error.status = exc.status_code
    error.error_type = "invalid_request_error"
    return error_response(error)


async def _vaultgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultGateError)
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    return error_response(InternalError("The server had an error processing your request."))


async def _every(interval: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except (SQLAlchemyError, OSError, RedisError):
            log.exception("periodic job failed", extra={"fields": {"job": name}})


def stale_hold_check_s(settings: Settings) -> float:
    """How often to look for orphaned holds: each minute, or as often as they go stale."""
    return min(STALE_HOLD_CHECK_S, settings.stale_hold_after_s)


def build_limiter(settings: Settings) -> SlidingWindowLimiter:
    """Redis-backed limits when Redis is configured, in-process ones otherwise."""
    if settings.redis_url:
        return RedisLimiter(
            settings.redis_url,
            pool_size=settings.redis_pool_size,
            timeout_s=settings.redis_timeout_s,
        )
    return MemoryLimiter()


def stripe_config(settings: Settings) -> StripeConfig | None:
    """Stripe Checkout settings, when both of its secrets are configured."""
    if not (settings.stripe_secret_key and settings.stripe_webhook_secret):
        return None
    return StripeConfig(
        secret_key=settings.stripe_secret_key,
        webhook_secret=settings.stripe_webhook_secret,
        success_url=settings.stripe_success_url,
        cancel_url=settings.stripe_cancel_url,
        api_base=settings.stripe_api_base,
    )


def build_breakers(settings: Settings) -> Breakers:
    """Breakers shared through Redis when it is configured, per process otherwise."""
    policy = BreakerPolicy(
        failure_threshold=settings.breaker_failure_threshold,
        cooldown_s=settings.breaker_cooldown_s,
    )
    if settings.redis_url:
        return SharedBreakers(
            policy,
            settings.redis_url,
            pool_size=settings.redis_pool_size,
            timeout_s=settings.redis_timeout_s,
        )
    return Breakers(policy)


def create_app(
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
) -> HotPath:
    """Build the ASGI app. ``environ`` supplies provider credentials (default: os.environ);
    ``clock`` tells the day whose prices are in force (default: the wall clock)."""
    settings = settings or Settings()
    environ = os.environ if environ is None else environ
    clock = clock or WallClock()
    catalog = load_catalog(settings.config, today=clock.now().date())
    engine = create_engine(settings.resolved_database_url(), pool_size=settings.database_pool_size)
    http = HttpClient(
        pool_size=settings.upstream_pool_size,
        pool_per_host=settings.upstream_pool_per_host,
        timeouts=Timeouts(
            connect=settings.upstream_connect_timeout_s,
            read=settings.upstream_read_timeout_s,
            first_byte=settings.upstream_first_byte_timeout_s,
            total=settings.upstream_total_timeout_s,
        ),
        max_response_bytes=settings.upstream_max_body_bytes,
        max_event_bytes=settings.upstream_max_event_bytes,
    )
    registry = Registry.build(catalog, settings=settings, http=http, environ=environ)
    alerts = AlertChecker(engine, AlertRules(
        quota_percents=tuple(settings.alert_quota_percents),
        balance_micros=settings.alert_balance_micros,
        webhook_url=settings.alert_webhook_url,
    ))  # fmt: skip
    state = GatewayState(
        settings=settings,
        registry=registry,
        keys=KeyCache(engine),
        request_log=RequestLogWriter(
            engine,
            flush_interval_s=settings.request_log_flush_interval_s,
            batch_size=settings.request_log_batch_size,
            max_pending=settings.request_log_max_pending,
            on_settled=alerts.check,
        ),
        images=ImageStore(settings.image_dir, ttl_s=settings.image_ttl_s),
        engine=engine,
        limiter=build_limiter(settings),
        holds=build_hold_store(
            engine,
            settings.resolved_database_url(),
            pool_size=max(settings.database_pool_size // 2, 1),
        ),
        router=Router(
            registry.providers,
            build_breakers(settings),
            RetryPolicy(
                max_attempts=settings.retry_max_attempts,
                max_rounds=settings.retry_max_rounds,
                budget_s=settings.retry_budget_s,
            ),
        ),
        metrics=RequestMetrics(registry.models),
    )
    repricer = DailyRepricer(registry.models, clock)
    exporter = MetricsExporter(
        state.metrics, breakers=state.router.breakers, models=registry.models,
        request_log=state.request_log,
    )  # fmt: skip

    async def release_orphans() -> int:
        return await release_stale(
            engine, older_than=dt.timedelta(seconds=settings.stale_hold_after_s)
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.request_log.start()
        jobs = [
            asyncio.create_task(
                _every(settings.key_sync_interval_s, state.keys.sync_changes, "key-sync")
            ),
            asyncio.create_task(
                _every(IMAGE_PURGE_INTERVAL_S, state.images.purge_expired, "image-purge")
            ),
            asyncio.create_task(
                _every(stale_hold_check_s(settings), release_orphans, "stale-holds")
            ),
            asyncio.create_task(repricer.run(), name="repricing"),
        ]
        breakers = state.router.breakers
        if isinstance(breakers, SharedBreakers):
            jobs.append(asyncio.create_task(_every(BREAKER_SYNC_S, breakers.sync, "breakers")))
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await state.request_log.close()
            await alerts.aclose()
            await state.limiter.aclose()
            await state.holds.aclose()
            await state.router.breakers.aclose()
            await registry.aclose()
            await http.aclose()
            await engine.dispose()

    api_state = ApiState(
        settings=settings, engine=engine, keys=state.keys, limiter=state.limiter,
        stripe=stripe_config(settings), breakers=state.router.breakers,
        models=registry.models,
    )  # fmt: skip
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/images/generations", image_generations, methods=["POST"]),
        Route("/v1/images/files/{name}", image_file, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint(exporter.render, settings.metrics_token)),
        Route("/v1", _v1_unknown, methods=ALL_METHODS),
        Route("/v1/{rest:path}", _v1_unknown, methods=ALL_METHODS),
        Mount("/api", app=create_api(api_state)),
        Mount(
            "/",
            app=create_web(
                WebState(
                    settings=settings,
                    engine=engine,
                    keys=state.keys,
                    limiter=state.limiter,
                    models=registry.models,
                    templates=build_templates(),
                    gateway=state,
                    breakers=state.router.breakers,
                )
            ),
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            404: _not_found,
            HTTPException: _http_error,
            VaultGateError: _vaultgate_error,
            Exception: _unexpected,
        },
    )
    app.state.gateway = state
    app.state.engine = engine
    return HotPath(app, {
        ("POST", "/v1/chat/completions"): chat_completions,
        ("POST", "/v1/images/generations"): image_generations,
    })  # fmt: skip
