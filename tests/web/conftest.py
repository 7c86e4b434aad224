"""Browser fixtures: a VaultGate on SQLite and headless Chromium driven by Playwright.

One browser per module, a fresh context (cookies, storage) per test. Every page a test
opens reports its console errors, uncaught exceptions and CSP violations; any that the
test did not expect fails it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.support.server import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "admin-password-123"
# Long enough per token for the browser to see a reply arrive in pieces, short for the suite.
SERVER_ENV = {
    "VAULTGATE_OFFLINE_TOKEN_DELAY_MS": "5",
    "VAULTGATE_OFFLINE_FIRST_TOKEN_DELAY_MS": "5",
}


def require_chromium() -> None:
    """Skip without Chromium, except under CI, where its absence is a failure."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"{CHROMIUM} is required under CI (apt-get install chromium)")
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")


@dataclass
class Console:
    """What the pages of one test wrote to the console as errors."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """Tolerate errors matching ``pattern`` (a refused form's 403, say)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """The errors no ``expect`` call covers."""
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]

    def watch(self, page: Page) -> Page:
        """Record the console errors and uncaught exceptions of ``page``."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``vaultgate serve`` on a fresh SQLite database; it migrates and makes the admin."""
    root = tmp_path_factory.mktemp("web")
    url = f"sqlite+aiosqlite:///{root / 'vaultgate.db'}"
    server = ServerProcess(root / "data", url, env=SERVER_ENV).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module."""
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console() -> Iterator[Console]:
    """The console errors of this test's pages; unexpected ones fail the test."""
    seen = Console()
    yield seen
    if seen.unexpected():
        pytest.fail("browser console errors:\n" + "\n".join(seen.unexpected()))


@pytest.fixture
def context(browser: Browser, web_server: ServerProcess) -> Iterator[BrowserContext]:
    """A fresh desktop browser context pointed at the server."""
    fresh = browser.new_context(base_url=web_server.base_url, viewport=DESKTOP)
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext, console: Console) -> Page:
    """A tab in the fresh context whose console is watched."""
    return console.watch(context.new_page())


def new_email(prefix: str = "user") -> str:
    """An address no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page: Page, email: str, password: str = PASSWORD) -> None:
    """Create an account through the form; ends on the overview."""
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(email.split("@")[0].replace("-", "_"))
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/dashboard")


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form; ends on the overview."""
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")


def page_exists(page: Page, path: str) -> bool:
    """Whether the signed-in ``page`` can open ``path`` (the route has landed)."""
    response = page.request.get(path, max_redirects=0)
    return response.status != 404
