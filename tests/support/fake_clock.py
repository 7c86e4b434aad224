"""A clock that moves only when a test moves it; its sleepers wake when their time comes."""

from __future__ import annotations

import asyncio
import datetime as dt


class FakeClock:
    """Implements ``vaultgate.clock.Clock`` with time set by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self._now = now
        self._moved = asyncio.Event()
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        """The time the test set."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the test has moved the clock ``seconds`` past now."""
        self.sleeps.append(seconds)
        until = self._now + dt.timedelta(seconds=seconds)
        while self._now < until:
            await self._moved.wait()

    def move_to(self, when: dt.datetime) -> None:
        """Set the time and wake every sleeper to check it."""
        self._now = when
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
