"""Circuit-breaker state shared by every process through Redis.

Decisions stay local and cost nothing on the healthy path: each process keeps its own
copy of the states. Every change a process makes (a failure, an opening, a closing) is
written to the hash ``vaultgate:breakers`` at once, in the background, and every process
adopts that hash every ``sync_interval_s``. Only one process may probe a deployment whose
cooldown ended: the probe is claimed with ``SET NX`` on a key that expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vaultgate.redis_pool import DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_S, blocking_client
from vaultgate.routing.breaker import BreakerPolicy, Breakers, BreakerState, Permit

log = logging.getLogger("vaultgate.routing")

STATES_KEY = "vaultgate:breakers"
PROBE_KEY = "vaultgate:breaker-probe:"


def _encode(state: BreakerState) -> bytes:
    return orjson.dumps({
        "failures": state.failures, "opened_until": state.opened_until,
        "cooldown_s": state.cooldown_s, "rate_limited": state.rate_limited,
    })  # fmt: skip


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: bytes | str) -> BreakerState:
    data = orjson.loads(raw)
    return BreakerState(
        failures=int(data["failures"]), opened_until=float(data["opened_until"]),
        cooldown_s=float(data["cooldown_s"]), rate_limited=bool(data["rate_limited"]),
    )  # fmt: skip


class SharedBreakers(Breakers):
    """Breakers whose state every process shares through Redis (wall-clock times)."""

    def __init__(
        self,
        policy: BreakerPolicy,
        redis_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(policy)
        self._clock = time.time
        self._redis: Redis = blocking_client(redis_url, pool_size=pool_size, timeout_s=timeout_s)
        self._writes: set[asyncio.Task[None]] = set()

    def _push(self, deployment_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._write(deployment_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, deployment_id: str) -> None:
        state = self._states.get(deployment_id)
        try:
            if state is None or (state.failures == 0 and state.opened_until == 0.0):
                await self._redis.hdel(STATES_KEY, deployment_id)
            else:
                await self._redis.hset(STATES_KEY, deployment_id, _encode(state))
        except RedisError as exc:
            log.warning(
                "breaker state not shared",
                extra={"fields": {"deployment": deployment_id, "error": type(exc).__name__}},
            )

    def success(self, deployment_id: str, permit: Permit) -> None:
        """Close locally, and everywhere if anything changed."""
        changed = deployment_id in self._states
        super().success(deployment_id, permit)
        if changed:
            self._states.pop(deployment_id, None)
            self._push(deployment_id)
        if permit is Permit.PROBE:
            self._release_probe(deployment_id)

    def failure(
        self, deployment_id: str, permit: Permit, *, retry_after_s: float | None = None
    ) -> None:
        """Count locally and share the new state."""
        super().failure(deployment_id, permit, retry_after_s=retry_after_s)
        self._push(deployment_id)
        if permit is Permit.PROBE:
            self._release_probe(deployment_id)

    def _release_probe(self, deployment_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._delete_probe(deployment_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _delete_probe(self, deployment_id: str) -> None:
        # On failure the claim expires by itself.
        with contextlib.suppress(RedisError):
            await self._redis.delete(PROBE_KEY + deployment_id)

    async def claim_probe(self, deployment_id: str) -> bool:
        """Only the process that sets the probe key first may probe."""
        ttl_ms = int(self.policy.probe_timeout_s * 1000)
        try:
            claimed = await self._redis.set(PROBE_KEY + deployment_id, b"1", nx=True, px=ttl_ms)
        except RedisError:
            return True  # without Redis, fall back to the local claim
        if not claimed:
            state = self._states.get(deployment_id)
            if state is not None:
                state.probing = False
        return bool(claimed)

    async def sync(self) -> None:
        """Adopt the shared states; a deployment absent from the hash is closed."""
        shared = await self._redis.hgetall(STATES_KEY)
        adopted = {_text(key): _decode(raw) for key, raw in shared.items()}
        for deployment_id, state in adopted.items():
            local = self._states.get(deployment_id)
            if local is not None and local.probing:
                state.probing, state.probe_started = True, local.probe_started
            self._states[deployment_id] = state
        for deployment_id in list(self._states):
            if deployment_id not in adopted and not self._states[deployment_id].probing:
                del self._states[deployment_id]

    async def flush_writes(self) -> None:
        """Wait until every state change made so far is written."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def aclose(self) -> None:
        """Finish pending writes and close the connection."""
        await self.flush_writes()
        await self._redis.aclose()
