"""Authentication over raw HTTP: missing, malformed, unknown, revoked and expired keys."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import assert_openai_error, new_key, run_cli

CHAT_BODY = {"model": "offline-small-text", "messages": [{"role": "user", "content": "hi"}]}
REVOCATION_DEADLINE_S = 2.0


def _post_chat(gateway: Gateway, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions", json=CHAT_BODY, headers=headers, timeout=10
    )


def _get_models(gateway: Gateway, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(gateway.base_url + "/v1/models", headers=headers, timeout=10)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Token vg_abc"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "vg_just-the-key-without-a-scheme"},
        {"X-Api-Key": "vg_wrong-header"},
    ],
    ids=["none", "empty", "bearer-only", "token-scheme", "basic", "no-scheme", "x-api-key"],
)
def test_auth_missing_or_malformed_header_is_401(shared: Gateway, headers: dict[str, str]) -> None:
    error = assert_openai_error(_post_chat(shared, headers), 401)

    assert error["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(
    "key",
    ["vg_short", "sk-" + "a" * 48, "vg_" + "A" * 43, "vg_" + "A" * 44],
    ids=["short", "openai-style", "unknown", "too-long"],
)
def test_auth_unknown_key_is_401(shared: Gateway, key: str) -> None:
    error = assert_openai_error(_post_chat(shared, {"Authorization": f"Bearer {key}"}), 401)

    assert error["code"] == "invalid_api_key"
    assert key not in error["message"]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/offline-small-text"])
def test_auth_model_endpoints_require_key(shared: Gateway, path: str) -> None:
    response = httpx.get(shared.base_url + path, timeout=10)

    assert assert_openai_error(response, 401)["code"] == "invalid_api_key"


def test_auth_images_endpoint_requires_key(shared: Gateway) -> None:
    response = httpx.post(
        shared.base_url + "/v1/images/generations",
        json={"model": "offline-painter-image", "prompt": "x"},
        timeout=10,
    )

    assert_openai_error(response, 401)


def test_auth_key_checked_before_body(shared: Gateway) -> None:
    response = httpx.post(
        shared.base_url + "/v1/chat/completions", content=b"{not json", timeout=10
    )

    assert_openai_error(response, 401)


def test_auth_expired_key_is_401(shared: Gateway) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    key, _, _ = new_key(shared.database_url, expires_at=past)

    error = assert_openai_error(_post_chat(shared, {"Authorization": f"Bearer {key}"}), 401)

    assert error["code"] == "invalid_api_key"


def test_auth_key_with_future_expiry_works(shared: Gateway) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    key, _, _ = new_key(shared.database_url, expires_at=future)

    response = _post_chat(shared, {"Authorization": f"Bearer {key}"})

    assert response.status_code == 200, response.text


def test_auth_revoked_key_fails_within_two_seconds(shared: Gateway, tmp_path: Path) -> None:
    key, key_id, _ = new_key(shared.database_url)
    headers = {"Authorization": f"Bearer {key}"}
    assert _post_chat(shared, headers).status_code == 200
    assert _get_models(shared, headers).status_code == 200

    revoked = run_cli(
        ["keys", "revoke", str(key_id)], database_url=shared.database_url, data_dir=tmp_path
    )
    assert revoked.returncode == 0, revoked.stderr
    # /v1/models answers from the key cache alone, so only the key-sync poller can make
    # it refuse a key revoked by another process.
    deadline = time.monotonic() + REVOCATION_DEADLINE_S
    models = _get_models(shared, headers)
    while models.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        models = _get_models(shared, headers)

    assert assert_openai_error(models, 401)["code"] == "invalid_api_key"
    assert assert_openai_error(_post_chat(shared, headers), 401)["code"] == "invalid_api_key"


def test_auth_revoking_one_key_leaves_others_working(shared: Gateway, tmp_path: Path) -> None:
    doomed, doomed_id, _ = new_key(shared.database_url)
    survivor, _, _ = new_key(shared.database_url)

    revoked = run_cli(
        ["keys", "revoke", str(doomed_id)], database_url=shared.database_url, data_dir=tmp_path
    )

    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked key {doomed_id}" in revoked.stdout
    assert _post_chat(shared, {"Authorization": f"Bearer {survivor}"}).status_code == 200
    doomed_reply = _post_chat(shared, {"Authorization": f"Bearer {doomed}"})
    assert assert_openai_error(doomed_reply, 401)["code"] == "invalid_api_key"
