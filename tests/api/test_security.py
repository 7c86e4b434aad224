"""Isolation between accounts, and secrets kept out of responses and logs, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import Accounts, ApiSession, assert_openai_error, chat, wait_for
from tests.conftest import FAKE_UPSTREAM_KEY, Gateway


def _wait_for_usage_rows(session: ApiSession, count: int) -> None:
    def rows() -> list[Any]:
        return list(session.get("/usage").json())

    wait_for(rows, lambda found: len(found) == count, "usage rows")


def _key_with_usage(gateway: Gateway, session: ApiSession) -> None:
    created = session.post("/keys", json={"name": "mine", "token_quota": 100_000})
    assert created.status_code == 201, created.text
    session.user["key"] = created.json()["key"]
    session.user["key_id"] = created.json()["id"]
    for model in ("offline-small-text", "fake-plain-text"):
        answer = chat(gateway.base_url, created.json()["key"], model, max_tokens=5)
        assert answer.status_code == 200, answer.text
    _wait_for_usage_rows(session, 2)


@pytest.fixture
def pair(gateway: Gateway) -> Iterator[tuple[Accounts, ApiSession, ApiSession]]:
    """Two accounts on the per-test gateway, each with a key that made a request."""
    accounts = Accounts(gateway.base_url)
    try:
        alice, bob = accounts.register(), accounts.register()
        for session in (alice, bob):
            _key_with_usage(gateway, session)
        yield accounts, alice, bob
    finally:
        accounts.close()


def test_security_other_accounts_key_is_404_to_read_edit_or_revoke(
    gateway: Gateway, pair: tuple[Accounts, ApiSession, ApiSession]
) -> None:
    _, alice, bob = pair
    target = f"/keys/{alice.user['key_id']}"

    attempts = [
        bob.get(target),
        bob.patch(target, json={"rpm": 1, "name": "stolen", "models": ["type:image"]}),
        bob.delete(target),
    ]

    for response in attempts:
        assert assert_openai_error(response, 404)["code"] == "key_not_found"
    mine = alice.get(target).json()
    assert (mine["name"], mine["rpm"], mine["models"], mine["revoked_at"]) == (
        "mine", 60, None, None,
    )  # fmt: skip
    assert [k["id"] for k in bob.get("/keys").json()] == [bob.user["key_id"]]
    assert chat(gateway.base_url, alice.user["key"], "offline-small-text").status_code == 200


def test_security_usage_ledger_and_balance_are_own_only(
    pair: tuple[Accounts, ApiSession, ApiSession],
) -> None:
    _, alice, bob = pair

    own = bob.get("/usage").json()
    filtered = bob.get("/usage", params={"key_id": alice.user["key_id"]}).json()
    alice_ledger = alice.get("/ledger").json()
    bob_ledger = bob.get("/ledger").json()

    assert {row["key_id"] for row in own} == {bob.user["key_id"]}
    assert filtered == []
    alice_rows = {row["request_id"] for row in alice.get("/usage").json()}
    assert alice_rows.isdisjoint({row["request_id"] for row in own})
    assert {e["id"] for e in alice_ledger}.isdisjoint({e["id"] for e in bob_ledger})
    charged = sum(row["charged_micros"] for row in own)
    assert charged > 0
    assert bob.balance_micros() == sum(e["amount_micros"] for e in bob_ledger)


def test_security_non_admin_key_cannot_use_management_api(
    gateway: Gateway, pair: tuple[Accounts, ApiSession, ApiSession]
) -> None:
    _, alice, bob = pair
    headers = {"Authorization": f"Bearer {bob.user['key']}"}

    responses = [
        httpx.get(gateway.base_url + "/api/keys", headers=headers, timeout=10),
        httpx.get(
            gateway.base_url + f"/api/keys/{alice.user['key_id']}", headers=headers, timeout=10
        ),
        httpx.get(gateway.base_url + "/api/usage", headers=headers, timeout=10),
    ]

    for response in responses:
        assert_openai_error(response, 403)


def test_security_secrets_appear_in_no_response_or_log(
    gateway: Gateway, pair: tuple[Accounts, ApiSession, ApiSession]
) -> None:
    accounts, alice, bob = pair
    for session in (alice, bob):
        for path in ("/me", "/keys", "/usage", "/ledger", "/balance", "/notifications",
                     "/auth/session"):  # fmt: skip
            assert session.get(path).status_code == 200
        session.patch("/me", json={"password": "another-password", "current_password": "bad"})
    accounts.anonymous().post(
        "/auth/login", json={"email": alice.user["email"], "password": "wrong-password"}
    )
    keys = [alice.user["key"], bob.user["key"]]
    # The creation responses are the one place a key may appear.
    later = [body for body in accounts.seen if not any(f'"key":"{k}"' in body for k in keys)]

    logs = gateway.server.logs()
    for secret in (*keys, FAKE_UPSTREAM_KEY, "$argon2", "correct horse battery"):
        assert secret not in logs
        assert not [body for body in later if secret in body]
    assert len(later) >= 16
