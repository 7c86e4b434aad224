"""Breaker state shared through Redis: two instances stand in for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from vaultgate.routing.breaker import BreakerPolicy, Permit
from vaultgate.routing.shared_breaker import STATES_KEY, SharedBreakers

REDIS_URL = "redis://127.0.0.1:6379/7"
DEPLOYMENT = "fake/error-503"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SharedBreakers, SharedBreakers]]:
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    except OSError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    policy = BreakerPolicy(failure_threshold=2, cooldown_s=0.2, probe_timeout_s=5)
    first, second = SharedBreakers(policy, REDIS_URL), SharedBreakers(policy, REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()
    await redis.flushdb()
    await redis.aclose()


async def _settle(*breakers: SharedBreakers) -> None:
    """Let background writes land, then sync every instance."""
    for breaker in breakers:
        await breaker.flush_writes()
    for breaker in breakers:
        await breaker.sync()


@pytest.mark.anyio
async def test_shared_breaker_opened_in_one_process_is_skipped_by_another(
    pair: tuple[SharedBreakers, SharedBreakers],
) -> None:
    first, second = pair
    for _ in range(2):
        first.failure(DEPLOYMENT, Permit.NORMAL)
    await _settle(first, second)

    assert first.acquire(DEPLOYMENT) is None
    assert second.acquire(DEPLOYMENT) is None
    assert second.snapshot()[DEPLOYMENT]["status"] == "open"


@pytest.mark.anyio
async def test_shared_breaker_after_cooldown_only_one_process_probes(
    pair: tuple[SharedBreakers, SharedBreakers],
) -> None:
    first, second = pair
    for _ in range(2):
        first.failure(DEPLOYMENT, Permit.NORMAL)
    await _settle(first, second)
    await asyncio.sleep(0.3)

    permits = [first.acquire(DEPLOYMENT), second.acquire(DEPLOYMENT)]
    assert permits == [Permit.PROBE, Permit.PROBE]
    claims = [await first.claim_probe(DEPLOYMENT), await second.claim_probe(DEPLOYMENT)]
    assert sorted(claims) == [False, True]


@pytest.mark.anyio
async def test_shared_breaker_probe_success_closes_it_everywhere(
    pair: tuple[SharedBreakers, SharedBreakers],
) -> None:
    first, second = pair
    for _ in range(2):
        first.failure(DEPLOYMENT, Permit.NORMAL)
    await _settle(first, second)
    await asyncio.sleep(0.3)
    assert second.acquire(DEPLOYMENT) is Permit.PROBE
    assert await second.claim_probe(DEPLOYMENT)

    second.success(DEPLOYMENT, Permit.PROBE)
    await _settle(second, first)

    assert first.acquire(DEPLOYMENT) is Permit.NORMAL
    assert DEPLOYMENT not in first.snapshot()
    redis = Redis.from_url(REDIS_URL)
    assert await redis.hget(STATES_KEY, DEPLOYMENT) is None
    await redis.aclose()
