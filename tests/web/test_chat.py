"""The chat over real HTTP: conversations kept per account, answers through the gateway with
the user's key (billed and logged), regenerate, images, export, share links, and the
guards: ownership, CSRF, escaping."""

from __future__ import annotations

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

PASSWORD = "correct horse battery"
CSRF_ATTRIBUTE = re.compile(r'data-csrf="([^"]+)"')
SHARE_LINK = re.compile(r'data-testid="share-link">([^<]+)<')
TEXT_MODEL = "offline-small-text"
HYBRID_MODEL = "offline-omni-hybrid"
IMAGE_MODEL = "offline-painter-image"
OFFLINE_IN, OFFLINE_OUT = 100_000, 400_000
HYBRID_IN, HYBRID_OUT = 200_000, 800_000
PAINTER_256 = 4_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<img src=x onerror=alert(1)> and [click me](javascript:alert(1))"


@dataclass
class Chatter:
    """A signed-in browser session of a user with one key."""

    client: httpx.Client
    csrf: str
    key: str
    key_id: int
    user_id: int
    email: str

    def post(self, path: str, payload: Any, *, csrf: bool = True) -> httpx.Response:
        """POST JSON with the CSRF header unless told not to."""
        headers = {"x-csrf-token": self.csrf} if csrf else {}
        return self.client.post(path, json=payload, headers=headers)

    def form(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        """POST a form with the CSRF token."""
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})})

    def start(self, model: str = TEXT_MODEL) -> int:
        """A new conversation's id."""
        response = self.post("/dashboard/chat/conversations", {"model": model})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def ask(self, conversation: int, content: str, **extra: Any) -> httpx.Response:
        """Send a question with the user's key."""
        body = {"key_id": self.key_id, "model": TEXT_MODEL, "content": content, **extra}
        return self.post(f"/dashboard/chat/{conversation}/messages", body)

    def exported(self, conversation: int) -> dict[str, Any]:
        """The conversation's JSON export."""
        response = self.client.get(f"/dashboard/chat/{conversation}/export.json")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


def _sign_in(gateway: Gateway, prefix: str) -> Chatter:
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    user, key, key_id = make_user_and_key(gateway.database_url, email=email)
    client = httpx.Client(base_url=gateway.base_url, timeout=30, follow_redirects=False)
    signed = client.post("/signin", data={"email": email, "password": PASSWORD})
    page = client.get("/dashboard/chat")
    match = CSRF_ATTRIBUTE.search(page.text)
    if signed.status_code != 303 or match is None:
        client.close()
        pytest.fail(f"could not sign in: {signed.status_code} {page.status_code}")
    return Chatter(client, match.group(1), key, key_id, user.id, email)


@pytest.fixture(scope="module")
def chatter(sqlite_gateway: Gateway) -> Iterator[Chatter]:
    """A user of the module, signed in once (sign-ins are rate limited)."""
    signed_in = _sign_in(sqlite_gateway, "chat")
    yield signed_in
    signed_in.client.close()


@pytest.fixture(scope="module")
def stranger(sqlite_gateway: Gateway) -> Iterator[Chatter]:
    """Another user, to try the first one's conversations."""
    signed_in = _sign_in(sqlite_gateway, "stranger")
    yield signed_in
    signed_in.client.close()


def _answer_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


