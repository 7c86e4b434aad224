"""The logs pages over HTTP, on SQLite and PostgreSQL: filters, keyset pages, detail, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import httpx
from sqlalchemy import select

from tests.conftest import Gateway
from tests.support.server import make_user_and_key
from tests.web.pages import chat, insert_logs, log_row, query, row_ids, signed_in, wait_for
from vaultgate.storage.tables import request_logs

OTHER = "other@example.com"


def _ids(client: httpx.Client, **params: str) -> list[int]:
    response = client.get("/dashboard/logs", params=params)
    assert response.status_code == 200
    return row_ids(response.text)


def _walk_older(client: httpx.Client, params: dict[str, str]) -> list[list[int]]:
    """Every page from the first, following the "Older" links."""
    pages, response = [], client.get("/dashboard/logs", params=params)
    while True:
        pages.append(row_ids(response.text))
        link = re.search(r'<a href="([^"]+)" rel="next" data-testid="older"', response.text)
        if link is None:
            return pages
        response = client.get(html.unescape(link.group(1)))


def _traffic(gateway: Gateway) -> tuple[int, str]:
    """Six requests of the gateway's user, two of another user; returns the other's key id
    and one of the other user's request ids."""
    _, other_key, other_key_id = make_user_and_key(gateway.database_url, email=OTHER)
    models = ["fake-plain-text"] * 3 + ["fake-error-400-text"] * 2 + ["fake-error-500-text"]
    for model in models:
        chat(gateway.base_url, gateway.key, model)
    for _ in range(2):
        assert chat(gateway.base_url, other_key, "fake-plain-text") == 200
    wait_for(lambda: len(query(gateway.database_url, select(request_logs.c.id))) == 8)
    other = query(gateway.database_url, select(request_logs.c.request_id).where(
        request_logs.c.key_id == other_key_id))  # fmt: skip
    return other_key_id, str(other[0][0])


def test_logs_filters_show_only_matching_own_rows(gateway: Gateway) -> None:
    other_key_id, _ = _traffic(gateway)
    with signed_in(gateway.base_url, "user@example.com") as client:
        today = dt.datetime.now(dt.UTC).date()

        assert len(_ids(client)) == 6
        assert len(_ids(client, model="fake-plain-text")) == 3
        assert len(_ids(client, status="4xx")) == 2
        assert len(_ids(client, status="5xx")) == 1
        assert len(_ids(client, status="2xx")) == 3
        assert len(_ids(client, status="200")) == 3
        assert len(_ids(client, key=str(gateway.key_id))) == 6
        assert _ids(client, key=str(other_key_id)) == []
        assert len(_ids(client, **{"from": today.isoformat(), "to": today.isoformat()})) == 6
        assert _ids(client, to=(today - dt.timedelta(days=1)).isoformat()) == []
        assert (
            len(_ids(client, model="fake-plain-text", status="2xx", key=str(gateway.key_id))) == 3
        )


def test_logs_page_shows_the_request_columns(gateway: Gateway) -> None:
    chat(gateway.base_url, gateway.key, "fake-plain-text")
    with signed_in(gateway.base_url, "user@example.com") as client:
        wait_for(lambda: len(_ids(client)) == 1)

        html = client.get("/dashboard/logs").text

        for text in ("fake-plain-text", ">test<", ">fake<", "status-2xx", " ms<", "$0.0000"):
            assert text in html


def test_logs_keyset_pages_have_no_duplicates_or_gaps(gateway: Gateway) -> None:
    _, _, other_key_id = make_user_and_key(gateway.database_url, email=OTHER)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)
    rows = []
    for i in range(130):
        when = start + dt.timedelta(minutes=i)
        rows.append(log_row(gateway.user_id, gateway.key_id, when, status=500 if i % 3 else 200))
        rows.append(log_row(gateway.user_id + 1, other_key_id, when))
    insert_logs(gateway.database_url, rows)
    mine = query(gateway.database_url, select(request_logs.c.id, request_logs.c.status).where(
        request_logs.c.user_id == gateway.user_id).order_by(request_logs.c.id.desc()))  # fmt: skip
    with signed_in(gateway.base_url, "user@example.com") as client:
        for params, expected in [
            ({}, [i for i, _ in mine]),
            ({"status": "5xx"}, [i for i, s in mine if s == 500]),
        ]:
            pages = _walk_older(client, params)
            assert [i for page in pages for i in page] == expected
            assert all(len(page) == 50 for page in pages[:-1])

        last = client.get(f"/dashboard/logs?after={mine[-1][0] - 1}")
        assert row_ids(last.text) == [i for i, _ in mine[-50:]]
        assert 'data-testid="newer"' in last.text


def test_log_detail_shows_own_request_and_hides_others(gateway: Gateway) -> None:
    _, other_request = _traffic(gateway)
    mine = query(gateway.database_url, select(request_logs.c.request_id).where(
        request_logs.c.user_id == gateway.user_id, request_logs.c.status == 200))  # fmt: skip
    with signed_in(gateway.base_url, "user@example.com") as client:
        own = client.get(f"/dashboard/logs/{mine[0][0]}")
        foreign = client.get(f"/dashboard/logs/{other_request}")

        assert own.status_code == 200
        assert mine[0][0] in own.text
        assert "fake-plain-text" in own.text
        assert foreign.status_code == 404
        assert "fake" not in foreign.text.split("<main")[1].split("</main>")[0]


def test_logs_csv_streams_own_filtered_rows_with_headers(gateway: Gateway) -> None:
    _, other_request = _traffic(gateway)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    insert_logs(gateway.database_url, [
        log_row(gateway.user_id, gateway.key_id, start + dt.timedelta(seconds=i))
        for i in range(2500)
    ])  # fmt: skip
    with signed_in(gateway.base_url, "user@example.com") as client:
        everything = client.get("/dashboard/logs.csv")
        errors = client.get("/dashboard/logs.csv", params={"status": "4xx"})

        assert everything.status_code == 200
        assert everything.headers["content-type"].startswith("text/csv")
        assert everything.headers["content-disposition"].startswith("attachment; filename=")
        lines = list(csv.reader(io.StringIO(everything.text)))
        assert lines[0][:6] == ["time", "request_id", "key", "model", "provider", "status"]
        assert len(lines) == 1 + 2506
        assert other_request not in everything.text
        assert len({line[1] for line in lines[1:]}) == 2506
        error_lines = list(csv.DictReader(io.StringIO(errors.text)))
        assert [line["status"] for line in error_lines] == ["400", "400"]
        assert error_lines[0]["key"] == "test"
        assert error_lines[0]["model"] == "fake-error-400-text"


def test_logs_pages_signed_out_redirect_to_signin(gateway: Gateway) -> None:
    for path in ("/dashboard/logs", "/dashboard/logs.csv", "/dashboard/logs/req_x"):
        response = httpx.get(gateway.base_url + path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")
