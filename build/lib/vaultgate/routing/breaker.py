"""Circuit breakers, one per deployment.

A deployment that fails ``failure_threshold`` times in a row opens: it is skipped for a
cooldown. When the cooldown ends, exactly one request is let through as a probe; if it
succeeds the breaker closes and the deployment takes full traffic again, if it fails the
breaker opens for a longer cooldown (doubling, capped). A 429 with ``Retry-After`` opens the
breaker for that long at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum


class Permit(Enum):
    """How a deployment may be used for one attempt."""

    NORMAL = "normal"
    PROBE = "probe"


@dataclass(slots=True)
class BreakerState:
    """One deployment's health."""

    failures: int = 0
    opened_until: float = 0.0
    cooldown_s: float = 0.0
    probing: bool = False
    probe_started: float = 0.0
    rate_limited: bool = False

    def status(self, now: float) -> str:
        """``closed``, ``open`` (cooling down) or ``half-open`` (awaiting a probe)."""
        if self.opened_until == 0.0:
            return "closed"
        return "open" if now < self.opened_until else "half-open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to open, and for how long."""

    failure_threshold: int = 3
    cooldown_s: float = 30.0
    max_cooldown_s: float = 600.0
    probe_timeout_s: float = 120.0


class Breakers:
    """The breakers of this process, by deployment id."""

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self._states: dict[str, BreakerState] = {}
        self._clock = time.monotonic

    def _state(self, deployment_id: str) -> BreakerState:
        state = self._states.get(deployment_id)
        if state is None:
            state = self._states[deployment_id] = BreakerState()
        return state

    def acquire(self, deployment_id: str) -> Permit | None:
        """A permit to try the deployment now, or None to skip it."""
        state = self._states.get(deployment_id)
        if state is None or state.opened_until == 0.0:
            return Permit.NORMAL
        now = self._clock()
        if now < state.opened_until:
            return None
        stale_probe = now - state.probe_started > self.policy.probe_timeout_s
        if state.probing and not stale_probe:
            return None
        state.probing = True
        state.probe_started = now
        return Permit.PROBE

    def success(self, deployment_id: str, permit: Permit) -> None:
        """The deployment answered: close its breaker."""
        state = self._states.get(deployment_id)
        if state is not None and (state.failures or state.opened_until or state.probing):
            self._states[deployment_id] = BreakerState()

    def failure(
        self, deployment_id: str, permit: Permit, *, retry_after_s: float | None = None
    ) -> None:
        """The deployment failed: count it, and open the breaker when it is time."""
        state = self._state(deployment_id)
        now = self._clock()
        state.failures += 1
        if permit is Permit.PROBE:
            state.probing = False
            state.cooldown_s = min(
                max(state.cooldown_s, self.policy.cooldown_s) * 2, self.policy.max_cooldown_s
            )
            state.opened_until = now + state.cooldown_s
        elif state.failures >= self.policy.failure_threshold:
            state.cooldown_s = self.policy.cooldown_s
            state.opened_until = now + state.cooldown_s
        state.rate_limited = bool(retry_after_s)
        if retry_after_s:
            state.opened_until = max(state.opened_until, now + retry_after_s)
            state.cooldown_s = max(state.cooldown_s, retry_after_s)

    def cooling(self, deployment_id: str) -> tuple[float, bool]:
        """Seconds of cooldown left, and whether the provider asked for it (a 429)."""
        state = self._states.get(deployment_id)
        if state is None:
            return 0.0, False
        return max(state.opened_until - self._clock(), 0.0), state.rate_limited

    async def claim_probe(self, deployment_id: str) -> bool:
        """Confirm a probe permit; in one process the local claim is enough."""
        return True

    async def aclose(self) -> None:
        """Nothing to release in process."""

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every known deployment's state, for the admin view."""
        now = self._clock()
        return {
            deployment_id: {
                "status": state.status(now),
                "consecutive_failures": state.failures,
                "cooldown_remaining_s": round(max(state.opened_until - now, 0.0), 3),
            }
            for deployment_id, state in self._states.items()
        }
