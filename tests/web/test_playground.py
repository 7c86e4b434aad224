"""The playground's endpoints over real HTTP: the same answers, limits and billing as /v1,
with one of the signed-in user's keys named by id."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import parse_event_stream, token_cost, wait_for_log_rows
from tests.support.server import make_user_and_key
from vaultgate.accounts.keys import create_key, revoke_key
from vaultgate.storage.database import create_engine

PASSWORD = "correct horse battery"
CSRF_ATTRIBUTE = re.compile(r'data-csrf="([^"]+)"')
OFFLINE_IN = 100_000
OFFLINE_OUT = 400_000
PAINTER_256 = 4_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What differs between two otherwise identical answers of the offline model.
VOLATILE = ("id", "created")
QUESTION = [{"role": "user", "content": "compare the playground with the API"}]


@dataclass
class Player:
    """A signed-in browser session with the user's key."""

    client: httpx.Client
    csrf: str
    key: str
    key_id: int
    user_id: int
    email: str

    def post(self, path: str, payload: Any, *, csrf: bool = True) -> httpx.Response:
        """POST JSON to a playground endpoint, with the CSRF header unless told not to."""
        headers = {"x-csrf-token": self.csrf} if csrf else {}
        return self.client.post(path, json=payload, headers=headers)


def _sign_in(gateway: Gateway) -> Player:
    email = f"play-{uuid.uuid4().hex[:8]}@example.com"
    user, key, key_id = make_user_and_key(gateway.database_url, email=email)
    client = httpx.Client(base_url=gateway.base_url, timeout=30, follow_redirects=False)
    signed = client.post("/signin", data={"email": email, "password": PASSWORD})
    page = client.get("/dashboard/playground")
    match = CSRF_ATTRIBUTE.search(page.text)
    if signed.status_code != 303 or match is None:
        client.close()
        pytest.fail(f"could not sign in: {signed.status_code} {page.status_code}")
    return Player(client, match.group(1), key, key_id, user.id, email)


@pytest.fixture(scope="module")
def player(sqlite_gateway: Gateway) -> Iterator[Player]:
    """A user of the module, signed in once (sign-ins are rate limited), with one key."""
    signed_in = _sign_in(sqlite_gateway)
    yield signed_in
    signed_in.client.close()


