"""The wall clock, behind a small interface so tests can move time by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Tells the UTC time, and waits."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class WallClock:
    """The system clock and the event loop's timer."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the running loop."""
        await asyncio.sleep(seconds)
