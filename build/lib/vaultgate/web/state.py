"""What the web pages share with the rest of the app."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.templating import Jinja2Templates

from vaultgate.accounts.keys import KeyCache
from vaultgate.config import Settings
from vaultgate.gateway.context import GatewayState
from vaultgate.limits.base import SlidingWindowLimiter
from vaultgate.providers.catalog import ModelEntry
from vaultgate.routing.breaker import Breakers


@dataclass
class WebState:
    """Long-lived objects the pages use."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyCache
    limiter: SlidingWindowLimiter
    models: Mapping[str, ModelEntry]
    templates: Jinja2Templates
    # The playground runs its requests through the /v1 code path with this state.
    gateway: GatewayState
    # The admin page shows each deployment's circuit breaker.
    breakers: Breakers
