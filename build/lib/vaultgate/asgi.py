"""ASGI entry point for servers: ``uvicorn --factory vaultgate.asgi:build``."""

from __future__ import annotations

from vaultgate.app import create_app
from vaultgate.config import Settings
from vaultgate.gateway.hot_path import HotPath
from vaultgate.log import configure_logging


def build() -> HotPath:
    """Read the settings from the environment, set up logging, and build the app."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
