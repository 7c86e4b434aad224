"""Helpers for page tests over real HTTP: signing in, sending /v1 requests, adding log rows."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
from sqlalchemy import Table, insert

from vaultgate.accounts.users import create_user
from vaultgate.storage.database import create_engine
from vaultgate.storage.log_rows import insert_log_rows

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "boss@example.com"
ROW_ID = re.compile(r'<tr data-id="(\d+)"')


@contextlib.contextmanager
def signed_in(base_url: str, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """An HTTP client holding the session cookie of ``email``, closed afterwards."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post("/signin", data={"email": email, "password": password})
        assert response.status_code == 303, response.text
        yield client


def make_admin(database_url: str) -> None:
    """An admin account ``ADMIN_EMAIL`` with ``PASSWORD`` (the server made none: users exist)."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            await create_user(
                engine, email=ADMIN_EMAIL, username="boss", password=PASSWORD, is_admin=True
            )
        finally:
            await engine.dispose()

    asyncio.run(run())


def chat(base_url: str, key: str, model: str) -> int:
    """Send one chat completion through /v1; returns the HTTP status."""
    response = httpx.post(
        base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    return response.status_code


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    """Poll until ``check`` is true (the request log is written in the background)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def row_ids(html: str) -> list[int]:
    """The log ids on a rendered logs page, in page order."""
    return [int(found) for found in ROW_ID.findall(html)]


def csrf_token(html: str) -> str:
    """The CSRF token of a rendered page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_row(user_id: int, key_id: int, when: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A request_logs row with plausible defaults."""
    return {
        "created_at": when, "request_id": f"req_{uuid.uuid4().hex}", "key_id": key_id,
        "user_id": user_id, "endpoint": "chat", "model": "fake-plain-text",
        "provider": "fake", "status": 200, "stream": False, "prompt_tokens": 10,
        "completion_tokens": 5, "cached_tokens": 0, "images": 0, "usage_estimated": False,
        "cost_micros": 20, "charged_micros": 20, "latency_ms": 12, "ttft_ms": None,
        "attempts": 1, "error": None, **fields,
    }  # fmt: skip


def insert_rows(database_url: str, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows straight into a table of the database."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(table), list(rows))
        finally:
            await engine.dispose()

    asyncio.run(run())


def insert_logs(database_url: str, rows: Iterable[dict[str, Any]]) -> None:
    """Write request_logs rows straight into the database, with their usage rollups."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await insert_log_rows(conn, list(rows))
        finally:
            await engine.dispose()

    asyncio.run(run())


def query(database_url: str, statement: Any) -> list[Any]:
    """Run one SELECT on the database; returns its rows."""

    async def run() -> list[Any]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())
