"""The limiter interface and the decision it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request fits a limit, and what to tell the client about it."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float

    def retry_after_s(self) -> int:
        """Whole seconds to wait before the request would fit (for ``Retry-After``)."""
        return max(1, math.ceil(self.reset_s))


class SlidingWindowLimiter(Protocol):
    """Counts weighted hits per subject over the last 60 seconds, exactly."""

    async def hit(self, subject: str, *, limit: int, weight: int, member: str) -> Decision:
        """Admit ``weight`` more if it fits under ``limit`` (and record it), else refuse."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def format_reset(seconds: float) -> str:
    """A reset duration as OpenAI writes it: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 1)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
