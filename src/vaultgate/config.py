"""The one typed settings object.

Every setting is read from a ``VAULTGATE_*`` environment variable (or passed explicitly in
tests). Nothing else in the package reads the environment, except the provider registry,
which looks up provider credentials under the variable names the catalog and the operator's
config file declare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vaultgate.redis_pool import DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_S


class Settings(BaseSettings):
    """Runtime configuration of one VaultGate process."""

    model_config = SettingsConfigDict(env_prefix="VAULTGATE_", extra="ignore")

    data_dir: Path = Field(
        Path("vaultgate-data"),
        description="Directory for the SQLite database and generated images.",
    )
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
            "Defaults to a SQLite file in the data directory."
        ),
    )
    database_pool_size: int = Field(
        10,
        ge=2,
        description=(
            "Database connections per process for queries and batched writes; the "
            "request path's holds use up to half as many more."
        ),
    )
    config: Path | None = Field(
        None,
        description="Path of the operator's TOML file with extra providers and models.",
    )
    host: str = Field("127.0.0.1", description="Address `vaultgate serve` binds to.")
    port: int = Field(8080, description="Port `vaultgate serve` listens on.")
    workers: int = Field(1, ge=1, description="Number of server processes.")
    trust_proxy_headers: bool = Field(
        False,
        description="Take client address and scheme from X-Forwarded-* headers (behind a proxy).",
    )
    public_url: str | None = Field(
        None,
        description=(
            "Externally visible base URL, used in image URLs. Defaults to the URL the "
            "request arrived on."
        ),
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest accepted request body, in bytes."
    )
    body_read_timeout_s: float = Field(
        30.0,
        gt=0,
        description=(
            "Longest time a client may take to send a /v1 request body; slower ones get 408."
        ),
    )
    log_level: str = Field("INFO", description="Level of the structured log.")
    log_format: Literal["json", "text"] = Field(
        "json", description="Log line format: one JSON object per line, or plain text."
    )
    offline_provider: bool = Field(
        True, description="Offer the built-in offline provider and its models."
    )
    offline_token_delay_ms: float = Field(
        15.0, ge=0, description="Pause between streamed tokens of the offline provider."
    )
    offline_first_token_delay_ms: float = Field(
        40.0, ge=0, description="Pause before the first token of the offline provider."
    )
    request_log_flush_interval_s: float = Field(
        0.25, gt=0, description="Longest time a request-log row waits before it is written."
    )
    request_log_batch_size: int = Field(
        500, ge=1, description="Rows written per request-log batch."
    )
    request_log_max_pending: int = Field(
        200_000, ge=1000, description="Rows kept in memory while the database is unreachable."
    )
    key_sync_interval_s: float = Field(
        1.0,
        gt=0,
        description="How often a process checks the database for keys changed elsewhere.",
    )
    upstream_connect_timeout_s: float = Field(
        10.0, gt=0, description="Default connect timeout for provider requests."
    )
    upstream_read_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Default longest gap between bytes of a provider's body or stream.",
    )
    upstream_total_timeout_s: float = Field(
        600.0, gt=0, description="Default longest duration of one provider request."
    )
    upstream_max_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest provider response body read (larger ones fail with 502 and are cut off)."
        ),
    )
    upstream_max_event_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest single event or line in a provider's event stream (502 beyond).",
    )
    upstream_pool_size: int = Field(
        512, ge=1, description="Most open connections to all providers together."
    )
    upstream_pool_per_host: int = Field(
        256, ge=1, description="Most open connections to one provider host."
    )
    retry_max_attempts: int = Field(
        4, ge=1, description="Most deployments tried (attempts) for one request."
    )
    retry_max_rounds: int = Field(
        2, ge=1, description="Passes over a model's deployments, with backoff between them."
    )
    retry_budget_s: float = Field(
        120.0, gt=0, description="Longest time one request spends trying deployments."
    )
    breaker_failure_threshold: int = Field(
        3, ge=1, description="Consecutive failures that open a deployment's circuit breaker."
    )
    breaker_cooldown_s: float = Field(
        30.0, gt=0, description="First cooldown of an open breaker (doubles after a failed probe)."
    )
    upstream_first_byte_timeout_s: float = Field(
        60.0, gt=0, description="Default longest wait for a provider's response headers."
    )
    image_ttl_s: int = Field(
        3600, ge=60, description="How long generated images stay downloadable by URL."
    )
    redis_url: str | None = Field(
        None,
        description=(
            "Redis URL, e.g. redis://127.0.0.1:6379/0. When set, rate limits are shared by "
            "every process through it; otherwise they are kept in process."
        ),
    )
    redis_pool_size: int = Field(
        DEFAULT_POOL_SIZE,
        ge=1,
        description=(
            "Most Redis connections per process for rate limits (and as many again for "
            "circuit breakers); when all are busy, a request waits for a free one."
        ),
    )
    redis_timeout_s: float = Field(
        DEFAULT_TIMEOUT_S,
        gt=0,
        description=(
            "Longest wait for a free Redis connection, and for Redis to answer; past it the "
            "request fails with 503 storage_unavailable."
        ),
    )
    starter_credit_micros: int = Field(
        1_000_000,
        ge=0,
        description="Credit granted to each new account, in micro-USD (1,000,000 = $1).",
    )
    stale_hold_after_s: float = Field(
        1800.0,
        gt=0,
        description=(
            "Age after which a request's hold is deemed orphaned by a crashed process and "
            "released. Must exceed the longest request."
        ),
    )
    stripe_secret_key: str | None = Field(
        None, repr=False, description="Stripe secret key; enables Checkout top-ups."
    )
    stripe_webhook_secret: str | None = Field(
        None, repr=False, description="Signing secret of the Stripe webhook endpoint."
    )
    stripe_api_base: str | None = Field(
        None, description="Override of Stripe's API address (for a local test server)."
    )
    stripe_success_url: str = Field(
        "http://127.0.0.1:8080/dashboard/balance?paid=1",
        description="Where Stripe Checkout sends the user after paying.",
    )
    stripe_cancel_url: str = Field(
        "http://127.0.0.1:8080/dashboard/balance",
        description="Where Stripe Checkout sends the user after cancelling.",
    )
    alert_quota_percents: list[int] = Field(
        [80, 100],
        description="Token-quota percentages at which a key's owner is alerted (JSON list).",
    )
    alert_balance_micros: int = Field(
        100_000,
        ge=0,
        description="Alert an account whose balance falls below this (micro-USD; 0 = off).",
    )
    alert_webhook_url: str | None = Field(
        None, description="URL that receives each alert as a JSON POST."
    )
    metrics_token: str | None = Field(
        None,
        repr=False,
        description=(
            "Bearer token GET /metrics requires. When unset, metrics are served only to "
            "clients connecting from loopback (127.0.0.1, ::1) through no proxy."
        ),
    )
    admin_email: str = Field(
        "admin@localhost", description="Email of the first admin, created on first start."
    )
    admin_password: str | None = Field(
        None,
        description=(
            "Password of the first admin. When unset, a random one is generated and printed once."
        ),
    )

    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or the SQLite file default."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vaultgate.db').resolve()}"

    @property
    def image_dir(self) -> Path:
        """Where generated images are kept for download by URL."""
        return self.data_dir / "images"
