"""What the web pages share with the rest of the app."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.templating import Jinja2Templates

from vaultgate.accounts.keys import KeyCache
from vaultgate.config import Settings
from vaultgate.limits.base import SlidingWindowLimiter
from vaultgate.providers.catalog import ModelEntry


@dataclass
class WebState:
    """Long-lived objects the pages use."""

    settings: Settings
    engine: AsyncEngine
    keys: KeyCache
    limiter: SlidingWindowLimiter
    models: Mapping[str, ModelEntry]
    templates: Jinja2Templates
