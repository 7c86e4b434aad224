"""The Redis limiter under a burst: more concurrent checks than pooled connections wait for
one, and a Redis that does not answer fails them after the bounded wait, not never."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vaultgate.limits.redis import RedisLimiter

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/9"
BURST = 300
# Far above any wait the test can cause; it only keeps a hang from stalling the suite.
GUARD_S = 30.0


@pytest.fixture
async def subject() -> AsyncIterator[str]:
    """A limiter subject of this test alone, deleted afterwards."""
    name = f"test-burst-{uuid.uuid4().hex}"
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except (OSError, RedisError):
        await redis.aclose()
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    yield name
    await redis.delete(f"vaultgate:limit:{name}")
    await redis.aclose()


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A URL whose server accepts connections (into its backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


async def test_redis_limiter_burst_over_the_pool_size_admits_every_hit(subject: str) -> None:
    limiter = RedisLimiter(REDIS_URL)
    try:
        async with asyncio.timeout(GUARD_S):
            decisions = await asyncio.gather(*(
                limiter.hit(subject, limit=BURST, weight=1, member=f"m{n}")
                for n in range(BURST)
            ))  # fmt: skip
            over = await limiter.hit(subject, limit=BURST, weight=1, member="one-more")
    finally:
        await limiter.aclose()

    assert all(decision.allowed for decision in decisions)
    assert sorted(decision.remaining for decision in decisions) == list(range(BURST))
    assert not over.allowed


async def test_redis_limiter_pool_busy_with_silent_redis_fails_after_the_wait(
    silent_redis: str,
) -> None:
    limiter = RedisLimiter(silent_redis, pool_size=1, timeout_s=0.05)
    try:
        async with asyncio.timeout(GUARD_S):
            outcomes = await asyncio.gather(
                *(limiter.hit("s", limit=10, weight=1, member=f"m{n}") for n in range(3)),
                return_exceptions=True,
            )
    finally:
        await limiter.aclose()

    assert all(isinstance(outcome, RedisError) for outcome in outcomes), outcomes