def test_chat_ask_streams_answer_and_stores_turn_with_its_cost(
    sqlite_gateway: Gateway, chatter: Chatter
) -> None:
    conversation = chatter.start()

    response = chatter.ask(conversation, "What is a gateway for?")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-chat-title"] == "What%20is%20a%20gateway%20for%3F"
    chunks, done = parse_event_stream(response.content)
    assert done
    usage = chunks[-1]["usage"]
    document = chatter.exported(conversation)
    assert document["title"] == "What is a gateway for?"
    assert document["model"] == TEXT_MODEL
    question, answer = document["messages"]
    assert (question["role"], question["content"]) == ("user", "What is a gateway for?")
    assert answer["role"] == "assistant"
    assert answer["content"] == _answer_text(chunks)
    assert answer["model"] == TEXT_MODEL
    assert answer["finish_reason"] == "stop"
    assert answer["prompt_tokens"] == usage["prompt_tokens"]
    assert answer["completion_tokens"] == usage["completion_tokens"]
    expected = token_cost(
        usage["prompt_tokens"], usage["completion_tokens"], OFFLINE_IN, OFFLINE_OUT
    )
    assert answer["cost_micros"] == expected > 0
    row = wait_for_log_rows(sqlite_gateway.database_url, [answer["request_id"]])
    logged = row[answer["request_id"]]
    assert logged["key_id"] == chatter.key_id
    assert logged["user_id"] == chatter.user_id
    assert logged["charged_micros"] == expected


def test_chat_second_question_sends_the_history(chatter: Chatter) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, "first question")

    response = chatter.ask(conversation, "second question")

    chunks, _ = parse_event_stream(response.content)
    # The offline model echoes the last question; the prompt grew by the first turn.
    assert _answer_text(chunks).startswith("You said: second question")
    assert "x-chat-title" not in response.headers
    first, second = (m for m in chatter.exported(conversation)["messages"] if m["role"] == "user")
    assert (first["content"], second["content"]) == ("first question", "second question")
    answers = [m for m in chatter.exported(conversation)["messages"] if m["role"] != "user"]
    assert answers[1]["prompt_tokens"] > answers[0]["prompt_tokens"]


def test_chat_regenerate_replaces_the_last_answer_with_another_model(
    chatter: Chatter,
) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, "tell me about limits")
    before = chatter.exported(conversation)["messages"]

    response = chatter.post(
        f"/dashboard/chat/{conversation}/regenerate",
        {"key_id": chatter.key_id, "model": HYBRID_MODEL},
    )

    assert response.status_code == 200, response.text
    after = chatter.exported(conversation)["messages"]
    assert len(after) == len(before) == 2
    assert after[0] == before[0]
    assert after[1]["model"] == HYBRID_MODEL
    assert after[1]["request_id"] != before[1]["request_id"]
    expected = token_cost(
        after[1]["prompt_tokens"], after[1]["completion_tokens"], HYBRID_IN, HYBRID_OUT
    )
    assert after[1]["cost_micros"] == expected
    assert chatter.exported(conversation)["model"] == HYBRID_MODEL


def test_chat_regenerate_without_a_question_is_bad_request(chatter: Chatter) -> None:
    conversation = chatter.start()

    response = chatter.post(
        f"/dashboard/chat/{conversation}/regenerate",
        {"key_id": chatter.key_id, "model": TEXT_MODEL},
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_chat_image_model_answers_with_a_stored_png(
    sqlite_gateway: Gateway, chatter: Chatter
) -> None:
    conversation = chatter.start(IMAGE_MODEL)

    response = chatter.post(
        f"/dashboard/chat/{conversation}/messages",
        {"key_id": chatter.key_id, "model": IMAGE_MODEL, "content": "a lighthouse",
         "size": "256x256"},
    )  # fmt: skip

    assert response.status_code == 200, response.text
    message = response.json()["message"]
    assert message["model"] == IMAGE_MODEL
    assert message["cost_micros"] == PAINTER_256
    (url,) = message["images"]
    assert url == f"/dashboard/chat/{conversation}/images/{message['id']}/0"
    image = chatter.client.get(url)
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)
    stored = chatter.exported(conversation)["messages"][1]
    assert base64.b64decode(stored["images_b64"][0]) == image.content
    logged = wait_for_log_rows(sqlite_gateway.database_url, [stored["request_id"]])
    assert logged[stored["request_id"]]["images"] == 1
    assert logged[stored["request_id"]]["charged_micros"] == PAINTER_256


def test_chat_hybrid_model_in_image_mode_answers_with_an_image(chatter: Chatter) -> None:
    conversation = chatter.start()

    response = chatter.ask(
        conversation, "a harbour", model=HYBRID_MODEL, mode="image", size="256x256"
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["message"]["images"]) == 1


