"""Trying a model's deployments in order until one answers.

Retryable failures (connection errors, timeouts, 429, 5xx, a provider refusing VaultGate's
own credentials) move on to the next deployment at once; a client error is returned as it
is. When every deployment fails the caller gets a 503 that says so, or a 429 when every
deployment was only rate-limiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from vaultgate.errors import NoProviderAvailable, RateLimited, UpstreamError, VaultGateError
from vaultgate.providers.base import Provider
from vaultgate.providers.catalog import Deployment, ModelEntry

log = logging.getLogger("vaultgate.routing")

T = TypeVar("T")


class AttemptTracker(Protocol):
    """Where the router records who is being tried (the request trace)."""

    provider: str | None
    attempts: int
    request_id: str


def _exhausted(model: ModelEntry, failures: list[UpstreamError]) -> VaultGateError:
    if failures and all(f.status == 429 for f in failures):
        retry_after = failures[-1].headers.get("retry-after")
        return RateLimited(
            f"Every provider of '{model.id}' is rate-limiting; try again shortly.",
            code="upstream_rate_limited",
            headers={"retry-after": retry_after} if retry_after else None,
        )
    summary = "; ".join(f.message for f in failures[-3:])
    return NoProviderAvailable(
        f"Every provider of '{model.id}' failed ({len(failures)} attempts): {summary}"
    )


async def call_with_failover(
    model: ModelEntry,
    providers: dict[str, Provider],
    trace: AttemptTracker,
    attempt: Callable[[Provider, Deployment], Awaitable[T]],
) -> T:
    """Run ``attempt`` on each deployment in turn until one succeeds."""
    failures: list[UpstreamError] = []
    for deployment in model.deployments:
        provider = providers.get(deployment.provider)
        if provider is None:
            continue
        trace.attempts += 1
        trace.provider = deployment.provider
        try:
            return await attempt(provider, deployment)
        except UpstreamError as failure:
            if not failure.retryable:
                raise
            failures.append(failure)
            log.warning(
                "deployment failed",
                extra={"fields": {
                    "request_id": trace.request_id, "model": model.id,
                    "provider": deployment.provider, "status": failure.status,
                    "error": failure.message,
                }},
            )  # fmt: skip
    raise _exhausted(model, failures)
