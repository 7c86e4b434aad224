"""Choosing deployments for a model and failing over between them.

Deployments are tried by priority (their order in the catalog, or an explicit
``priority``); within one priority level, weights spread the load at random. A retryable
failure (connection error, timeout, 429, 5xx, a provider refusing VaultGate's own
credentials) moves on to the next deployment at once — a 429's ``Retry-After`` is a reason
to try elsewhere, not to sleep. Only when every deployment has been tried does a new round
start, after a backoff with jitter; attempts and time per request are bounded. A client
error is returned as it is, and proves the deployment healthy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from vaultgate.errors import NoProviderAvailable, RateLimited, UpstreamError, VaultGateError
from vaultgate.providers.base import Provider
from vaultgate.providers.catalog import Deployment, ModelEntry
from vaultgate.routing.breaker import Breakers, Permit

log = logging.getLogger("vaultgate.routing")

T = TypeVar("T")


class AttemptTracker(Protocol):
    """Where the router records who is being tried (the request trace)."""

    provider: str | None
    attempts: int
    request_id: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds on one request's attempts."""

    max_attempts: int = 4
    max_rounds: int = 2
    backoff_base_s: float = 0.25
    backoff_max_s: float = 2.0
    budget_s: float = 120.0


def deployment_id(deployment: Deployment) -> str:
    """The breaker key of a deployment."""
    return f"{deployment.provider}/{deployment.upstream}"


def ordered(deployments: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    """Deployments by priority; within a priority, a weighted random order."""
    levels: dict[int, list[Deployment]] = {}
    for deployment in deployments:
        levels.setdefault(deployment.priority, []).append(deployment)
    plan: list[Deployment] = []
    for priority in sorted(levels):
        pool = list(levels[priority])
        while pool:
            if len(pool) == 1:
                plan.append(pool.pop())
                break
            pick = rng.choices(range(len(pool)), weights=[d.weight for d in pool])[0]
            plan.append(pool.pop(pick))
    return plan


def _retry_after(failure: UpstreamError) -> float | None:
    value = failure.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Router:
    """Runs attempts over a model's deployments, with breakers and retry bounds."""

    def __init__(
        self,
        providers: dict[str, Provider],
        breakers: Breakers,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.providers = providers
        self.breakers = breakers
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()

    async def call(
        self,
        model: ModelEntry,
        trace: AttemptTracker,
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
    ) -> T:
        """Run ``attempt`` on deployments until one succeeds, or raise 503 (or 429)."""
        policy = self.policy
        deadline = time.monotonic() + policy.budget_s
        failures: list[UpstreamError] = []
        skipped: list[str] = []
        for round_number in range(policy.max_rounds):
            if round_number:
                if not failures or time.monotonic() >= deadline:
                    break
                delay = min(policy.backoff_max_s, policy.backoff_base_s * 2**round_number)
                await asyncio.sleep(self._rng.uniform(delay / 2, delay))
            for deployment in ordered(model.deployments, self._rng):
                if trace.attempts >= policy.max_attempts or time.monotonic() >= deadline:
                    raise self._exhausted(model, failures, skipped)
                outcome = await self._try(deployment, trace, attempt, failures)
                if outcome is _SKIPPED:
                    skipped.append(deployment_id(deployment))
                elif outcome is not _FAILED:
                    return outcome  # type: ignore[return-value]
        raise self._exhausted(model, failures, skipped)

    async def _try(
        self,
        deployment: Deployment,
        trace: AttemptTracker,
        attempt: Callable[[Provider, Deployment], Awaitable[T]],
        failures: list[UpstreamError],
    ) -> T | object:
        provider = self.providers.get(deployment.provider)
        key = deployment_id(deployment)
        permit = self.breakers.acquire(key) if provider is not None else None
        if provider is None or permit is None:
            return _SKIPPED
        if permit is Permit.PROBE and not await self.breakers.claim_probe(key):
            return _SKIPPED
        trace.attempts += 1
        trace.provider = deployment.provider
        try:
            result = await attempt(provider, deployment)
        except UpstreamError as failure:
            if not failure.retryable:
                self.breakers.success(key, permit)
                raise
            self.breakers.failure(key, permit, retry_after_s=_retry_after(failure))
            failures.append(failure)
            log.warning(
                "deployment failed",
                extra={"fields": {
                    "request_id": trace.request_id, "deployment": key,
                    "status": failure.status, "error": failure.message,
                }},
            )  # fmt: skip
            return _FAILED
        self.breakers.success(key, permit)
        return result

    def _exhausted(
        self, model: ModelEntry, failures: list[UpstreamError], skipped: list[str]
    ) -> VaultGateError:
        cooling = [self.breakers.cooling(key) for key in skipped]
        throttled = all(f.status == 429 for f in failures) and all(
            limited for _, limited in cooling
        )
        if throttled and (failures or cooling):
            waits = [left for left, _ in cooling] + [_retry_after(f) or 0.0 for f in failures]
            retry_after = max(1, math.ceil(min(waits)))
            return RateLimited(
                f"Every provider of '{model.id}' is rate-limiting; try again shortly.",
                code="upstream_rate_limited",
                headers={"retry-after": str(retry_after)},
            )
        if not failures:
            return NoProviderAvailable(
                f"Every provider of '{model.id}' is cooling down after failures; "
                "try again shortly."
            )
        summary = "; ".join(dict.fromkeys(f.message for f in failures[-3:]))
        cooling_note = f", {len(skipped)} cooling down" if skipped else ""
        return NoProviderAvailable(
            f"Every provider of '{model.id}' failed ({len(failures)} attempts{cooling_note}): "
            f"{summary}"
        )


_SKIPPED = object()
_FAILED = object()
