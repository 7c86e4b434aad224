"""The documentation pages: public, filled with this server's address and catalog, the
same for every reader, and an error table that cannot fall behind the code."""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway
from tests.web.pages import signed_in
from vaultgate import errors
from vaultgate.web.docs_content import ERROR_CODES
from vaultgate.web.docs_pages import DOCS

SOURCE = Path(errors.__file__).parent
# Everything a client of /v1, the dashboard or /api can receive an error code from.
CODE_SOURCES = ("gateway", "providers", "routing", "billing", "limits", "api", "web", "app.py")
CODE_LITERAL = re.compile(r'\bcode="([a-z_]+)"')
DOCS_BODY = re.compile(r'<article class="docs-body[^"]*">(.*)</article>', re.DOTALL)


def _get(gateway: Gateway, path: str) -> httpx.Response:
    return httpx.get(gateway.base_url + path, timeout=10)


@pytest.mark.parametrize("path", [entry[0] for entry in DOCS])
def test_docs_page_signed_out_renders_with_strict_policy(
    sqlite_gateway: Gateway, path: str
) -> None:
    response = _get(sqlite_gateway, path)

    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "<script>" not in response.text
    assert " style=" not in response.text
    assert 'aria-current="page"' in response.text


def test_docs_examples_carry_this_servers_address(sqlite_gateway: Gateway) -> None:
    pages = [_get(sqlite_gateway, path).text for path in ("/docs", "/docs/sdks")]
    sdks = html.unescape(pages[1])

    api_base = sqlite_gateway.base_url + "/v1"
    assert f"<code>{api_base}</code>" in pages[0]
    assert f'base_url="{api_base}"' in sdks
    assert f'baseURL: "{api_base}"' in sdks
    assert f"curl {api_base}/chat/completions" in sdks
    assert '"offline-painter-image"' in sdks


def test_docs_models_lists_the_live_catalog_with_prices(sqlite_gateway: Gateway) -> None:
    page = _get(sqlite_gateway, "/docs/models").text

    text_row = re.search(r"<code>offline-small-text</code>.*?</tr>", page, re.DOTALL)
    image_row = re.search(r"<code>offline-painter-image</code>.*?</tr>", page, re.DOTALL)
    assert text_row
    assert image_row
    assert ">32,768<" in text_row.group(0)
    assert ">$0.1<" in text_row.group(0)
    assert ">$0.4<" in text_row.group(0)
    assert "256x256: $0.004" in image_row.group(0)
    assert "1024x1024/hd: $0.032" in image_row.group(0)
    assert "<code>offline-omni-hybrid</code>" in page
    assert "<code>fake-plain-text</code>" in page


def test_docs_signed_in_show_nothing_of_the_account(sqlite_gateway: Gateway) -> None:
    outside = {path: _get(sqlite_gateway, path).text for path, _, _ in DOCS}
    with signed_in(sqlite_gateway.base_url, "user@example.com") as client:
        inside = {path: client.get(path).text for path in outside}

    for path, page in inside.items():
        assert "Sign out" in page
        body_in, body_out = DOCS_BODY.search(page), DOCS_BODY.search(outside[path])
        assert body_in
        assert body_out
        assert body_in.group(1) == body_out.group(1)
        assert "user@example.com" not in page


def test_docs_errors_lists_every_class_of_the_exception_tree(sqlite_gateway: Gateway) -> None:
    page = _get(sqlite_gateway, "/docs/errors").text
    documented = {(e.status, e.type, e.code) for e in ERROR_CODES}

    classes = [
        cls for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.VaultGateError) and cls is not errors.VaultGateError
    ]  # fmt: skip

    assert classes
    for cls in classes:
        assert (cls.status, cls.error_type, cls.code) in documented, cls.__name__
        assert f"<code>{cls.code}</code>" in page


def test_docs_errors_lists_every_code_the_code_can_send(sqlite_gateway: Gateway) -> None:
    page = _get(sqlite_gateway, "/docs/errors").text
    sent: set[str] = set()
    for name in CODE_SOURCES:
        paths = [SOURCE / name] if name.endswith(".py") else (SOURCE / name).rglob("*.py")
        for path in paths:
            sent.update(CODE_LITERAL.findall(path.read_text()))

    missing = sorted(code for code in sent if f"<code>{code}</code>" not in page)

    assert len(sent) > 10
    assert missing == [], "error codes missing from /docs/errors (web/docs_content.py)"


def test_nav_and_landing_link_chat_and_docs(sqlite_gateway: Gateway) -> None:
    landing = _get(sqlite_gateway, "/").text
    with signed_in(sqlite_gateway.base_url, "user@example.com") as client:
        dashboard = client.get("/dashboard").text
        chat = client.get("/dashboard/chat").text

    assert 'href="/docs"' in landing
    assert 'href="/dashboard/chat"' in dashboard
    assert 'href="/docs"' in dashboard
    assert re.search(r'href="/dashboard/chat"\s+aria-current="page"', chat)
