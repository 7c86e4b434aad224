"""The keys API over HTTP: created once, listed without the secret, edits and revocation
applied to the very next /v1 request, and validation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import Accounts, ApiSession, assert_openai_error, chat, wait_for
from tests.conftest import Gateway

TEXT_MODEL = "offline-small-text"


def _create(session: ApiSession, **fields: object) -> dict[str, Any]:
    response = session.post("/keys", json={"name": "k", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_key_create_shows_key_once_with_prefix(accounts: Accounts) -> None:
    session = accounts.register()

    created = _create(session, name="laptop", rpm=7, tpm=5000, token_quota=123)
    listed = session.get("/keys")
    one = session.get(f"/keys/{created['id']}")

    key = created["key"]
    assert key.startswith("vg_")
    assert created["prefix"] == key[: len(created["prefix"])]
    assert len(created["prefix"]) < len(key)
    assert (created["rpm"], created["tpm"], created["token_quota"]) == (7, 5000, 123)
    assert [k["id"] for k in listed.json()] == [created["id"]]
    assert "key" not in listed.json()[0]
    assert "key" not in one.json()
    for response in (listed, one, session.get("/me"), session.get("/usage")):
        assert key not in response.text
        assert key[len(created["prefix"]) :] not in response.text


def test_key_list_shows_usage_and_last_used_after_a_request(
    accounts: Accounts, api_gateway: Gateway
) -> None:
    session = accounts.register()
    created = _create(session, name="used")
    assert created["last_used_at"] is None
    assert created["tokens_used"] == 0

    answer = chat(api_gateway.base_url, created["key"], TEXT_MODEL, max_tokens=5)
    assert answer.status_code == 200, answer.text
    total = answer.json()["usage"]["total_tokens"]

    listed = wait_for(
        lambda: session.get("/keys").json()[0],
        lambda row: row["last_used_at"] is not None,
        "the key's last use",
    )
    assert listed["tokens_used"] == total
    assert listed["prefix"] == created["prefix"]
    assert listed["rpm"] == created["rpm"]
    assert created["key"] not in session.get("/keys").text


def test_key_edit_rpm_applies_to_the_next_request(
    accounts: Accounts, api_gateway: Gateway
) -> None:
    session = accounts.register()
    created = _create(session, rpm=100)
    for _ in range(2):
        assert chat(api_gateway.base_url, created["key"], TEXT_MODEL).status_code == 200

    edited = session.patch(f"/keys/{created['id']}", json={"rpm": 2})
    refused = chat(api_gateway.base_url, created["key"], TEXT_MODEL)

    assert edited.status_code == 200, edited.text
    assert edited.json()["rpm"] == 2
    assert_openai_error(refused, 429)
    assert refused.headers["x-ratelimit-limit-requests"] == "2"


def test_key_edit_models_applies_to_the_next_request(
    accounts: Accounts, api_gateway: Gateway
) -> None:
    session = accounts.register()
    created = _create(session)
    assert chat(api_gateway.base_url, created["key"], TEXT_MODEL).status_code == 200

    restricted = session.patch(f"/keys/{created['id']}", json={"models": ["type:image"]})
    refused = chat(api_gateway.base_url, created["key"], TEXT_MODEL)
    cleared = session.patch(f"/keys/{created['id']}", json={"models": None})
    allowed = chat(api_gateway.base_url, created["key"], TEXT_MODEL)

    assert restricted.json()["models"] == ["type:image"]
    assert assert_openai_error(refused, 403)["param"] == "model"
    assert cleared.json()["models"] is None
    assert allowed.status_code == 200


def test_key_revoke_refuses_the_next_request(accounts: Accounts, api_gateway: Gateway) -> None:
    session = accounts.register()
    created = _create(session)
    assert chat(api_gateway.base_url, created["key"], TEXT_MODEL).status_code == 200

    revoked = session.delete(f"/keys/{created['id']}")
    refused = chat(api_gateway.base_url, created["key"], TEXT_MODEL)
    again = session.delete(f"/keys/{created['id']}")

    assert revoked.status_code == 204
    assert_openai_error(refused, 401)
    assert_openai_error(again, 404)
    assert session.get(f"/keys/{created['id']}").json()["revoked_at"] is not None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"rpm": 0}, "rpm"),
        ({"rpm": -5}, "rpm"),
        ({"tpm": 0}, "tpm"),
        ({"token_quota": -1}, "token_quota"),
        ({"models": ["colour:red"]}, "models"),
        ({"models": ["type:"]}, "models"),
        ({"models": ["  "]}, "models"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"secret": "x"}, "secret"),
    ],
    ids=["rpm-0", "rpm-negative", "tpm-0", "quota-negative", "rule-kind", "rule-empty",
         "rule-blank", "name-empty", "name-long", "unknown-field"],
)  # fmt: skip
def test_key_create_invalid_field_is_400(
    accounts: Accounts, fields: dict[str, object], param: str
) -> None:
    session = accounts.register()

    response = session.post("/keys", json={"name": "k", **fields})

    assert assert_openai_error(response, 400)["param"] == param
    assert session.get("/keys").json() == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"rpm": 0}, "rpm"),
        ({"rpm": None}, "rpm"),
        ({"token_quota": -1}, "token_quota"),
        ({"models": ["colour:red"]}, "models"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
    ],
    ids=["rpm-0", "rpm-null", "quota-negative", "rule-kind", "name-null", "name-empty"],
)
def test_key_edit_invalid_field_is_400_and_changes_nothing(
    accounts: Accounts, fields: dict[str, object], param: str
) -> None:
    session = accounts.register()
    created = _create(session, name="keep", rpm=9)

    response = session.patch(f"/keys/{created['id']}", json=fields)

    assert assert_openai_error(response, 400)["param"] == param
    after = session.get(f"/keys/{created['id']}").json()
    assert (after["name"], after["rpm"], after["models"]) == ("keep", 9, None)


def test_key_unknown_id_is_404(accounts: Accounts) -> None:
    session = accounts.register()

    for response in (
        session.get("/keys/999999"),
        session.patch("/keys/999999", json={"rpm": 5}),
        session.delete("/keys/999999"),
    ):
        assert assert_openai_error(response, 404)["code"] == "key_not_found"


def test_key_created_key_works_on_v1(accounts: Accounts, api_gateway: Gateway) -> None:
    session = accounts.register()
    created = _create(session)

    models = httpx.get(
        api_gateway.base_url + "/v1/models",
        headers={"Authorization": f"Bearer {created['key']}"},
        timeout=10,
    )

    assert models.status_code == 200
    assert TEXT_MODEL in {m["id"] for m in models.json()["data"]}
