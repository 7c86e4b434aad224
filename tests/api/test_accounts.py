"""Accounts over HTTP: registration, signing in and out, throttling, the session cookie,
CSRF, and profile changes."""

from __future__ import annotations

from decimal import Decimal
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from tests.api.conftest import STARTER_CREDIT_MICROS
from tests.api.helpers import (
    CSRF_HEADER,
    PASSWORD,
    Accounts,
    assert_openai_error,
    new_address,
    new_email,
)
from tests.conftest import Gateway

LOGIN_LIMIT_PER_ACCOUNT = 10
LOGIN_LIMIT_PER_ADDRESS = 30


def _register_body(
    email: str, username: str = "someone", password: str = PASSWORD
) -> dict[str, Any]:
    return {"email": email, "username": username, "password": password}


def _session_cookie(response: httpx.Response) -> SimpleCookie:
    headers = [h for h in response.headers.get_list("set-cookie") if "vg_session=" in h]
    assert len(headers) == 1, headers
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(headers[0])
    return cookie


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_register_body("not-an-email"), "email"),
        (_register_body("a b@example.com"), "email"),
        (_register_body("x@example.com", username="a"), "username"),
        (_register_body("x@example.com", username="has space"), "username"),
        (_register_body("x@example.com", password="short"), "password"),
        ({"email": "x@example.com", "username": "someone"}, "password"),
        ({**_register_body("x@example.com"), "is_admin": True}, "is_admin"),
    ],
    ids=["email", "email-space", "username-short", "username-space", "password-short",
         "password-missing", "unknown-field"],
)  # fmt: skip
def test_register_invalid_field_is_400_naming_param(
    accounts: Accounts, body: dict[str, Any], param: str
) -> None:
    session = accounts.anonymous()

    error = assert_openai_error(session.post("/auth/register", json=body), 400)

    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "vg_session" not in session.http.cookies


def test_register_duplicate_email_other_case_is_400(accounts: Accounts) -> None:
    email = new_email("dup")
    accounts.register(email=email)
    other = accounts.anonymous()

    response = other.post("/auth/register", json=_register_body(email.upper(), "dupe2"))

    assert assert_openai_error(response, 400)["param"] == "email"
    users = other.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert users.json()["user"]["username"] != "dupe2"


def test_register_new_account_sees_starter_credit_in_balance_and_ledger(
    accounts: Accounts,
) -> None:
    session = accounts.register()

    balance = session.get("/balance").json()
    ledger = session.get("/ledger").json()

    assert balance["balance_micros"] == STARTER_CREDIT_MICROS
    assert Decimal(balance["balance"]) == Decimal("2.50")
    assert balance["held_micros"] == 0
    assert [(e["kind"], e["amount_micros"], e["note"]) for e in ledger] == [
        ("grant", STARTER_CREDIT_MICROS, "starter credit")
    ]


def test_register_stores_email_lowercased_and_signs_in(accounts: Accounts) -> None:
    email = new_email("Mixed")
    session = accounts.register(email=email)

    me = session.get("/me")

    assert me.status_code == 200
    assert me.json()["email"] == email.lower()
    assert me.json()["is_admin"] is False


def test_login_wrong_password_is_401(accounts: Accounts) -> None:
    email = new_email()
    accounts.register(email=email)
    session = accounts.anonymous()

    response = session.post("/auth/login", json={"email": email, "password": "wrong-pass"})

    assert assert_openai_error(response, 401)["code"] == "invalid_credentials"
    assert "vg_session" not in session.http.cookies
    assert_openai_error(session.get("/me"), 401)


def test_login_unknown_email_is_401_like_wrong_password(accounts: Accounts) -> None:
    session = accounts.anonymous()

    response = session.post("/auth/login", json={"email": new_email(), "password": PASSWORD})

    assert assert_openai_error(response, 401)["code"] == "invalid_credentials"


def test_login_then_logout_ends_the_session(accounts: Accounts) -> None:
    email = new_email()
    accounts.register(email=email)
    session = accounts.login(email.upper())
    old_cookie = session.cookie
    assert session.get("/me").json()["email"] == email

    assert session.post("/auth/logout").status_code == 204

    assert "vg_session" not in session.http.cookies
    replay = httpx.get(
        accounts.base_url + "/api/me", cookies={"vg_session": old_cookie}, timeout=10
    )
    assert_openai_error(replay, 401)