def _v1(gateway: Gateway, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(gateway.api_base + path, json=body, headers=headers, timeout=30)


def _stable(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in VOLATILE}


def _add_key(database_url: str, user_id: int, *, revoked: bool) -> int:
    async def run() -> int:
        engine = create_engine(database_url)
        try:
            _, record = await create_key(engine, user_id=user_id, name="second")
            if revoked:
                await revoke_key(engine, record.id, user_id=user_id)
            return record.id
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_playground_page_lists_keys_by_prefix_never_the_key(
    sqlite_gateway: Gateway, player: Player
) -> None:
    page = player.client.get("/dashboard/playground")

    assert page.status_code == 200
    assert f'<option value="{player.key_id}">test ({player.key[:10]}…)</option>' in page.text
    assert player.key not in page.text
    assert "offline-small-text" in page.text
    assert "offline-painter-image" in page.text
    assert 'src="/static/playground.js"' in page.text
    assert f'data-api-base="{sqlite_gateway.base_url}/v1"' in page.text


def test_playground_chat_unstreamed_matches_v1_and_logs_cost(
    sqlite_gateway: Gateway, player: Player
) -> None:
    body = {"model": "offline-small-text", "messages": QUESTION, "temperature": 0.5}

    played = player.post("/dashboard/playground/chat", {"key_id": player.key_id, "request": body})
    direct = _v1(sqlite_gateway, player.key, "/chat/completions", body)

    assert played.status_code == direct.status_code == 200, played.text
    assert played.headers["content-type"] == direct.headers["content-type"]
    assert _stable(played.json()) == _stable(direct.json())
    usage = played.json()["usage"]
    request_id = played.headers["x-request-id"]
    row = wait_for_log_rows(sqlite_gateway.database_url, [request_id])[request_id]
    assert row["key_id"] == player.key_id
    assert row["user_id"] == player.user_id
    assert row["status"] == 200
    assert row["stream"] is False
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    expected = token_cost(
        usage["prompt_tokens"], usage["completion_tokens"], OFFLINE_IN, OFFLINE_OUT
    )
    assert row["cost_micros"] == expected > 0
    assert row["charged_micros"] == expected


@pytest.mark.parametrize("include_usage", [True, False])
def test_playground_chat_streamed_matches_v1_event_stream(
    sqlite_gateway: Gateway, player: Player, include_usage: bool
) -> None:
    body = {
        "model": "offline-small-text",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }

    played = player.post("/dashboard/playground/chat", {"key_id": player.key_id, "request": body})
    direct = _v1(sqlite_gateway, player.key, "/chat/completions", body)

    assert played.status_code == direct.status_code == 200, played.text
    assert played.headers["content-type"] == direct.headers["content-type"]
    assert played.headers["content-type"].startswith("text/event-stream")
    played_chunks, played_done = parse_event_stream(played.content)
    direct_chunks, direct_done = parse_event_stream(direct.content)
    assert played_done
    assert direct_done
    assert [_stable(c) for c in played_chunks] == [_stable(c) for c in direct_chunks]
    assert ("usage" in played_chunks[-1]) is include_usage
    request_id = played.headers["x-request-id"]
    row = wait_for_log_rows(sqlite_gateway.database_url, [request_id])[request_id]
    assert row["stream"] is True
    assert row["key_id"] == player.key_id
    expected = token_cost(row["prompt_tokens"], row["completion_tokens"], OFFLINE_IN, OFFLINE_OUT)
    assert row["cost_micros"] == expected > 0
    assert row["ttft_ms"] is not None


def test_playground_chat_invalid_request_gets_v1_error(
    sqlite_gateway: Gateway, player: Player
) -> None:
    body = {"model": "offline-small-text", "messages": QUESTION, "temperature": 3}

    played = player.post("/dashboard/playground/chat", {"key_id": player.key_id, "request": body})
    direct = _v1(sqlite_gateway, player.key, "/chat/completions", body)

    assert played.status_code == direct.status_code == 400
    assert played.json() == direct.json()
    assert played.json()["error"]["param"] == "temperature"


def test_playground_chat_key_of_another_user_is_not_found(
    sqlite_gateway: Gateway, player: Player
) -> None:
    _, _, other_key_id = make_user_and_key(
        sqlite_gateway.database_url, email=f"other-{uuid.uuid4().hex[:8]}@example.com"
    )
    body = {"model": "offline-small-text", "messages": QUESTION}

    response = player.post("/dashboard/playground/chat", {"key_id": other_key_id, "request": body})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "key_not_found"


def test_playground_chat_revoked_key_is_unauthorised(
    sqlite_gateway: Gateway, player: Player
) -> None:
    revoked_id = _add_key(sqlite_gateway.database_url, player.user_id, revoked=True)
    body = {"model": "offline-small-text", "messages": QUESTION}

    response = player.post("/dashboard/playground/chat", {"key_id": revoked_id, "request": body})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_playground_chat_without_csrf_header_is_refused(player: Player) -> None:
    body = {"model": "offline-small-text", "messages": QUESTION}

    response = player.post(
        "/dashboard/playground/chat", {"key_id": player.key_id, "request": body}, csrf=False
    )

    assert response.status_code == 403


def test_playground_chat_signed_out_redirects_to_signin(sqlite_gateway: Gateway) -> None:
    body = {"model": "offline-small-text", "messages": QUESTION}
    with httpx.Client(base_url=sqlite_gateway.base_url, timeout=10) as client:
        response = client.post("/dashboard/playground/chat", json={"key_id": 1, "request": body})

    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")


def test_playground_chat_malformed_envelope_is_bad_request(player: Player) -> None:
    response = player.post("/dashboard/playground/chat", {"key_id": "one", "request": {}})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "key_id"


def test_playground_images_return_png_and_log_cost(
    sqlite_gateway: Gateway, player: Player
) -> None:
    body = {
        "model": "offline-painter-image",
        "prompt": "a lighthouse",
        "size": "256x256",
        "response_format": "b64_json",
    }

    response = player.post(
        "/dashboard/playground/images", {"key_id": player.key_id, "request": body}
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 1
    assert base64.b64decode(data[0]["b64_json"]).startswith(PNG_SIGNATURE)
    request_id = response.headers["x-request-id"]
    row = wait_for_log_rows(sqlite_gateway.database_url, [request_id])[request_id]
    assert row["endpoint"] == "images"
    assert row["key_id"] == player.key_id
    assert row["images"] == 1
    assert row["cost_micros"] == PAINTER_256


def test_playground_images_url_format_links_to_v1_files(
    sqlite_gateway: Gateway, player: Player
) -> None:
    body = {"model": "offline-omni-hybrid", "prompt": "a harbour", "size": "256x256"}

    response = player.post(
        "/dashboard/playground/images", {"key_id": player.key_id, "request": body}
    )

    assert response.status_code == 200, response.text
    url = response.json()["data"][0]["url"]
    assert url.startswith(sqlite_gateway.base_url + "/v1/images/files/")
    assert httpx.get(url, timeout=10).content.startswith(PNG_SIGNATURE)


def test_playground_images_text_model_gets_wrong_endpoint(player: Player) -> None:
    body = {"model": "offline-small-text", "prompt": "a lighthouse"}

    response = player.post(
        "/dashboard/playground/images", {"key_id": player.key_id, "request": body}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "wrong_endpoint"