def test_chat_conversation_of_another_user_is_not_found(
    chatter: Chatter, stranger: Chatter
) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, "private thoughts")
    base = f"/dashboard/chat/{conversation}"

    pages = [stranger.client.get(base + suffix) for suffix in ("", "/export.json",
             "/export.md", "/delete", "/images/1/0")]  # fmt: skip
    forms = [stranger.form(base + suffix) for suffix in ("/rename", "/share", "/unshare",
             "/delete")]  # fmt: skip
    asked = stranger.ask(conversation, "let me in")
    regenerated = stranger.post(
        base + "/regenerate", {"key_id": stranger.key_id, "model": TEXT_MODEL}
    )

    assert [r.status_code for r in pages + forms] == [404] * 9
    assert "private thoughts" not in "".join(r.text for r in pages + forms)
    assert asked.status_code == regenerated.status_code == 404
    assert asked.json()["error"]["code"] == "conversation_not_found"
    assert len(chatter.exported(conversation)["messages"]) == 2
    assert f'href="{base}"' not in stranger.client.get("/dashboard/chat").text


def test_chat_key_of_another_user_is_refused_and_nothing_stored(
    chatter: Chatter, stranger: Chatter
) -> None:
    conversation = chatter.start()

    response = chatter.post(
        f"/dashboard/chat/{conversation}/messages",
        {"key_id": stranger.key_id, "model": TEXT_MODEL, "content": "on your bill"},
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "key_not_found"
    assert chatter.exported(conversation)["messages"] == []


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": TEXT_MODEL, "content": "hi"}, "key_id"),
        ({"key_id": 1, "model": TEXT_MODEL, "content": "  "}, "content"),
        ({"key_id": 1, "model": "no-such-model", "content": "hi"}, "model"),
    ],
)
def test_chat_ask_malformed_envelope_names_the_field(
    chatter: Chatter, payload: dict[str, Any], param: str
) -> None:
    conversation = chatter.start()

    response = chatter.post(f"/dashboard/chat/{conversation}/messages", payload)

    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] == param


def test_chat_requests_without_csrf_are_refused(chatter: Chatter) -> None:
    conversation = chatter.start()
    base = f"/dashboard/chat/{conversation}"
    body = {"key_id": chatter.key_id, "model": TEXT_MODEL, "content": "hi"}

    refused = [
        chatter.post("/dashboard/chat/conversations", {}, csrf=False),
        chatter.post(base + "/messages", body, csrf=False),
        chatter.post(base + "/regenerate", body, csrf=False),
        chatter.client.post(base + "/rename", data={"title": "renamed"}),
        chatter.client.post(base + "/share"),
        chatter.client.post(base + "/unshare"),
        chatter.client.post(base + "/delete"),
    ]

    assert [r.status_code for r in refused] == [403] * 7
    assert chatter.exported(conversation)["messages"] == []
    assert chatter.client.get(base).status_code == 200


def test_chat_signed_out_is_sent_to_signin(sqlite_gateway: Gateway) -> None:
    with httpx.Client(base_url=sqlite_gateway.base_url, timeout=10) as client:
        page = client.get("/dashboard/chat/1")
        posted = client.post("/dashboard/chat/1/messages", json={})

    assert page.status_code == posted.status_code == 303
    assert page.headers["location"] == "/signin?next=/dashboard/chat/1"


def test_chat_hostile_message_is_escaped_in_page_and_export(chatter: Chatter) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, HOSTILE)

    page = chatter.client.get(f"/dashboard/chat/{conversation}")

    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert "<script>" not in page.text
    markdown = chatter.client.get(f"/dashboard/chat/{conversation}/export.md")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.headers["content-disposition"].startswith("attachment")


