"""The overview page over HTTP, on SQLite and PostgreSQL: today's and this month's figures."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select

from tests.conftest import Gateway
from tests.support.server import make_user_and_key
from tests.web.pages import chat, insert_logs, log_row, query, signed_in, wait_for
from vaultgate.storage.tables import request_logs
from vaultgate.web.render import usd


def _figure(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, testid
    return found.group(1)


def _sums_since(database_url: str, user_id: int, since: dt.datetime) -> tuple[int, int]:
    """Requests and micro-USD charged since ``since``, summed over the log rows themselves."""
    log = request_logs.c
    count, spent = query(database_url, select(
        func.count(), func.coalesce(func.sum(log.charged_micros), 0)
    ).where(log.user_id == user_id, log.created_at >= since))[0]  # fmt: skip
    return int(count), int(spent)


def _rows_around_edges(user_id: int, key_id: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Rows on both sides of midnight and of the first of the month, and a few odd ones."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    tick = dt.timedelta(microseconds=1)
    moments = [now, today, today - tick, month, month - tick, month - dt.timedelta(days=40)]
    rows = [
        log_row(user_id, key_id, when, charged_micros=10**i, model=f"model-{i % 2}")
        for i, when in enumerate(moments)
    ]
    failed = log_row(user_id, key_id, now, status=502, charged_micros=0)
    keyless = log_row(user_id, key_id, today + dt.timedelta(minutes=1), charged_micros=777)
    keyless["key_id"] = None
    return [*rows, failed, keyless]


def test_overview_today_and_month_equal_sums_over_log_rows(gateway: Gateway) -> None:
    other, _, other_key_id = make_user_and_key(gateway.database_url, email="other@example.com")
    assert chat(gateway.base_url, gateway.key, "fake-plain-text") == 200
    now = dt.datetime.now(dt.UTC)
    insert_logs(gateway.database_url, [
        *_rows_around_edges(gateway.user_id, gateway.key_id, now),
        log_row(other.id, other_key_id, now, charged_micros=999_999),
    ])  # fmt: skip
    wait_for(lambda: len(query(gateway.database_url, select(request_logs.c.id))) == 10)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    requests_today, spent_today = _sums_since(gateway.database_url, gateway.user_id, today)
    requests_month, spent_month = _sums_since(
        gateway.database_url, gateway.user_id, today.replace(day=1)
    )

    with signed_in(gateway.base_url, "user@example.com") as client:
        html = client.get("/dashboard").text

    # The chat request, now, midnight, the failed and the keyless rows: not yesterday's.
    assert requests_today == 5
    assert _figure(html, "requests-today") == f"{requests_today:,}"
    assert _figure(html, "spent-today") == usd(spent_today)
    assert _figure(html, "requests-month") == f"{requests_month:,}"
    assert _figure(html, "spent-month") == usd(spent_month)


def test_overview_without_requests_shows_zero(gateway: Gateway) -> None:
    with signed_in(gateway.base_url, "user@example.com") as client:
        html = client.get("/dashboard").text

    assert _figure(html, "requests-today") == "0"
    assert _figure(html, "spent-today") == usd(0)
    assert _figure(html, "requests-month") == "0"
    assert _figure(html, "spent-month") == usd(0)
