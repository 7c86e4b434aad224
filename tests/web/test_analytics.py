"""The analytics page over HTTP, on SQLite and PostgreSQL: its numbers equal SQL totals."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from tests.conftest import Gateway
from tests.support.server import make_user_and_key
from tests.web.pages import chat, insert_logs, log_row, query, signed_in, wait_for
from vaultgate.storage.tables import request_logs
from vaultgate.web.render import usd

MODELS = ["fake-plain-text", "fake-other-text", "fake-third-text"]


def _figure(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, testid
    return found.group(1)


def _bars(html: str, testid: str) -> int:
    svg = html.split(f'data-testid="{testid}"')[1].split("</svg>")[0]
    return svg.count('<rect class="bar"')


def _table(html: str, testid: str) -> dict[str, list[str]]:
    body = html.split(f'data-testid="{testid}"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", body, re.S)
    return {name: re.findall(r'<td class="num">([^<]+)</td>', cells) for name, cells in rows}


def test_analytics_totals_equal_sql_sums(gateway: Gateway) -> None:
    other, _, other_key_id = make_user_and_key(gateway.database_url, email="other@example.com")
    for _ in range(3):
        assert chat(gateway.base_url, gateway.key, "fake-plain-text") == 200
    now = dt.datetime.now(dt.UTC)
    insert_logs(gateway.database_url, [
        log_row(gateway.user_id, gateway.key_id, now - dt.timedelta(hours=7 * i),
                model=MODELS[i % 3], prompt_tokens=i, completion_tokens=2 * i,
                charged_micros=1000 + i)
        for i in range(60)
    ] + [log_row(other.id, other_key_id, now, charged_micros=999_999)])  # fmt: skip
    log = request_logs.c
    wait_for(lambda: len(query(gateway.database_url, select(log.id))) == 64)
    sums = select(func.count(), func.sum(log.prompt_tokens + log.completion_tokens),
                  func.sum(log.charged_micros)).where(log.user_id == gateway.user_id)  # fmt: skip
    count, tokens, spent = query(gateway.database_url, sums)[0]
    per_model = dict(query(gateway.database_url, select(log.model, func.count()).where(
        log.user_id == gateway.user_id).group_by(log.model)))  # fmt: skip

    with signed_in(gateway.base_url, "user@example.com") as client:
        html = client.get("/dashboard/analytics", params={"days": "30"}).text

    assert _figure(html, "total-requests") == f"{count:,}"
    assert _figure(html, "total-tokens") == f"{tokens:,}"
    assert _figure(html, "total-spend") == usd(spent)
    assert {name: int(cells[0]) for name, cells in _table(html, "per-model").items()} == per_model
    assert list(_table(html, "per-key")) == ["test"]
    assert _bars(html, "spend-over-time") == 30
    assert '<title id="spend-over-time-title">Spend over time</title>' in html


def test_analytics_short_range_buckets_by_hour(gateway: Gateway) -> None:
    with signed_in(gateway.base_url, "user@example.com") as client:
        html = client.get("/dashboard/analytics", params={"days": "1"}).text

    assert "per hour" in html
    assert _bars(html, "requests-over-time") == 24
    assert "No requests in this period." in html


def test_analytics_custom_range_counts_whole_utc_days(gateway: Gateway) -> None:
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day -= dt.timedelta(days=10)
    edges = [day - dt.timedelta(microseconds=1), day, day + dt.timedelta(hours=23, minutes=59),
             day + dt.timedelta(days=1)]  # fmt: skip
    insert_logs(gateway.database_url, [
        log_row(gateway.user_id, gateway.key_id, when, charged_micros=10**i)
        for i, when in enumerate(edges)
    ])  # fmt: skip

    with signed_in(gateway.base_url, "user@example.com") as client:
        html = client.get("/dashboard/analytics", params={
            "from": day.date().isoformat(), "to": day.date().isoformat()}).text  # fmt: skip
        week = client.get("/dashboard/analytics", params={
            "from": (day - dt.timedelta(days=3)).date().isoformat(),
            "to": (day + dt.timedelta(days=3)).date().isoformat()}).text  # fmt: skip

    assert _figure(html, "total-requests") == "2"
    assert _figure(html, "total-spend") == usd(10 + 100)
    assert _bars(html, "requests-over-time") == 24
    hours = html.split('data-testid="requests-over-time"')[1].split("</svg>")[0]
    assert f"{day:%Y-%m-%d} 00:00: 1<" in hours
    assert f"{day:%Y-%m-%d} 23:00: 1<" in hours
    assert f"{day:%Y-%m-%d} 12:00: 0<" in hours
    assert _figure(week, "total-requests") == "4"
    assert _bars(week, "requests-over-time") == 7
    assert "per day" in week