def test_login_eleventh_attempt_at_one_account_from_one_address_is_429_there_only(
    accounts: Accounts,
) -> None:
    email = new_email("throttled")
    accounts.register(email=email)
    bystander = new_email("bystander")
    accounts.register(email=bystander)
    session = accounts.anonymous()
    for _ in range(LOGIN_LIMIT_PER_ACCOUNT):
        wrong = session.post("/auth/login", json={"email": email, "password": "wrong-pass"})
        assert wrong.status_code == 401

    refused = session.post("/auth/login", json={"email": email, "password": PASSWORD})
    owner_elsewhere = accounts.anonymous().post(
        "/auth/login", json={"email": email.upper(), "password": PASSWORD}
    )
    other_account = session.post("/auth/login", json={"email": bystander, "password": PASSWORD})

    assert_openai_error(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert owner_elsewhere.status_code == 200, owner_elsewhere.text
    assert other_account.status_code == 200


def test_login_attempts_past_limit_per_address_are_429(accounts: Accounts) -> None:
    address = new_address()
    email = new_email()
    accounts.register(email=email)
    crowd = accounts.anonymous(address=address)
    for _ in range(LOGIN_LIMIT_PER_ADDRESS):
        response = crowd.post("/auth/login", json={"email": new_email(), "password": "x"})
        assert response.status_code == 401

    refused = crowd.post("/auth/login", json={"email": email, "password": PASSWORD})
    elsewhere = accounts.anonymous().post(
        "/auth/login", json={"email": email, "password": PASSWORD}
    )

    assert_openai_error(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert elsewhere.status_code == 200


def test_login_forwarded_for_is_not_trusted_by_default(sqlite_gateway: Gateway) -> None:
    accounts = Accounts(sqlite_gateway.base_url)
    try:
        for _ in range(LOGIN_LIMIT_PER_ADDRESS):
            dodger = accounts.anonymous()
            response = dodger.post("/auth/login", json={"email": new_email(), "password": "x"})
            assert response.status_code == 401

        refused = accounts.anonymous().post(
            "/auth/login", json={"email": new_email(), "password": "x"}
        )

        assert_openai_error(refused, 429)
    finally:
        accounts.close()


def test_session_cookie_over_http_is_httponly_lax_not_secure(accounts: Accounts) -> None:
    email = new_email()
    accounts.register(email=email)

    response = accounts.anonymous().post(
        "/auth/login", json={"email": email, "password": PASSWORD}
    )

    morsel = _session_cookie(response)["vg_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert not morsel["secure"]
    assert morsel["path"] == "/"


def test_session_cookie_behind_https_proxy_is_secure(accounts: Accounts) -> None:
    email = new_email()
    accounts.register(email=email)

    response = accounts.anonymous().post(
        "/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )

    morsel = _session_cookie(response)["vg_session"]
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong-token", b"\xff\xfe-not-ascii"],
    ids=["missing", "empty", "wrong", "non-ascii"],
)
def test_unsafe_request_without_right_csrf_token_is_403(
    accounts: Accounts, token: str | bytes | None
) -> None:
    session = accounts.register()
    headers: dict[str, str | bytes] = {} if token is None else {CSRF_HEADER: token}
    session.csrf = None

    created = session.post("/keys", json={"name": "k"}, headers=headers)
    renamed = session.patch("/me", json={"username": "renamed"}, headers=headers)
    logout = session.post("/auth/logout", headers=headers)

    for response in (created, renamed, logout):
        assert assert_openai_error(response, 403)["code"] == "csrf_failed"
    assert session.get("/keys").json() == []
    assert session.get("/me").json()["username"] != "renamed"


def test_csrf_token_of_another_session_is_403(accounts: Accounts) -> None:
    mine = accounts.register()
    theirs = accounts.register()

    response = mine.post("/keys", json={"name": "k"}, headers={CSRF_HEADER: theirs.csrf or ""})

    assert assert_openai_error(response, 403)["code"] == "csrf_failed"


def test_session_endpoint_returns_the_csrf_token_of_the_cookie(accounts: Accounts) -> None:
    session = accounts.register()

    response = session.get("/auth/session")

    assert response.json()["csrf_token"] == session.csrf
    assert response.json()["user"] == session.user


def test_password_change_without_current_password_is_400(accounts: Accounts) -> None:
    session = accounts.register()

    missing = session.patch("/me", json={"password": "new-password-1"})
    wrong = session.patch(
        "/me", json={"password": "new-password-1", "current_password": "wrong-pass"}
    )

    assert assert_openai_error(missing, 400)["param"] == "current_password"
    assert assert_openai_error(wrong, 400)["param"] == "current_password"
    accounts.login(session.user["email"])


def test_password_change_revokes_every_other_session(accounts: Accounts) -> None:
    email = new_email()
    changer = accounts.register(email=email)
    other = accounts.login(email)
    old_cookie = changer.cookie

    response = changer.patch(
        "/me", json={"password": "brand-new-password", "current_password": PASSWORD}
    )

    assert response.status_code == 200, response.text
    assert_openai_error(other.get("/me"), 401)
    stale = httpx.get(
        accounts.base_url + "/api/me", cookies={"vg_session": old_cookie}, timeout=10
    )
    assert_openai_error(stale, 401)
    assert changer.cookie != old_cookie
    assert changer.get("/me").status_code == 200
    old = accounts.anonymous().post("/auth/login", json={"email": email, "password": PASSWORD})
    assert_openai_error(old, 401)
    accounts.login(email, "brand-new-password")


def test_email_change_needs_current_password(accounts: Accounts) -> None:
    session = accounts.register()
    new = new_email("moved")

    refused = session.patch("/me", json={"email": new})
    accepted = session.patch("/me", json={"email": new.upper(), "current_password": PASSWORD})

    assert assert_openai_error(refused, 400)["param"] == "current_password"
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["email"] == new
    accounts.login(new)


def test_email_change_to_taken_email_is_400(accounts: Accounts) -> None:
    taken = new_email("taken")
    accounts.register(email=taken)
    session = accounts.register()

    response = session.patch("/me", json={"email": taken.upper(), "current_password": PASSWORD})

    assert assert_openai_error(response, 400)["param"] == "email"
    assert session.get("/me").json()["email"] != taken


def test_logout_all_ends_every_session(accounts: Accounts) -> None:
    email = new_email()
    first = accounts.register(email=email)
    second = accounts.login(email)

    assert first.post("/auth/logout-all").status_code == 204

    assert_openai_error(first.get("/me"), 401)
    assert_openai_error(second.get("/me"), 401)
    assert_openai_error(second.get("/auth/session"), 401)


def test_api_without_session_is_401(accounts: Accounts) -> None:
    anonymous = accounts.anonymous()

    for path in ("/me", "/keys", "/balance", "/ledger", "/usage", "/notifications"):
        assert assert_openai_error(anonymous.get(path), 401)["code"] == "not_signed_in"
