"""Exact sliding windows kept in this process (the default, for a single process)."""

from __future__ import annotations

import time
from collections import deque

from vaultgate.limits.base import WINDOW_S, Decision


class _Window:
    __slots__ = ("hits", "total")

    def __init__(self) -> None:
        self.hits: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        cutoff = now - WINDOW_S
        while self.hits and self.hits[0][0] <= cutoff:
            _, weight = self.hits.popleft()
            self.total -= weight


class MemoryLimiter:
    """One deque of (time, weight) per subject; every check is O(expired hits)."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    async def hit(self, subject: str, *, limit: int, weight: int, member: str) -> Decision:
        """Admit the hit if the window has room for it."""
        now = time.monotonic()
        window = self._windows.get(subject)
        if window is None:
            window = self._windows[subject] = _Window()
        window.expire(now)
        reset = (window.hits[0][0] + WINDOW_S - now) if window.hits else WINDOW_S
        if window.total + weight > limit:
            return Decision(False, limit, max(limit - window.total, 0), reset)
        window.hits.append((now, weight))
        window.total += weight
        return Decision(True, limit, limit - window.total, reset)

    async def aclose(self) -> None:
        """Nothing to release."""
