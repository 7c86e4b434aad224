"""Model restrictions of a key on /v1: by model id, type and provider, and the ways a
client might try to get round them (letter case, a repeated "model" key, a query
parameter, a header). The model judged must be the model used."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.helpers import Accounts, assert_openai_error, bearer
from tests.conftest import Gateway
from tests.support.fake_openai import FakeOpenAI

ALLOWED = "fake-plain-text"
ALLOWED_UPSTREAM = "plain"
FORBIDDEN = "fake-no-usage-text"
FORBIDDEN_UPSTREAM = "no-usage"


def _key(accounts: Accounts, models: list[str]) -> str:
    session = accounts.register()
    response = session.post("/keys", json={"name": "restricted", "models": models})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def _raw_chat(
    gateway: Gateway,
    key: str,
    content: bytes,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=content,
        params=params,
        headers={**bearer(key), "content-type": "application/json", **(headers or {})},
        timeout=30,
    )


def _body(model: str, marker: str, *, repeat: str | None = None) -> bytes:
    """A raw chat body; with ``repeat``, a second "model" key after the first."""
    second = f',"model":"{repeat}"' if repeat else ""
    messages = f'[{{"role":"user","content":"{marker}"}}]'
    return f'{{"model":"{model}"{second},"messages":{messages}}}'.encode()


def _upstream_models(fake: FakeOpenAI, marker: str) -> list[Any]:
    """The models upstream was asked for by requests carrying ``marker``."""
    return [
        r.body.get("model")
        for r in fake.requests
        if any(m.get("content") == marker for m in r.body.get("messages", []))
    ]


@pytest.mark.parametrize("rule", [ALLOWED, f"model:{ALLOWED}"], ids=["bare", "prefixed"])
def test_restriction_by_model_id_admits_only_that_model(
    accounts: Accounts, api_gateway: Gateway, fake_upstream: FakeOpenAI, rule: str
) -> None:
    key = _key(accounts, [rule])
    marker = uuid.uuid4().hex

    allowed = _raw_chat(api_gateway, key, _body(ALLOWED, marker))
    refused = _raw_chat(api_gateway, key, _body(FORBIDDEN, marker))
    offline = _raw_chat(api_gateway, key, _body("offline-small-text", marker))

    assert allowed.status_code == 200, allowed.text
    for response in (refused, offline):
        error = assert_openai_error(response, 403)
        assert error["param"] == "model"
    assert _upstream_models(fake_upstream, marker) == [ALLOWED_UPSTREAM]


def test_restriction_by_type_image_refuses_text_models(
    accounts: Accounts, api_gateway: Gateway
) -> None:
    key = _key(accounts, ["type:image"])

    text = _raw_chat(api_gateway, key, _body("offline-small-text", "x"))
    image = httpx.post(
        api_gateway.base_url + "/v1/images/generations",
        json={"model": "offline-painter-image", "prompt": "a cat", "size": "256x256"},
        headers=bearer(key),
        timeout=30,
    )

    assert assert_openai_error(text, 403)["param"] == "model"
    assert image.status_code == 200, image.text


def test_restriction_by_provider_refuses_other_providers(
    accounts: Accounts, api_gateway: Gateway, fake_upstream: FakeOpenAI
) -> None:
    key = _key(accounts, ["provider:offline"])
    marker = uuid.uuid4().hex

    offline = _raw_chat(api_gateway, key, _body("offline-small-text", marker))
    fake = _raw_chat(api_gateway, key, _body(ALLOWED, marker))

    assert offline.status_code == 200, offline.text
    assert assert_openai_error(fake, 403)["param"] == "model"
    assert _upstream_models(fake_upstream, marker) == []


@pytest.mark.parametrize(
    "model",
    [FORBIDDEN.upper(), "Fake-No-Usage-Text", ALLOWED.upper(), f" {FORBIDDEN}"],
    ids=["forbidden-upper", "forbidden-title", "allowed-upper", "leading-space"],
)
def test_restriction_other_letter_case_is_not_a_way_round(
    accounts: Accounts, api_gateway: Gateway, fake_upstream: FakeOpenAI, model: str
) -> None:
    key = _key(accounts, [ALLOWED])
    marker = uuid.uuid4().hex

    response = _raw_chat(api_gateway, key, _body(model, marker))

    assert response.status_code in (403, 404), response.text
    assert_openai_error(response, response.status_code)
    assert _upstream_models(fake_upstream, marker) == []


def test_restriction_repeated_model_key_judges_the_model_used(
    accounts: Accounts, api_gateway: Gateway, fake_upstream: FakeOpenAI
) -> None:
    key = _key(accounts, [ALLOWED])
    first, second = uuid.uuid4().hex, uuid.uuid4().hex

    forbidden_last = _raw_chat(api_gateway, key, _body(ALLOWED, first, repeat=FORBIDDEN))
    allowed_last = _raw_chat(api_gateway, key, _body(FORBIDDEN, second, repeat=ALLOWED))

    # The gateway's JSON parser keeps the last "model": that is the one judged and used.
    assert assert_openai_error(forbidden_last, 403)["param"] == "model"
    assert _upstream_models(fake_upstream, first) == []
    assert allowed_last.status_code == 200, allowed_last.text
    assert _upstream_models(fake_upstream, second) == [ALLOWED_UPSTREAM]


def test_restriction_model_in_query_or_header_is_ignored(
    accounts: Accounts, api_gateway: Gateway, fake_upstream: FakeOpenAI
) -> None:
    key = _key(accounts, [ALLOWED])
    markers = [uuid.uuid4().hex for _ in range(4)]

    query_forbidden = _raw_chat(
        api_gateway, key, _body(ALLOWED, markers[0]), params={"model": FORBIDDEN}
    )
    query_allowed = _raw_chat(
        api_gateway, key, _body(FORBIDDEN, markers[1]), params={"model": ALLOWED}
    )
    header_forbidden = _raw_chat(
        api_gateway, key, _body(ALLOWED, markers[2]),
        headers={"model": FORBIDDEN, "x-model": FORBIDDEN, "openai-model": FORBIDDEN},
    )  # fmt: skip
    header_allowed = _raw_chat(
        api_gateway, key, _body(FORBIDDEN, markers[3]),
        headers={"model": ALLOWED, "x-model": ALLOWED, "openai-model": ALLOWED},
    )  # fmt: skip

    assert query_forbidden.status_code == 200, query_forbidden.text
    assert header_forbidden.status_code == 200, header_forbidden.text
    assert _upstream_models(fake_upstream, markers[0]) == [ALLOWED_UPSTREAM]
    assert _upstream_models(fake_upstream, markers[2]) == [ALLOWED_UPSTREAM]
    for refused, marker in ((query_allowed, markers[1]), (header_allowed, markers[3])):
        assert assert_openai_error(refused, 403)["param"] == "model"
        assert _upstream_models(fake_upstream, marker) == []


def test_restriction_streamed_request_is_judged_too(
    accounts: Accounts, api_gateway: Gateway
) -> None:
    key = _key(accounts, [ALLOWED])

    response = _raw_chat(
        api_gateway,
        key,
        b'{"model":"%s","stream":true,"messages":[{"role":"user","content":"hi"}]}'
        % FORBIDDEN.encode(),
    )

    assert assert_openai_error(response, 403)["param"] == "model"
