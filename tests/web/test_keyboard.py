"""The dashboard with the keyboard alone: tab order, a visible focus ring, Enter submits."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import new_email, sign_up

# What the focused element is, and whether a ring of at least 2px is drawn around it.
FOCUSED = """() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  const box = element.getBoundingClientRect();
  return {
    tag: element.tagName, type: element.type || "", name: element.name || "",
    text: (element.innerText || "").trim(),
    ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    onScreen: box.width > 0 && box.height > 0 && box.top >= 0 && box.left >= 0,
  };
}"""
MAX_TABS = 40


def _tab_until(page: Page, wanted: dict[str, str]) -> list[dict[str, object]]:
    """Press Tab until the focused element matches ``wanted``; returns every stop on the way."""
    stops = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        stops.append(stop)
        if all(stop[key] == value for key, value in wanted.items()):
            return stops
    pytest.fail(f"{MAX_TABS} presses of Tab did not reach {wanted}")


def test_keys_keyboard_only_creates_key_with_enter(page: Page) -> None:
    sign_up(page, new_email("keyboard"))
    page.goto("/dashboard/keys")
    page.locator("body").focus()

    stops = _tab_until(page, {"tag": "INPUT", "name": "name"})
    page.keyboard.type("typed key")
    page.keyboard.press("Enter")

    assert stops[0]["text"] == "Skip to content"
    expect(page.get_by_test_id("new-key")).to_be_visible()
    expect(page.get_by_role("cell", name="typed key", exact=True)).to_be_visible()


@pytest.mark.parametrize("path", ["/dashboard/keys", "/dashboard/playground", "/dashboard/logs"])
def test_dashboard_every_tab_stop_shows_focus_ring(page: Page, path: str) -> None:
    sign_up(page, new_email("ring"))
    page.goto(path)
    page.locator("body").focus()

    stops = _tab_until(page, {"tag": "BUTTON", "type": "submit", "name": ""})
    stops += _tab_until(page, {"tag": "BUTTON", "text": {
        "/dashboard/keys": "Create key", "/dashboard/playground": "New conversation",
        "/dashboard/logs": "Filter"}[path]})  # fmt: skip

    # Date inputs step through their parts, which Chromium rings itself.
    checked = [stop for stop in stops if stop["type"] != "date"]
    assert len(checked) > 15
    assert [stop for stop in checked if not stop["ring"] or not stop["onScreen"]] == []


def test_playground_ctrl_enter_sends_message(page: Page) -> None:
    sign_up(page, new_email("pg-keys"))
    page.goto("/dashboard/keys")
    page.get_by_label("Name").fill("playground key")
    page.get_by_label("Name").press("Enter")
    expect(page.get_by_test_id("new-key")).to_be_visible()
    page.goto("/dashboard/playground")

    page.locator("#pg-message").focus()
    page.keyboard.type("Hello from the keyboard")
    page.keyboard.press("Control+Enter")

    expect(page.get_by_test_id("pg-stats")).to_contain_text("tokens out")
    expect(page.locator(".pg-user .pg-text")).to_have_text("Hello from the keyboard")
