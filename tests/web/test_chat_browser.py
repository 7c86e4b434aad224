"""Chat and Docs in real Chromium against a running VaultGate.

A user signs in, opens Chat, watches an answer stream in, stops a long one, regenerates it,
switches to an image model and sees the image, renames the conversation, shares it and
reads the link in a fresh browser, then deletes it. Model output is shown as formatted
Markdown without ever becoming markup. The docs render and list the offline models.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import ServerProcess
from tests.web.conftest import DESKTOP, PHONE, Console, new_email, sign_up

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Slow enough per token for a person (and a test) to stop an answer half way.
SERVER_ENV = {
    "VAULTGATE_OFFLINE_TOKEN_DELAY_MS": "40",
    "VAULTGATE_OFFLINE_FIRST_TOKEN_DELAY_MS": "5",
}
TEXT_MODEL = "offline-small-text"
IMAGE_MODEL = "offline-painter-image"
# The offline model writes 24 + crc32(prompt) % 40 words: this prompt gets one of the longest.
LONG_PROMPT = next(
    prompt
    for prompt in (f"Tell me a long story, number {n}" for n in range(1000))
    if zlib.crc32(prompt.encode()) % 40 >= 36
)
LAST_ANSWER = ".chat-turn.chat-assistant >> nth=-1"
STREAMING = """() => {
  const answers = document.querySelectorAll(".chat-turn.chat-assistant .chat-text");
  const last = answers[answers.length - 1];
  return Boolean(last && last.textContent.length > 0
                 && !document.getElementById("chat-stop").hidden);
}"""


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``vaultgate serve`` whose offline model writes at a readable pace."""
    root = tmp_path_factory.mktemp("chat-web")
    url = f"sqlite+aiosqlite:///{root / 'vaultgate.db'}"
    server = ServerProcess(root / "data", url, env=SERVER_ENV).start()
    yield server
    server.stop()


def _make_key(page: Page) -> None:
    page.goto("/dashboard/keys")
    form = page.locator("form[action='/dashboard/keys']")
    form.get_by_label("Name").fill("chat key")
    form.get_by_role("button", name="Create key").click()
    expect(page.get_by_test_id("new-key")).to_be_visible()


def _send(page: Page, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def _stream_and_finish(page: Page, text: str) -> tuple[str, str]:
    """Send ``text``; return the answer as first seen mid-stream and when finished."""
    _send(page, text)
    page.wait_for_function(STREAMING)
    partial = page.locator(LAST_ANSWER).locator(".chat-text").inner_text()
    expect(page.locator("#chat-stop")).to_be_hidden(timeout=20_000)
    return partial, page.locator(LAST_ANSWER).locator(".chat-text").inner_text()


def _first_conversation(page: Page) -> str:
    _send(page, "Hello there, gateway")
    page.wait_for_url(re.compile(r"/dashboard/chat/\d+$"), timeout=20_000)
    expect(page.get_by_role("heading", name="Hello there, gateway", level=1)).to_be_visible()
    answer = page.locator(LAST_ANSWER)
    expect(answer.locator(".chat-text")).to_contain_text("You said: Hello there, gateway")
    expect(answer.locator(".chat-meta")).to_contain_text("tokens out")
    expect(answer.locator(".chat-who")).to_have_text(TEXT_MODEL)
    return page.url


def _stop_long_answer(page: Page) -> None:
    _send(page, LONG_PROMPT)
    page.wait_for_function(STREAMING)
    page.get_by_role("button", name="Stop").click()
    answer = page.locator(LAST_ANSWER)
    expect(answer).to_contain_text("Stopped.")
    shown = answer.locator(".chat-text").inner_text()
    page.reload()
    stored = page.locator(LAST_ANSWER)
    expect(stored.locator(".chat-meta")).to_contain_text("stopped")
    # The server may have sent a few more words than the browser read before it stopped.
    kept = stored.locator(".chat-text").inner_text()
    assert kept.startswith(shown)
    assert len(kept.split()) < 60


def _regenerate(page: Page) -> None:
    answers = page.locator(".chat-turn.chat-assistant")
    before = answers.count()
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_function(STREAMING)
    expect(page.locator("#chat-stop")).to_be_hidden(timeout=20_000)
    expect(answers).to_have_count(before)
    page.reload()
    expect(answers).to_have_count(before)
    expect(page.locator(LAST_ANSWER).locator(".chat-meta")).not_to_contain_text("stopped")
    expect(page.locator(LAST_ANSWER).locator(".chat-text")).to_contain_text(LONG_PROMPT[:20])


def _image_answer(page: Page) -> None:
    page.get_by_label("Model").select_option(IMAGE_MODEL)
    expect(page.get_by_label("Image size")).to_be_visible()
    page.get_by_label("Image size").select_option("256x256")
    _send(page, "a lighthouse at dusk")
    image = page.locator(LAST_ANSWER).locator("img.chat-image")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.chat-image')].pop().naturalWidth === 256"
    )
    expect(page.locator(LAST_ANSWER).locator(".chat-who")).to_have_text(IMAGE_MODEL)
    expect(page.locator(LAST_ANSWER).locator(".chat-meta")).to_contain_text("$0.004")


