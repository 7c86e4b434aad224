"""Fixtures of the end-to-end gateway tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import new_key

ROOMY_RPM = 1_000_000


@pytest.fixture(scope="module")
def shared(sqlite_gateway: Gateway) -> Gateway:
    """The module's SQLite gateway, with a key whose rate limit no module can reach."""
    key, key_id, user_id = new_key(sqlite_gateway.database_url, rpm_limit=ROOMY_RPM)
    return dataclasses.replace(sqlite_gateway, key=key, key_id=key_id, user_id=user_id)


@pytest.fixture(scope="module")
def client(shared: Gateway) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the shared gateway, without client-side retries."""
    with openai.OpenAI(base_url=shared.api_base, api_key=shared.key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def http(shared: Gateway) -> Iterator[httpx.Client]:
    """A raw HTTP client for the shared gateway, authenticated with its key."""
    headers = {"Authorization": f"Bearer {shared.key}"}
    with httpx.Client(base_url=shared.base_url, headers=headers, timeout=30) as raw:
        yield raw


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, like the SDK's users mostly do."""
    return "asyncio"
