"""Shared fixtures: a fake OpenAI-compatible upstream, databases, and VaultGate servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.server import (
    ServerProcess,
    create_postgres_database,
    drop_postgres_database,
    make_user_and_key,
    postgres_available,
    prepare_database,
)

FAKE_UPSTREAM_KEY = "sk-fake-upstream-secret-0123456789"

QUIRK_MODELS = [
    "plain", "no-usage", "comments", "client-error-as-500", "malformed",
    "stream-error-after-2", "cut-after-2", "error-400", "error-401", "error-429",
    "error-500", "error-503", "text-error-502", "detail-error-422",
]  # fmt: skip


def operator_config(fake_base_url: str) -> str:
    """An operator TOML file routing ``fake-*`` models to the fake upstream."""
    lines = [
        "[providers.fake]",
        'format = "openai"',
        f'base_url = "{fake_base_url}"',
        'api_key_env = "FAKE_UPSTREAM_KEY"',
        "",
        "[providers.fake-backup]",
        'format = "openai"',
        f'base_url = "{fake_base_url}"',
        'api_key_env = "FAKE_UPSTREAM_KEY"',
        "",
    ]
    for quirk in QUIRK_MODELS:
        lines += [
            "[[models]]",
            f'id = "fake-{quirk}-text"',
            'provider = "fake"',
            f'upstream = "{quirk}"',
            'pricing = { input = "1.00", output = "2.00" }',
            "",
        ]
    lines += [
        "[[models]]",
        'id = "fake-failover-text"',
        'pricing = { input = "1.00", output = "2.00" }',
        "deployments = [",
        '    { provider = "fake", upstream = "error-503" },',
        '    { provider = "fake-backup", upstream = "plain" },',
        "]",
        "",
        "[[models]]",
        'id = "fake-dalle-image"',
        'provider = "fake"',
        'upstream = "plain"',
        "[models.pricing.images]",
        '"1024x1024" = "0.04"',
        '"256x256" = "0.01"',
        "",
    ]
    return "\n".join(lines)


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeOpenAI]:
    """The fake OpenAI-compatible server, shared by the whole session."""
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    """Whether PostgreSQL is reachable; under CI its absence is an error, not a skip."""
    available = postgres_available()
    if not available and os.environ.get("CI"):
        raise RuntimeError("PostgreSQL is required under CI but is not reachable")
    return available


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool
) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
        prepare_database(url)
        yield url
        return
    if not postgres_ok:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    url = create_postgres_database()
    prepare_database(url)
    yield url
    drop_postgres_database(url)


@dataclass
class Gateway:
    """A running VaultGate with one user and one unrestricted key."""

    server: ServerProcess
    key: str
    key_id: int
    user_id: int
    database_url: str

    @property
    def base_url(self) -> str:
        """Root URL."""
        return self.server.base_url

    @property
    def api_base(self) -> str:
        """The ``/v1`` base URL for SDKs."""
        return self.server.base_url + "/v1"


def start_gateway(
    tmp_path: Path, database_url: str, fake_base_url: str, extra_env: dict[str, str] | None = None
) -> Gateway:
    """Start VaultGate on ``database_url`` with the fake provider configured."""
    config = tmp_path / "vaultgate.toml"
    config.write_text(operator_config(fake_base_url))
    user, key, key_id = make_user_and_key(database_url)
    env = {
        "VAULTGATE_CONFIG": str(config),
        "FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY,
        **(extra_env or {}),
    }
    server = ServerProcess(tmp_path / "data", database_url, env=env).start()
    return Gateway(server, key, key_id, user.id, database_url)


@pytest.fixture
def gateway(tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI) -> Iterator[Gateway]:
    """VaultGate on SQLite and on PostgreSQL."""
    running = start_gateway(tmp_path, database_url, fake_upstream.base_url)
    yield running
    running.server.stop()


@pytest.fixture(scope="module")
def sqlite_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    """One VaultGate on SQLite shared by a module, for tests that need no fresh state."""
    tmp_path = tmp_path_factory.mktemp("gateway")
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    running = start_gateway(tmp_path, url, fake_upstream.base_url)
    yield running
    running.server.stop()
