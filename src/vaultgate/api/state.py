"""What the management API shares with the rest of the app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.keys import KeyCache
from vaultgate.billing.payments import StripeConfig
from vaultgate.config import Settings
from vaultgate.limits.base import SlidingWindowLimiter


@dataclass
class ApiState:
    """Long-lived objects the management API uses."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyCache
    limiter: SlidingWindowLimiter
    stripe: StripeConfig | None
