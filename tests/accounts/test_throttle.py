"""Sign-in throttling: a lockout holds for one account from one address, the address has a
looser limit of its own, and with Redis every process counts together."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vaultgate.accounts.throttle import (
    ATTEMPTS_PER_ACCOUNT_AND_ADDRESS,
    ATTEMPTS_PER_ADDRESS,
    sign_in_refusal,
)
from vaultgate.limits.memory import MemoryLimiter
from vaultgate.limits.redis import RedisLimiter

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/9"


def _email() -> str:
    return f"victim-{uuid.uuid4().hex[:12]}@example.com"


async def test_sign_in_locked_account_is_refused_only_from_the_guessing_address() -> None:
    limiter = MemoryLimiter()
    email = _email()
    for _ in range(ATTEMPTS_PER_ACCOUNT_AND_ADDRESS):
        assert await sign_in_refusal(limiter, email=email, address="10.0.0.1") is None

    guesser = await sign_in_refusal(limiter, email=email.upper(), address="10.0.0.1")
    owner = await sign_in_refusal(limiter, email=email, address="10.0.0.2")

    assert guesser is not None
    assert 1 <= guesser.retry_after_s() <= 60
    assert owner is None


async def test_sign_in_one_address_over_many_accounts_is_refused_for_every_account() -> None:
    limiter = MemoryLimiter()
    for _ in range(ATTEMPTS_PER_ADDRESS):
        assert await sign_in_refusal(limiter, email=_email(), address="10.0.0.3") is None

    refused = await sign_in_refusal(limiter, email=_email(), address="10.0.0.3")
    elsewhere = await sign_in_refusal(limiter, email=_email(), address="10.0.0.4")

    assert refused is not None
    assert elsewhere is None


@pytest.fixture
async def redis_limiters() -> AsyncIterator[tuple[RedisLimiter, RedisLimiter]]:
    """Two limiters on one Redis, as two processes have."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except (OSError, RedisError):
        await redis.aclose()
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    first, second = RedisLimiter(REDIS_URL), RedisLimiter(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()
    await redis.aclose()


async def test_sign_in_lockout_in_redis_holds_in_every_process(
    redis_limiters: tuple[RedisLimiter, RedisLimiter],
) -> None:
    first, second = redis_limiters
    email, address, other = _email(), f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    for attempt in range(ATTEMPTS_PER_ACCOUNT_AND_ADDRESS):
        process = first if attempt % 2 else second
        assert await sign_in_refusal(process, email=email, address=address) is None

    refused = await sign_in_refusal(first, email=email, address=address)
    refused_too = await sign_in_refusal(second, email=email, address=address)
    owner = await sign_in_refusal(second, email=email, address=other)

    assert refused is not None
    assert refused_too is not None
    assert owner is None
