"""The server-rendered pages over plain HTTP: sign-in, CSRF, ownership and admin rights."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import Gateway
from tests.support.server import make_user_and_key

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _browser(gateway: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gateway.base_url, timeout=10, follow_redirects=False)


def _sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> str:
    response = client.post("/signin", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    page = client.get("/dashboard/keys")
    match = CSRF_FIELD.search(page.text)
    assert match
    return match.group(1)


def _new_user(gateway: Gateway) -> str:
    email = f"page-{uuid.uuid4().hex[:8]}@example.com"
    make_user_and_key(gateway.database_url, email=email)
    return email


def test_pages_dashboard_without_session_redirects_to_signin(sqlite_gateway: Gateway) -> None:
    with _browser(sqlite_gateway) as client:
        response = client.get("/dashboard/keys")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/dashboard/keys"


def test_pages_signin_wrong_password_shows_message(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        response = client.post("/signin", data={"email": email, "password": "wrong one"})
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert "vg_session" not in response.headers.get("set-cookie", "")


def test_pages_signup_creates_account_with_starter_credit(sqlite_gateway: Gateway) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    with _browser(sqlite_gateway) as client:
        response = client.post("/signup", data={
            "email": email, "username": email.split("@")[0], "password": PASSWORD,
        })  # fmt: skip
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        overview = client.get("/dashboard")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert overview.status_code == 200
    assert 'data-testid="balance">$1<' in overview.text


def test_pages_signup_duplicate_email_is_refused_with_field(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        response = client.post("/signup", data={
            "email": email.upper(), "username": "someone-else", "password": PASSWORD,
        })  # fmt: skip
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text


def test_pages_form_post_without_csrf_token_is_refused(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        _sign_in(client, email)
        refused = client.post("/dashboard/keys", data={"name": "sneaky"})
        keys = client.get("/dashboard/keys")
    assert refused.status_code == 403
    assert "sneaky" not in keys.text


def test_pages_key_created_is_shown_once_and_works(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        csrf = _sign_in(client, email)
        created = client.post("/dashboard/keys", data={"csrf_token": csrf, "name": "laptop"})
        key = re.search(r'data-testid="new-key">(vg_[^<]+)<', created.text)
        assert key
        listing = client.get("/dashboard/keys")
    assert key.group(1) not in listing.text
    reply = httpx.get(
        sqlite_gateway.api_base + "/models", headers={"Authorization": f"Bearer {key.group(1)}"}
    )
    assert reply.status_code == 200


def test_pages_revoke_needs_confirmation_then_key_fails(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        csrf = _sign_in(client, email)
        created = client.post("/dashboard/keys", data={"csrf_token": csrf, "name": "doomed"})
        key = re.search(r'data-testid="new-key">(vg_[^<]+)<', created.text)
        key_id = re.findall(r"/dashboard/keys/(\d+)/revoke", created.text)
        assert key
        assert key_id
        confirm = client.get(f"/dashboard/keys/{key_id[0]}/revoke")
        done = client.post(f"/dashboard/keys/{key_id[0]}/revoke", data={"csrf_token": csrf})
    assert "cannot be undone" in confirm.text
    assert done.status_code == 303
    body = {"model": "offline-small-text", "messages": [{"role": "user", "content": "x"}]}
    refused = httpx.post(
        sqlite_gateway.api_base + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key.group(1)}"},
    )
    assert refused.status_code == 401


def test_pages_other_users_key_cannot_be_edited_or_revoked(sqlite_gateway: Gateway) -> None:
    owner = _new_user(sqlite_gateway)
    intruder = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        csrf = _sign_in(client, owner)
        created = client.post("/dashboard/keys", data={"csrf_token": csrf, "name": "mine"})
        key_id = re.findall(r"/dashboard/keys/(\d+)/revoke", created.text)[0]
    with _browser(sqlite_gateway) as client:
        csrf = _sign_in(client, intruder)
        edit = client.post(
            f"/dashboard/keys/{key_id}/edit", data={"csrf_token": csrf, "name": "stolen"}
        )
        revoke = client.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert edit.status_code == 404
    assert revoke.status_code == 404


def test_pages_grant_form_is_ignored_for_non_admins(sqlite_gateway: Gateway) -> None:
    email = _new_user(sqlite_gateway)
    with _browser(sqlite_gateway) as client:
        csrf = _sign_in(client, email)
        response = client.post("/dashboard/balance", data={
            "csrf_token": csrf, "action": "grant", "email": email, "amount": "100",
        })  # fmt: skip
    assert response.status_code == 400
    assert "unknown action" in response.text
    assert 'data-testid="balance">$100<' in response.text  # unchanged: $100 starter credit


@pytest.mark.parametrize("path", ["/", "/signin", "/signup"])
def test_pages_carry_strict_content_security_policy(sqlite_gateway: Gateway, path: str) -> None:
    response = httpx.get(sqlite_gateway.base_url + path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"


def test_pages_unknown_v1_path_stays_openai_shaped(sqlite_gateway: Gateway) -> None:
    response = httpx.get(sqlite_gateway.base_url + "/v1/not-a-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_path"
    wrong_method = httpx.get(sqlite_gateway.base_url + "/v1/chat/completions")
    assert wrong_method.status_code == 405
