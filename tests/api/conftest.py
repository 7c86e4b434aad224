"""Fixtures of the management-API tests: a SQLite server per module for tests that need
no fresh state (every test makes its own accounts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.helpers import Accounts
from tests.conftest import Gateway, start_gateway
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import prepare_database

STARTER_CREDIT_MICROS = 2_500_000


@pytest.fixture(scope="module")
def api_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    """VaultGate on SQLite with a known starter credit, behind a trusted proxy, shared by
    a module."""
    tmp_path = tmp_path_factory.mktemp("api")
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    # Trusting X-Forwarded-For (as behind a proxy) lets each client have an address of its
    # own, so per-address sign-in limits of one test never reach another.
    env = {
        "VAULTGATE_STARTER_CREDIT_MICROS": str(STARTER_CREDIT_MICROS),
        "VAULTGATE_TRUST_PROXY_HEADERS": "true",
    }
    running = start_gateway(tmp_path, url, fake_upstream.base_url, env)
    yield running
    running.server.stop()


@pytest.fixture
def accounts(api_gateway: Gateway) -> Iterator[Accounts]:
    """Clients of the module's server, closed after the test."""
    made = Accounts(api_gateway.base_url)
    yield made
    made.close()