def test_chat_rename_then_delete_after_confirmation(chatter: Chatter) -> None:
    conversation = chatter.start()
    base = f"/dashboard/chat/{conversation}"

    renamed = chatter.form(base + "/rename", {"title": "  Notes   on <b>keys</b> "})
    empty = chatter.form(base + "/rename", {"title": "   "})
    page = chatter.client.get(base)
    confirm = chatter.client.get(base + "/delete")
    deleted = chatter.form(base + "/delete")

    assert renamed.status_code == 303
    assert empty.status_code == 400
    assert "Notes on &lt;b&gt;keys&lt;/b&gt;" in page.text
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/dashboard/chat?deleted=1"
    assert chatter.client.get(base).status_code == 404


def test_chat_share_link_reads_without_account_data_until_revoked(
    sqlite_gateway: Gateway, chatter: Chatter
) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, HOSTILE)
    image_turn = chatter.ask(conversation, "a lighthouse", model=IMAGE_MODEL, size="256x256")
    image_id = image_turn.json()["message"]["id"]

    shared = chatter.form(f"/dashboard/chat/{conversation}/share")
    link = SHARE_LINK.search(shared.text)
    assert shared.status_code == 200
    assert link, shared.text
    with httpx.Client(timeout=10) as visitor:
        page = visitor.get(link.group(1))
        image = visitor.get(f"{link.group(1)}/images/{image_id}/0")
        chatter.form(f"/dashboard/chat/{conversation}/unshare")
        after = visitor.get(link.group(1))
        image_after = visitor.get(f"{link.group(1)}/images/{image_id}/0")

    assert link.group(1).startswith(sqlite_gateway.base_url + "/share/")
    assert page.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in page.text
    assert 'href="javascript:' not in page.text
    for private in (chatter.email, chatter.email.split("@")[0], "csrf", "chat-side",
                    "/dashboard/chat/", "Sign out", chatter.key[:10], "tokens in",
                    "$0."):  # fmt: skip
        assert private not in page.text
    assert 'name="robots" content="noindex"' in page.text
    assert image.content.startswith(PNG_SIGNATURE)
    assert after.status_code == image_after.status_code == 404


def test_chat_new_share_link_replaces_the_old_one(chatter: Chatter) -> None:
    conversation = chatter.start()
    first = SHARE_LINK.search(chatter.form(f"/dashboard/chat/{conversation}/share").text)
    second = SHARE_LINK.search(chatter.form(f"/dashboard/chat/{conversation}/share").text)
    assert first
    assert second

    with httpx.Client(timeout=10) as visitor:
        old, new = visitor.get(first.group(1)), visitor.get(second.group(1))

    assert (old.status_code, new.status_code) == (404, 200)


def test_chat_unknown_share_token_is_not_found(sqlite_gateway: Gateway) -> None:
    response = httpx.get(sqlite_gateway.base_url + "/share/not-a-token", timeout=10)

    assert response.status_code == 404


def test_chat_export_markdown_lists_turns_with_model_and_cost(chatter: Chatter) -> None:
    conversation = chatter.start()
    chatter.ask(conversation, "export me")
    answer = chatter.exported(conversation)["messages"][1]

    markdown = chatter.client.get(f"/dashboard/chat/{conversation}/export.md").text

    assert markdown.startswith("# export me\n")
    assert "## You\n\nexport me\n" in markdown
    assert f"## Assistant ({TEXT_MODEL})\n\n{answer['content']}\n" in markdown
    assert f"${answer['cost_usd']}" in markdown


def test_chat_page_lists_only_own_conversations_newest_first(
    chatter: Chatter, stranger: Chatter
) -> None:
    older, newer = chatter.start(), chatter.start()
    chatter.ask(older, "older")
    chatter.ask(newer, "newer")
    theirs = stranger.start()

    page = chatter.client.get("/dashboard/chat").text

    assert page.index(f'href="/dashboard/chat/{newer}"') < page.index(
        f'href="/dashboard/chat/{older}"'
    )
    assert f'href="/dashboard/chat/{theirs}"' not in page
    assert chatter.key not in page
