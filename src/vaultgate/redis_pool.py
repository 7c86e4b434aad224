"""Redis clients whose connection pool waits for a free connection instead of failing.

redis-py's default asyncio pool raises ``MaxConnectionsError`` as soon as all of its
connections are busy, so a burst of concurrent requests would fail although Redis itself
is fine. A blocking pool queues them instead, for a bounded time; the same bound limits how
long a command may wait for Redis to answer. Past it redis-py raises a ``RedisError``,
which callers turn into 503 ``storage_unavailable``.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

DEFAULT_POOL_SIZE = 100
DEFAULT_TIMEOUT_S = 5.0


def blocking_client(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Redis:
    """A client of ``url`` with at most ``pool_size`` connections, waiting up to
    ``timeout_s`` for a free one, to connect, or for an answer."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return Redis.from_pool(pool)
