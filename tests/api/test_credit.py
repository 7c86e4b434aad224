"""Credit: admin grants over the API and the CLI, admin-only routes, and redeem codes —
each code credits once, even when two requests present it at the same instant."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import STARTER_CREDIT_MICROS
from tests.api.helpers import (
    Accounts,
    ApiSession,
    assert_openai_error,
    bearer,
    make_admin,
)
from tests.conftest import Gateway

RACE_ROUNDS = 5


@pytest.fixture
def gateway_accounts(gateway: Gateway) -> Iterator[Accounts]:
    """Clients of the per-test gateway (SQLite and PostgreSQL)."""
    made = Accounts(gateway.base_url)
    yield made
    made.close()


def _admin_post(base_url: str, key: str, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(base_url + "/api/admin" + path, json=body, headers=bearer(key), timeout=30)


def _codes(base_url: str, admin_key: str, count: int, amount: str) -> list[str]:
    response = _admin_post(
        base_url, admin_key, "/redeem-codes", {"count": count, "amount": amount}
    )
    assert response.status_code == 201, response.text
    codes = response.json()["codes"]
    assert len(set(codes)) == count
    return list(codes)


def test_admin_grant_via_api_credits_the_account(accounts: Accounts, api_gateway: Gateway) -> None:
    _, _, admin_key = make_admin(api_gateway.database_url)
    user = accounts.register()
    before = user.balance_micros()

    response = _admin_post(
        api_gateway.base_url, admin_key, "/credits",
        {"email": user.user["email"].upper(), "amount": "2.50", "note": "thanks"},
    )  # fmt: skip

    assert response.status_code == 200, response.text
    assert user.balance_micros() == before + 2_500_000
    assert response.json()["balance_micros"] == before + 2_500_000
    newest = user.get("/ledger").json()[0]
    assert (newest["kind"], newest["amount_micros"], newest["note"]) == (
        "grant", 2_500_000, "thanks",
    )  # fmt: skip


@pytest.mark.parametrize("amount", ["0", "-1", "abc", ""])
def test_admin_grant_bad_amount_is_400(
    accounts: Accounts, api_gateway: Gateway, amount: str
) -> None:
    _, _, admin_key = make_admin(api_gateway.database_url)
    user = accounts.register()
    before = user.balance_micros()

    response = _admin_post(
        api_gateway.base_url,
        admin_key,
        "/credits",
        {"email": user.user["email"], "amount": amount},
    )

    assert assert_openai_error(response, 400)["param"] == "amount"
    assert user.balance_micros() == before


def test_admin_grant_unknown_email_is_404(api_gateway: Gateway) -> None:
    _, _, admin_key = make_admin(api_gateway.database_url)

    response = _admin_post(
        api_gateway.base_url, admin_key, "/credits", {"email": "nobody@x.io", "amount": "1"}
    )

    assert assert_openai_error(response, 404)["code"] == "user_not_found"


def test_admin_grant_via_cli_credits_the_account(accounts: Accounts, api_gateway: Gateway) -> None:
    user = accounts.register()
    before = user.balance_micros()
    env = {**os.environ, "VAULTGATE_DATABASE_URL": api_gateway.database_url}

    done = subprocess.run(
        [sys.executable, "-m", "vaultgate", "credits", "grant",
         "--email", user.user["email"], "--amount", "2.50"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert user.balance_micros() == before + 2_500_000
    assert user.get("/ledger").json()[0]["kind"] == "grant"


def test_admin_routes_refuse_non_admins_with_403(accounts: Accounts, api_gateway: Gateway) -> None:
    user = accounts.register()
    own_key = user.post("/keys", json={"name": "k"}).json()["key"]
    by_key = ApiSession(api_gateway.base_url)
    by_key.http.headers.update(bearer(own_key))
    attempts = []
    for client in (user, by_key):
        attempts += [
            client.get("/admin/users"),
            client.post("/admin/credits", json={"email": user.user["email"], "amount": "9"}),
            client.post("/admin/redeem-codes", json={"count": 1, "amount": "9"}),
        ]
    by_key.close()

    for response in attempts:
        assert_openai_error(response, 403)
    assert user.balance_micros() == STARTER_CREDIT_MICROS


def test_admin_key_lists_users_without_secrets(api_gateway: Gateway) -> None:
    _, admin_email, admin_key = make_admin(api_gateway.database_url)

    response = httpx.get(
        api_gateway.base_url + "/api/admin/users", headers=bearer(admin_key), timeout=10
    )

    assert response.status_code == 200
    assert admin_email in {u["email"] for u in response.json()}
    assert {"id", "email", "username", "is_admin"} == set(response.json()[0])
    assert "argon2" not in response.text


def test_redeem_each_code_works_once(accounts: Accounts, api_gateway: Gateway) -> None:
    _, _, admin_key = make_admin(api_gateway.database_url)
    codes = _codes(api_gateway.base_url, admin_key, 3, "0.75")
    user = accounts.register()
    other = accounts.register()
    before = user.balance_micros()

    first = [user.post("/redeem", json={"code": code}) for code in codes]
    again = user.post("/redeem", json={"code": codes[0]})
    lower = other.post("/redeem", json={"code": codes[1].lower()})

    assert [r.status_code for r in first] == [200, 200, 200]
    assert first[-1].json()["balance_micros"] == before + 3 * 750_000
    assert assert_openai_error(again, 400)["code"] == "invalid_code"
    assert assert_openai_error(lower, 400)["code"] == "invalid_code"
    assert user.balance_micros() == before + 3 * 750_000
    assert [e["kind"] for e in user.get("/ledger").json()[:3]] == ["topup"] * 3


def test_redeem_code_is_case_insensitive_once(accounts: Accounts, api_gateway: Gateway) -> None:
    _, _, admin_key = make_admin(api_gateway.database_url)
    (code,) = _codes(api_gateway.base_url, admin_key, 1, "1")
    user = accounts.register()

    response = user.post("/redeem", json={"code": f"  {code.lower()} "})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("code", ["VG-AAAA-BBBB-CCCC-DDDD", "nonsense"])
def test_redeem_wrong_code_is_400(accounts: Accounts, code: str) -> None:
    user = accounts.register()
    before = user.balance_micros()

    response = user.post("/redeem", json={"code": code})

    assert assert_openai_error(response, 400)["param"] == "code"
    assert user.balance_micros() == before


def _redeem_at_once(
    client: ApiSession, code: str, barrier: threading.Barrier, statuses: list[int]
) -> None:
    barrier.wait()
    statuses.append(client.post("/redeem", json={"code": code}).status_code)


def test_redeem_same_code_twice_at_once_credits_once(
    gateway: Gateway, gateway_accounts: Accounts
) -> None:
    _, _, admin_key = make_admin(gateway.database_url)
    codes = _codes(gateway.base_url, admin_key, RACE_ROUNDS, "1.25")
    racers = [gateway_accounts.register(), gateway_accounts.register()]
    same_user_twice = gateway_accounts.login(racers[0].user["email"])
    starting = {id(r): r.balance_micros() for r in racers}
    wins: list[int] = []

    for round_no, code in enumerate(codes):
        pair = racers if round_no % 2 == 0 else [racers[0], same_user_twice]
        barrier = threading.Barrier(len(pair))
        statuses: list[int] = []

        threads = [
            threading.Thread(target=_redeem_at_once, args=(client, code, barrier, statuses))
            for client in pair
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(statuses) == [200, 400], statuses
        wins.append(1)

    gained = sum(r.balance_micros() - starting[id(r)] for r in racers)
    assert gained == len(wins) * 1_250_000
    topups = [e for r in racers for e in r.get("/ledger").json() if e["kind"] == "topup"]
    assert len(topups) == RACE_ROUNDS
