"""Every response carries an ``x-request-id``, not only the chat and image endpoints'."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Gateway


@pytest.mark.parametrize(
    ("method", "path", "authorized", "status"),
    [
        ("GET", "/v1/models", True, 200),
        ("GET", "/v1/models/offline-small-text", True, 200),
        ("GET", "/v1/models", False, 401),
        ("GET", "/v1/no-such-endpoint", True, 404),
        ("GET", "/healthz", False, 200),
        ("GET", "/readyz", False, 200),
        ("GET", "/", False, 200),
        ("GET", "/api/me", False, 401),
    ],
)
def test_request_id_on_every_response(
    sqlite_gateway: Gateway, method: str, path: str, authorized: bool, status: int
) -> None:
    headers = {"authorization": f"Bearer {sqlite_gateway.key}"} if authorized else {}

    response = httpx.request(method, sqlite_gateway.base_url + path, headers=headers)

    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")


def test_request_id_differs_between_responses(sqlite_gateway: Gateway) -> None:
    ids = {httpx.get(sqlite_gateway.base_url + "/healthz").headers["x-request-id"] for _ in "ab"}

    assert len(ids) == 2
