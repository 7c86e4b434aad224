"""Sign-in throttling with the limits kept in Redis (shared by every process)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import PASSWORD, Accounts, assert_openai_error, new_email
from tests.conftest import Gateway, start_gateway
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import free_port, prepare_database

LOGIN_LIMIT_PER_ACCOUNT = 10


@pytest.fixture
def redis_gateway(tmp_path: Path, fake_upstream: FakeOpenAI) -> Iterator[Gateway]:
    """VaultGate on SQLite with its limits in a redis-server of its own."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
        prepare_database(url)
        env = {"VAULTGATE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        running = start_gateway(tmp_path, url, fake_upstream.base_url, env)
        yield running
        running.server.stop()
    finally:
        redis.terminate()
        redis.wait(10)


def test_login_eleventh_attempt_with_redis_limits_is_429(redis_gateway: Gateway) -> None:
    accounts = Accounts(redis_gateway.base_url)
    try:
        email = new_email("redis")
        accounts.register(email=email)
        session = accounts.anonymous()
        for _ in range(LOGIN_LIMIT_PER_ACCOUNT):
            wrong = session.post("/auth/login", json={"email": email, "password": "wrong-pass"})
            assert wrong.status_code == 401

        refused = session.post("/auth/login", json={"email": email, "password": PASSWORD})

        assert_openai_error(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        accounts.close()
