"""Exact sliding windows in Redis, shared by every process (atomic Lua script).

Each subject is a sorted set of ``member:weight`` entries scored by time in milliseconds;
the script drops expired entries, sums the rest and adds the new one only if it fits, all
in one atomic step, so concurrent processes can never admit more than the limit.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from vaultgate.limits.base import WINDOW_S, Decision
from vaultgate.redis_pool import DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_S, blocking_client

_SCRIPT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local member = ARGV[3]
local window_ms = tonumber(ARGV[4])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local total = 0
local oldest = nil
for i = 1, #entries, 2 do
  local w = tonumber(string.match(entries[i], ':(%d+)$'))
  total = total + w
  if oldest == nil then oldest = tonumber(entries[i + 1]) end
end
local reset_ms = window_ms
if oldest ~= nil then reset_ms = oldest + window_ms - now_ms end
if total + weight > limit then
  return {0, limit - total, reset_ms}
end
redis.call('ZADD', key, now_ms, member .. ':' .. weight)
redis.call('PEXPIRE', key, window_ms)
return {1, limit - total - weight, reset_ms}
"""


class RedisLimiter:
    """Sliding windows in Redis under ``vaultgate:limit:<subject>``."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._redis: Redis = blocking_client(url, pool_size=pool_size, timeout_s=timeout_s)
        self._script: Any = self._redis.register_script(_SCRIPT)

    async def hit(self, subject: str, *, limit: int, weight: int, member: str) -> Decision:
        """Run the script; one round trip."""
        allowed, remaining, reset_ms = await self._script(
            keys=[f"vaultgate:limit:{subject}"],
            args=[limit, weight, member, int(WINDOW_S * 1000)],
        )
        return Decision(bool(allowed), limit, max(int(remaining), 0), int(reset_ms) / 1000)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
