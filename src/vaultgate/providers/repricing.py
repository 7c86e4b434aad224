"""Dated price changes, applied by a running app at 00:00 UTC of their date.

A model whose prices change keeps its dated schedule (``ModelEntry.price_schedule``). A
background task wakes at each UTC day boundary and swaps each affected registry entry for a
copy with the prices of the new day. Requests never look prices up again after admission:
each keeps the entry it was admitted with, so its hold, its charge and the prices recorded
with the charge all come from that one entry, even when it runs across midnight.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import MutableMapping
from dataclasses import replace

from vaultgate.clock import Clock
from vaultgate.providers.catalog import ModelEntry

log = logging.getLogger("vaultgate.providers")

# Wake at least this often, so that a wall clock set forward or back is caught up with.
MAX_WAIT_S = 3600.0


def reprice(models: MutableMapping[str, ModelEntry], day: dt.date) -> list[str]:
    """Give every model with a dated schedule the prices in force on ``day``; return the ids
    of the models whose prices changed. Entries are replaced, never mutated."""
    changed = []
    for model_id, entry in list(models.items()):
        if not entry.price_schedule:
            continue
        pricing = entry.pricing_on(day)
        if pricing != entry.pricing:
            models[model_id] = replace(entry, pricing=pricing)
            changed.append(model_id)
    return changed


def seconds_to_next_day(now: dt.datetime) -> float:
    """Seconds from ``now`` to the next 00:00 UTC, at most ``MAX_WAIT_S``."""
    now = now.astimezone(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return min((midnight - now).total_seconds(), MAX_WAIT_S)


class DailyRepricer:
    """Re-resolves the registry's prices at start and at each UTC day boundary."""

    def __init__(self, models: MutableMapping[str, ModelEntry], clock: Clock) -> None:
        self._models = models
        self._clock = clock

    def reprice_now(self) -> list[str]:
        """Apply the prices of the clock's current UTC day."""
        day = self._clock.now().astimezone(dt.UTC).date()
        changed = reprice(self._models, day)
        if changed:
            log.info(
                "prices changed",
                extra={"fields": {"day": day.isoformat(), "models": ",".join(changed)}},
            )
        return changed

    async def run(self) -> None:
        """Reprice now, then after each day boundary, until cancelled."""
        while True:
            self.reprice_now()
            await self._clock.sleep(seconds_to_next_day(self._clock.now()))
