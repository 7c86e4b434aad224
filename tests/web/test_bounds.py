"""Numbers in the dashboard's paths, query strings, forms and JSON bodies, bounded to what
the database stores: an id no row can have is a 404, a filter or cursor that does not parse
is ignored, and a key setting out of its range is refused on the form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Gateway
from tests.support.server import make_user_and_key
from tests.web.pages import ADMIN_EMAIL, csrf_token, make_admin, signed_in

PASSWORD = "correct horse battery"
HUGE = "99999999999999999999999"
INT64_OVER = str(2**63)
CSRF_ATTRIBUTE = re.compile(r'data-csrf="([^"]+)"')


def _new_user(gateway: Gateway) -> str:
    email = f"bounds-{uuid.uuid4().hex[:8]}@example.com"
    make_user_and_key(gateway.database_url, email=email)
    return email


@pytest.fixture(scope="module")
def client(sqlite_gateway: Gateway) -> Iterator[httpx.Client]:
    """A user of the module, signed in once (sign-ins are rate limited)."""
    with signed_in(sqlite_gateway.base_url, _new_user(sqlite_gateway)) as session:
        yield session


@pytest.mark.parametrize(
    "path",
    [
        f"/dashboard/keys/{HUGE}/edit",
        f"/dashboard/keys/{INT64_OVER}/revoke",
        f"/dashboard/chat/{HUGE}",
        f"/dashboard/chat/{HUGE}/export.json",
        f"/dashboard/chat/{INT64_OVER}/export.md",
        f"/dashboard/chat/{HUGE}/delete",
        f"/dashboard/chat/1/images/{HUGE}/0",
        f"/share/no-such-token/images/{HUGE}/0",
    ],
)
def test_pages_path_id_no_row_can_have_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404, response.text[:300]
    assert "This page does not exist." in response.text


@pytest.mark.parametrize(
    "path",
    [
        f"/dashboard/logs?before={HUGE}",
        f"/dashboard/logs?after={INT64_OVER}&key={HUGE}",
        "/dashboard/logs?status=%C2%B2%C2%B2%C2%B2&key=%C2%B2",
        f"/dashboard/logs.csv?key={HUGE}",
        f"/dashboard/alerts?before={HUGE}",
        f"/dashboard/balance?before={INT64_OVER}",
        f"/dashboard/analytics?days={HUGE}",
        "/dashboard/analytics?days=%C2%B2",
    ],
)
def test_pages_query_number_that_does_not_parse_is_ignored(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200, response.text[:300]


def test_pages_alert_marked_read_with_huge_id_changes_nothing(client: httpx.Client) -> None:
    csrf = csrf_token(client.get("/dashboard/alerts").text)

    response = client.post("/dashboard/alerts", data={"csrf_token": csrf, "id": HUGE})

    assert response.status_code == 303


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tpm", str(10**30), "tpm must be between 1 and 1,000,000,000"),
        ("token_quota", INT64_OVER, "token quota must be between 0 and"),
        ("rpm", "2147483648", "rpm must be between 1 and 1,000,000,000"),
        ("rpm", "²", "rpm must be a whole number"),
        ("expires", "2001-01-01", "the expiry must be in the future"),
        ("models", "no-such-text, type:image", "&#39;no-such-text&#39;"),
    ],
)
def test_pages_key_form_value_out_of_range_is_refused_with_message(
    client: httpx.Client, field: str, value: str, message: str
) -> None:
    csrf = csrf_token(client.get("/dashboard/keys").text)
    name = f"bad-{uuid.uuid4().hex[:6]}"

    response = client.post(
        "/dashboard/keys", data={"csrf_token": csrf, "name": name, field: value}
    )

    assert response.status_code == 400
    assert message in response.text
    assert 'data-testid="new-key"' not in response.text


def test_pages_key_edit_with_huge_quota_is_refused_and_keeps_the_key(
    client: httpx.Client,
) -> None:
    csrf = csrf_token(client.get("/dashboard/keys").text)
    created = client.post("/dashboard/keys", data={"csrf_token": csrf, "name": "steady"})
    key_id = re.findall(r"/dashboard/keys/(\d+)/edit", created.text)[0]

    edited = client.post(
        f"/dashboard/keys/{key_id}/edit",
        data={"csrf_token": csrf, "name": "changed", "token_quota": str(10**30)},
    )
    page = client.get(f"/dashboard/keys/{key_id}/edit")

    assert edited.status_code == 400
    assert "token quota must be between" in edited.text
    assert 'value="steady"' in page.text


@pytest.mark.parametrize("key_id", [2**63, 2**64 - 1])
def test_pages_chat_and_playground_with_huge_key_id_are_404_key_not_found(
    client: httpx.Client, key_id: int
) -> None:
    csrf = CSRF_ATTRIBUTE.search(client.get("/dashboard/chat").text)
    assert csrf
    headers = {"x-csrf-token": csrf.group(1)}
    started = client.post("/dashboard/chat/conversations", json={}, headers=headers)
    assert started.status_code == 201, started.text
    question = {"key_id": key_id, "model": "offline-small-text", "content": "hi"}
    request = {"model": "offline-small-text", "messages": [{"role": "user", "content": "hi"}]}

    asked = client.post(
        f"/dashboard/chat/{started.json()['id']}/messages", json=question, headers=headers
    )
    played = client.post(
        "/dashboard/playground/chat",
        json={"key_id": key_id, "request": request},
        headers=headers,
    )

    for response in (asked, played):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "key_not_found"


def test_pages_admin_codes_count_that_is_not_a_number_is_400(sqlite_gateway: Gateway) -> None:
    make_admin(sqlite_gateway.database_url)
    with signed_in(sqlite_gateway.base_url, ADMIN_EMAIL) as admin:
        csrf = csrf_token(admin.get("/dashboard/balance").text)
        form = {"csrf_token": csrf, "action": "codes", "amount": "1"}
        counts = [admin.post("/dashboard/balance", data={**form, "count": c}) for c in ("x", HUGE)]
        users = admin.get(f"/dashboard/admin?after={HUGE}")

    assert [response.status_code for response in counts] == [400, 400]
    assert "count must be a whole number" in counts[0].text
    assert "count must be between 1 and 1,000" in counts[1].text
    assert users.status_code == 200


def test_pages_huge_ids_on_both_databases_are_404_not_500(gateway: Gateway) -> None:
    email = _new_user(gateway)
    with signed_in(gateway.base_url, email) as session:
        statuses = {
            path: session.get(path).status_code
            for path in (
                f"/dashboard/keys/{HUGE}/edit",
                f"/dashboard/chat/{HUGE}",
                f"/dashboard/chat/{HUGE}/export.json",
                f"/dashboard/logs?before={HUGE}",
            )
        }

    assert list(statuses.values()) == [404, 404, 404, 200]
