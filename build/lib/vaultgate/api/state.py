"""What the management API shares with the rest of the app."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.keys import KeyCache
from vaultgate.billing.payments import StripeConfig
from vaultgate.config import Settings
from vaultgate.limits.base import SlidingWindowLimiter
from vaultgate.providers.catalog import ModelEntry
from vaultgate.routing.breaker import Breakers


@dataclass
class ApiState:
    """Long-lived objects the management API uses."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyCache
    limiter: SlidingWindowLimiter
    stripe: StripeConfig | None
    breakers: Breakers
    models: Mapping[str, ModelEntry]
