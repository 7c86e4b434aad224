"""Sign-in throttling with the limits kept in Redis (shared by every process), and what a
client sees when Redis does not answer."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import PASSWORD, Accounts, assert_openai_error, bearer, new_email
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


@pytest.fixture
def silent_redis_gateway(tmp_path: Path, fake_upstream: FakeOpenAI) -> Iterator[Gateway]:
    """VaultGate whose Redis accepts connections (into its backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
        prepare_database(url)
        env = {
            "VAULTGATE_REDIS_URL": f"redis://127.0.0.1:{listener.getsockname()[1]}/0",
            "VAULTGATE_REDIS_TIMEOUT_S": "0.2",
        }
        running = start_gateway(tmp_path, url, fake_upstream.base_url, env)
        yield running
        running.server.stop()
    finally:
        listener.close()


def test_redis_not_answering_is_503_storage_unavailable_after_the_wait(
    silent_redis_gateway: Gateway,
) -> None:
    accounts = Accounts(silent_redis_gateway.base_url)
    try:
        login = accounts.anonymous().post(
            "/auth/login", json={"email": new_email(), "password": PASSWORD}
        )
    finally:
        accounts.close()
    body = {"model": "fake-plain-text", "messages": [{"role": "user", "content": "hi"}]}
    chat = httpx.post(
        silent_redis_gateway.api_base + "/chat/completions",
        json=body,
        headers=bearer(silent_redis_gateway.key),
        timeout=30,
    )

    for response in (login, chat):
        assert assert_openai_error(response, 503)["code"] == "storage_unavailable"
