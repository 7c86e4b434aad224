"""Errors of the management API: every one in OpenAI's shape, integers bounded to what the
database stores (ids out of range are unknown ids, settings and query parameters out of
range are 400 naming them), and the messages a client can act on."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.api.helpers import PASSWORD, Accounts, ApiSession, assert_openai_error, new_email
from tests.conftest import Gateway

HUGE = "99999999999999999999999"
INT64_OVER = str(2**63)


def _key_id(session: ApiSession, **fields: object) -> int:
    response = session.post("/keys", json={"name": "k", **fields})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.mark.parametrize("key_id", [HUGE, INT64_OVER, "0", "-1", "abc"])
def test_api_key_path_id_no_row_can_have_is_404_key_not_found(
    accounts: Accounts, key_id: str
) -> None:
    session = accounts.register()

    for response in (
        session.get(f"/keys/{key_id}"),
        session.patch(f"/keys/{key_id}", json={"rpm": 5}),
        session.delete(f"/keys/{key_id}"),
    ):
        assert assert_openai_error(response, 404)["code"] == "key_not_found"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        (f"/usage?key_id={HUGE}", "key_id"),
        (f"/usage?key_id={INT64_OVER}", "key_id"),
        (f"/usage?status={HUGE}", "status"),
        ("/usage?status=99", "status"),
        (f"/usage?before_id={INT64_OVER}", "before_id"),
        (f"/ledger?before_id={HUGE}", "before_id"),
    ],
)
def test_api_query_number_out_of_range_is_400_naming_it(
    accounts: Accounts, path: str, param: str
) -> None:
    session = accounts.register()

    assert assert_openai_error(session.get(path), 400)["param"] == param


def test_api_query_numbers_at_their_limits_are_accepted(accounts: Accounts) -> None:
    session = accounts.register()

    response = session.get(f"/usage?key_id={2**63 - 1}&status=599&before_id={2**63 - 1}")

    assert response.status_code == 200, response.text
    assert response.json() == []


LIMITS_OVER_RANGE = [
    ({"tpm": 10**30}, "tpm"),
    ({"tpm": 2**63}, "tpm"),
    ({"token_quota": 10**30}, "token_quota"),
    ({"token_quota": 2**63}, "token_quota"),
    ({"rpm": 2**63}, "rpm"),
]
LIMIT_IDS = ["tpm-10^30", "tpm-2^63", "quota-10^30", "quota-2^63", "rpm-2^63"]


@pytest.mark.parametrize(("fields", "param"), LIMITS_OVER_RANGE, ids=LIMIT_IDS)
def test_api_key_create_limit_out_of_range_is_400_naming_it(
    accounts: Accounts, fields: dict[str, object], param: str
) -> None:
    session = accounts.register()

    response = session.post("/keys", json={"name": "big", **fields})

    assert assert_openai_error(response, 400)["param"] == param
    assert session.get("/keys").json() == []


@pytest.mark.parametrize(("fields", "param"), LIMITS_OVER_RANGE, ids=LIMIT_IDS)
def test_api_key_edit_limit_out_of_range_is_400_naming_it(
    accounts: Accounts, fields: dict[str, object], param: str
) -> None:
    session = accounts.register()
    key_id = _key_id(session, tpm=1000, token_quota=5000)

    response = session.patch(f"/keys/{key_id}", json=fields)

    assert assert_openai_error(response, 400)["param"] == param
    after = session.get(f"/keys/{key_id}").json()
    assert (after["tpm"], after["token_quota"]) == (1000, 5000)


def test_api_key_limits_at_the_top_of_their_ranges_are_stored(accounts: Accounts) -> None:
    session = accounts.register()

    key_id = _key_id(session, rpm=10**9, tpm=10**9, token_quota=10**15)

    stored = session.get(f"/keys/{key_id}").json()
    assert (stored["rpm"], stored["tpm"], stored["token_quota"]) == (10**9, 10**9, 10**15)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no-such-thing"), ("POST", "/keys/1/nope"), ("GET", "/admin")],
)
def test_api_unknown_path_is_openai_shaped_404(accounts: Accounts, method: str, path: str) -> None:
    session = accounts.register()

    error = assert_openai_error(session.request(method, path), 404)

    assert error["code"] == "unknown_path"
    assert error["type"] == "invalid_request_error"


def test_api_schema_is_served_but_no_cdn_backed_docs_page(accounts: Accounts) -> None:
    session = accounts.register()

    schema = session.get("/openapi.json")

    assert schema.status_code == 200
    assert "/keys" in schema.json()["paths"]
    assert assert_openai_error(session.get("/docs"), 404)["code"] == "unknown_path"


def test_api_wrong_method_is_openai_shaped_405(accounts: Accounts) -> None:
    session = accounts.register()

    error = assert_openai_error(session.request("PUT", "/keys"), 405)

    assert error["code"] == "method_not_allowed"


@pytest.mark.parametrize("body", [b"{not json", b'{"email": "a@example.com",}', b"\xff"])
def test_api_register_body_not_json_is_400_saying_so(accounts: Accounts, body: bytes) -> None:
    session = accounts.anonymous()

    response = session.post(
        "/auth/register", content=body, headers={"content-type": "application/json"}
    )

    error = assert_openai_error(response, 400)
    assert error["message"] == "request body is not valid JSON"
    assert error["code"] == "invalid_json"
    assert error["param"] is None


def test_api_register_body_not_an_object_is_400_without_a_bogus_param(
    accounts: Accounts,
) -> None:
    session = accounts.anonymous()

    response = session.post("/auth/register", json=["a", "b"])

    error = assert_openai_error(response, 400)
    assert error["param"] is None
    assert error["message"].startswith("request body: ")


def test_api_profile_username_taken_is_400_naming_username(accounts: Accounts) -> None:
    taken = accounts.register()
    session = accounts.register()

    response = session.patch("/me", json={"username": taken.user["username"]})

    assert assert_openai_error(response, 400)["param"] == "username"
    assert session.get("/me").json()["username"] != taken.user["username"]


def test_api_key_expiry_in_the_past_is_400_on_create_and_edit(accounts: Accounts) -> None:
    session = accounts.register()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    key_id = _key_id(session)

    created = session.post("/keys", json={"name": "stale", "expires_at": past})
    edited = session.patch(f"/keys/{key_id}", json={"expires_at": past})

    assert assert_openai_error(created, 400)["param"] == "expires_at"
    assert assert_openai_error(edited, 400)["param"] == "expires_at"
    assert [key["id"] for key in session.get("/keys").json()] == [key_id]
    assert session.get(f"/keys/{key_id}").json()["expires_at"] is None


@pytest.mark.parametrize(
    "rules",
    [["no-such-model-text"], ["type:video"], ["provider:nowhere"], ["Offline-Small-Text"]],
    ids=["model", "type", "provider", "model-case"],
)
def test_api_key_restricted_to_what_is_not_offered_is_400_naming_it(
    accounts: Accounts, rules: list[str]
) -> None:
    session = accounts.register()
    key_id = _key_id(session)

    created = session.post("/keys", json={"name": "r", "models": ["offline-small-text", *rules]})
    edited = session.patch(f"/keys/{key_id}", json={"models": rules})

    for response in (created, edited):
        error = assert_openai_error(response, 400)
        assert error["param"] == "models"
        assert repr(rules[0]) in error["message"]
        assert "'offline-small-text'" not in error["message"]
    assert session.get(f"/keys/{key_id}").json()["models"] is None


def test_api_key_restricted_to_offered_names_is_created(accounts: Accounts) -> None:
    session = accounts.register()
    rules = ["fake-plain-text", "model:offline-small-text", "type:image", "provider:fake"]

    key_id = _key_id(session, models=rules)

    assert session.get(f"/keys/{key_id}").json()["models"] == rules


def test_api_huge_numbers_on_both_databases_are_404_or_400(gateway: Gateway) -> None:
    accounts = Accounts(gateway.base_url)
    try:
        email = new_email("bounds")
        session = accounts.register(email=email, password=PASSWORD)
        answers = {
            "get": session.get(f"/keys/{HUGE}"),
            "patch": session.patch(f"/keys/{INT64_OVER}", json={"name": "x"}),
            "delete": session.delete(f"/keys/{HUGE}"),
            "usage-key": session.get(f"/usage?key_id={HUGE}"),
            "usage-status": session.get(f"/usage?status={HUGE}"),
            "quota": session.post("/keys", json={"name": "q", "token_quota": 2**63}),
            "tpm": session.post("/keys", json={"name": "t", "tpm": 10**30}),
        }
    finally:
        accounts.close()

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "get": 404, "patch": 404, "delete": 404, "usage-key": 400, "usage-status": 400,
        "quota": 400, "tpm": 400,
    }  # fmt: skip
    assert all(isinstance(r.json().get("error"), dict) for r in answers.values())


def test_api_errors_never_use_fastapis_detail_shape(api_gateway: Gateway) -> None:
    responses = [
        httpx.get(api_gateway.base_url + "/api/nope", timeout=10),
        httpx.delete(api_gateway.base_url + "/api/auth/login", timeout=10),
        httpx.post(api_gateway.base_url + "/api/auth/login", content=b"{", timeout=10),
    ]

    for response in responses:
        assert "detail" not in response.json()
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
