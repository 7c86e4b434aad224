"""The management API describes itself at /api/openapi.json."""

from __future__ import annotations

import httpx

from tests.conftest import Gateway

EXPECTED = {
    "/auth/register": {"post"},
    "/auth/login": {"post"},
    "/auth/logout": {"post"},
    "/auth/logout-all": {"post"},
    "/auth/session": {"get"},
    "/me": {"get", "patch"},
    "/keys": {"get", "post"},
    "/keys/{key_id}": {"get", "patch", "delete"},
    "/balance": {"get"},
    "/ledger": {"get"},
    "/redeem": {"post"},
    "/billing/checkout": {"post"},
    "/usage": {"get"},
    "/notifications": {"get"},
    "/admin/users": {"get"},
    "/admin/credits": {"post"},
    "/admin/redeem-codes": {"post"},
}


def test_openapi_schema_lists_every_route(api_gateway: Gateway) -> None:
    response = httpx.get(api_gateway.base_url + "/api/openapi.json", timeout=10)

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["servers"] == [{"url": "/api"}]
    paths = {path: set(ops) for path, ops in schema["paths"].items()}
    missing = {path: ops - paths.get(path, set()) for path, ops in EXPECTED.items()}
    assert {path: ops for path, ops in missing.items() if ops} == {}
    assert "/billing/stripe/webhook" not in paths


def test_openapi_paths_resolve_under_the_server_url(api_gateway: Gateway) -> None:
    schema = httpx.get(api_gateway.base_url + "/api/openapi.json", timeout=10).json()
    base = api_gateway.base_url + schema["servers"][0]["url"]

    with httpx.Client(timeout=10) as client:
        for path, operations in schema["paths"].items():
            url = base + path.replace("{key_id}", "1")
            for method in operations:
                response = client.request(method.upper(), url)
                assert response.status_code in (400, 401), (method, path, response.text)
