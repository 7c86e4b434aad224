"""Who may read /metrics: the bearer token when one is set, otherwise direct loopback
clients only."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from vaultgate.errors import AuthenticationFailed, Forbidden
from vaultgate.metrics.endpoint import check_scrape_access, is_loopback

TOKEN = "metrics-secret-0123456789"


def _request(host: str | None, headers: dict[str, str] | None = None) -> Request:
    scope = {
        "type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (host, 50000) if host else None,
    }  # fmt: skip
    return Request(scope)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False), ("203.0.113.9", False), ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False), ("localhost", False), (None, False),
    ],
)  # fmt: skip
def test_is_loopback_addresses(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_access_no_token_loopback_client_allowed() -> None:
    check_scrape_access(_request("127.0.0.1"), None)
    check_scrape_access(_request("::1"), None)


@pytest.mark.parametrize(
    ("host", "headers"),
    [
        ("203.0.113.9", {}),
        (None, {}),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}),
    ],
)
def test_check_access_no_token_remote_or_proxied_client_forbidden(
    host: str | None, headers: dict[str, str]
) -> None:
    with pytest.raises(Forbidden):
        check_scrape_access(_request(host, headers), None)


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_check_access_token_set_wrong_or_missing_bearer_refused(
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    with pytest.raises(AuthenticationFailed) as refused:
        check_scrape_access(_request("127.0.0.1", headers), TOKEN)

    assert refused.value.status == 401
    assert refused.value.headers == {"www-authenticate": "Bearer"}


@pytest.mark.parametrize("host", ["203.0.113.9", "127.0.0.1"])
def test_check_access_token_set_right_bearer_allowed_from_anywhere(host: str) -> None:
    check_scrape_access(_request(host, {"Authorization": f"bearer {TOKEN}"}), TOKEN)
