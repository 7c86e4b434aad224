"""Every page at desktop and phone widths, light and dark: screenshots and no sideways scroll.

The PNGs go to test-artifacts/screenshots/ for a person to look at; the test itself checks
that the page loads, logs no console errors and never scrolls sideways on a phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pytest
from playwright.sync_api import Browser, Page, StorageState, ViewportSize

from tests.support.server import ServerProcess
from tests.web.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DESKTOP,
    PHONE,
    Console,
    new_email,
    page_exists,
    sign_in,
    sign_up,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
Who = Literal["visitor", "user", "admin"]
PAGES: list[tuple[str, str, Who]] = [
    ("landing", "/", "visitor"),
    ("signin", "/signin", "visitor"),
    ("signup", "/signup", "visitor"),
    ("overview", "/dashboard", "user"),
    ("models", "/dashboard/models", "user"),
    ("keys", "/dashboard/keys", "user"),
    ("balance", "/dashboard/balance", "user"),
    ("profile", "/dashboard/profile", "user"),
    ("playground", "/dashboard/playground", "user"),
    ("chat-new", "/dashboard/chat", "user"),
    # The user's first conversation, made by the ``sessions`` fixture.
    ("chat", "/dashboard/chat/1", "user"),
    ("logs", "/dashboard/logs", "user"),
    ("analytics", "/dashboard/analytics", "user"),
    ("alerts", "/dashboard/alerts", "user"),
    ("admin", "/dashboard/admin", "admin"),
    ("docs", "/docs", "visitor"),
    ("docs-api", "/docs/api", "visitor"),
    ("docs-sdks", "/docs/sdks", "visitor"),
    ("docs-models", "/docs/models", "visitor"),
    ("docs-errors", "/docs/errors", "visitor"),
    ("docs-limits", "/docs/limits", "visitor"),
]
WIDTHS: dict[str, ViewportSize] = {"desktop": DESKTOP, "phone": PHONE}
SCHEMES: list[Literal["light", "dark"]] = ["light", "dark"]


@dataclass(frozen=True)
class Sessions:
    """Signed-in browser state for an ordinary user with some traffic, and for the admin."""

    user: StorageState
    admin: StorageState


def _make_traffic(server: ServerProcess, key: str) -> None:
    for prompt in ("Hello there", "What can you do?", "Say something short"):
        response = httpx.post(
            server.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={
                "model": "offline-small-text",
                "messages": [{"role": "user", "content": prompt}],
            },
            timeout=10,
        )
        response.raise_for_status()


CHAT_QUESTION = """How do I stream with **Python**? Show `stream=True` and a short example:

```python
for chunk in client.chat.completions.create(model="offline-small-text", stream=True):
    print(chunk.choices[0].delta.content or "", end="")  # one piece at a time
```

- keys have limits
- see [the docs](https://example.com/docs)"""


def _make_conversation(page: Page) -> None:
    """One conversation with a Markdown question, its answer and an image, if Chat exists."""
    if not page_exists(page, "/dashboard/chat"):
        return
    page.goto("/dashboard/chat")
    csrf = page.locator("#chat").get_attribute("data-csrf") or ""
    key_id = int(page.locator("#chat-key option").first.get_attribute("value") or 0)
    headers = {"x-csrf-token": csrf}
    made = page.request.post("/dashboard/chat/conversations", headers=headers, data={})
    ask = f"/dashboard/chat/{made.json()['id']}/messages"
    for model, content in (("offline-small-text", CHAT_QUESTION),
                           ("offline-painter-image", "a lighthouse")):  # fmt: skip
        body = {"key_id": key_id, "model": model, "content": content, "size": "256x256"}
        assert page.request.post(ask, headers=headers, data=body).ok


@pytest.fixture(scope="module")
def sessions(browser: Browser, web_server: ServerProcess) -> Sessions:
    """Sign up a user who made a key and a few requests; sign the admin in."""
    context = browser.new_context(base_url=web_server.base_url)
    page = context.new_page()
    sign_up(page, new_email("shots"))
    page.goto("/dashboard/keys")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    _make_traffic(web_server, page.get_by_test_id("new-key").inner_text().strip())
    _make_conversation(page)
    user = context.storage_state()
    context.close()

    context = browser.new_context(base_url=web_server.base_url)
    sign_in(context.new_page(), ADMIN_EMAIL, ADMIN_PASSWORD)
    admin = context.storage_state()
    context.close()
    return Sessions(user=user, admin=admin)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize(("name", "path", "who"), PAGES, ids=[p[0] for p in PAGES])
def test_page_each_width_and_scheme_renders_without_sideways_scroll(
    browser: Browser,
    web_server: ServerProcess,
    sessions: Sessions,
    console: Console,
    name: str,
    path: str,
    who: Who,
    width: str,
    scheme: Literal["light", "dark"],
) -> None:
    state = {"visitor": None, "user": sessions.user, "admin": sessions.admin}[who]
    context = browser.new_context(
        base_url=web_server.base_url,
        viewport=WIDTHS[width],
        color_scheme=scheme,
        storage_state=state,
    )
    try:
        page = console.watch(context.new_page())
        if not page_exists(page, path):
            pytest.skip(f"the {name} page ({path}) does not exist yet")
        response = page.goto(path)
        assert response is not None
        assert response.status == 200
        assert page.url.endswith(path)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}-{scheme}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    finally:
        context.close()

    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width} width"