def _rename(page: Page, title: str) -> None:
    page.locator("summary", has_text="Rename").click()
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.locator(".chat-history a[aria-current=page]")).to_have_text(title)


def _read_shared(browser: Browser, link: str, title: str, email: str, console: Console) -> None:
    for name, viewport, scheme in (("desktop-light", DESKTOP, "light"),
                                   ("phone-dark", PHONE, "dark")):  # fmt: skip
        visitor = browser.new_context(viewport=viewport, color_scheme=scheme)
        try:
            page = console.watch(visitor.new_page())
            page.goto(link)
            expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
            expect(page.locator(".chat-text.md").first).to_be_visible()
            expect(page.locator("img.chat-image")).to_be_visible()
            assert page.locator(".chat-side, #chat-compose, form").count() == 0
            assert email not in page.content()
            assert "Sign out" not in page.content()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"chat-shared-{name}.png", full_page=True)
        finally:
            visitor.close()


def test_chat_walk_stream_stop_regenerate_image_rename_share_delete(
    page: Page, browser: Browser, web_server: ServerProcess, console: Console
) -> None:
    email = new_email("chat")
    sign_up(page, email)
    _make_key(page)
    page.goto("/dashboard/chat")
    expect(page.get_by_role("heading", name="New chat", level=1)).to_be_visible()

    url = _first_conversation(page)
    partial, whole = _stream_and_finish(page, "What do keys limit?")
    assert 0 < len(partial) < len(whole), (partial, whole)
    assert whole.startswith("You said: What do keys limit?")
    _stop_long_answer(page)
    _regenerate(page)
    _image_answer(page)
    _rename(page, "Gateway questions")

    page.get_by_role("button", name="Share").click()
    link = page.get_by_test_id("share-link").inner_text().strip()
    assert link.startswith(web_server.base_url + "/share/")
    _read_shared(browser, link, "Gateway questions", email, console)

    page.goto(url)
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_text("cannot be undone")).to_be_visible()
    page.get_by_role("button", name="Delete conversation").click()
    page.wait_for_url("**/dashboard/chat?deleted=1")
    expect(page.get_by_text("Conversation deleted.")).to_be_visible()
    expect(page.locator(".chat-history a", has_text="Gateway questions")).to_have_count(0)
    assert page.request.get(link).status == 404
    assert page.request.get(url, max_redirects=0).status == 404


HOSTILE = """Look: <img src=x onerror="window.__pwned = 1"> and <script>window.__pwned = 2</script>

[click me](javascript:window.__pwned=3) and [the docs](https://example.com/docs)

```python
def greet(name):  # a comment
    return "hi " + name
```"""


def test_chat_hostile_markdown_is_shown_inert(page: Page, console: Console) -> None:
    sign_up(page, new_email("inert"))
    _make_key(page)
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto("/dashboard/chat")

    _send(page, HOSTILE)
    page.wait_for_url(re.compile(r"/dashboard/chat/\d+$"), timeout=20_000)

    question = page.locator(".chat-turn.chat-user").first
    expect(question).to_contain_text('<img src=x onerror="window.__pwned = 1">')
    expect(question).to_contain_text("[click me](javascript:window.__pwned=3)")
    assert page.locator(".chat-log img, .chat-log script").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    safe = question.get_by_role("link", name="the docs")
    expect(safe).to_have_attribute("href", "https://example.com/docs")
    expect(safe).to_have_attribute("rel", "noopener noreferrer nofollow")
    code = question.locator(".md-code pre")
    expect(code.locator(".tok-kw", has_text="def")).to_be_visible()
    expect(code.locator(".tok-com")).to_have_text("# a comment")
    expect(code.locator(".tok-str")).to_have_text('"hi "')
    answer = page.locator(LAST_ANSWER)
    expect(answer).to_contain_text("You said: Look: <img src=x")
    assert page.evaluate("window.__pwned") is None


def test_docs_render_and_list_the_offline_models(page: Page, console: Console) -> None:
    page.goto("/")
    page.get_by_role("link", name="Read the docs").click()
    expect(page.get_by_role("heading", name="Getting started", level=1)).to_be_visible()
    expect(page.locator("pre[data-highlight] .tok-str").first).to_be_visible()

    page.get_by_role("link", name="Models and prices").first.click()
    for kind, model in (("text", TEXT_MODEL), ("image", IMAGE_MODEL),
                        ("hybrid", "offline-omni-hybrid")):  # fmt: skip
        table = page.get_by_test_id(f"models-{kind}")
        expect(table.get_by_role("cell", name=model, exact=True)).to_be_visible()
    for path in ("/docs/api", "/docs/sdks", "/docs/errors", "/docs/limits"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 200
    assert console.unexpected() == []
