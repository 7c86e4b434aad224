"""Logs: every request of the signed-in user, filtered, keyset-paged, one in detail, as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.engine import Row
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from vaultgate.billing.pricing import format_micros
from vaultgate.bounds import parse_natural
from vaultgate.storage.tables import api_keys
from vaultgate.usage.log_search import STATUS_CLASSES, LogFilter, find_log, log_batches, log_page
from vaultgate.web.render import page
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

PAGE_SIZE = 50
STATUS_CODE = re.compile(r"[1-5][0-9][0-9]")
CSV_HEADER = (
    "time", "request_id", "key", "model", "provider", "status", "stream", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_ms", "ttft_ms",
)  # fmt: skip


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def filters_from(params: Mapping[str, str]) -> LogFilter:
    """The filter in a query string; values that do not parse are ignored."""
    status = params.get("status", "").strip().lower()
    valid_status = status in STATUS_CLASSES or bool(STATUS_CODE.fullmatch(status))
    return LogFilter(
        key_id=parse_natural(params.get("key")),
        model=params.get("model", "").strip() or None,
        status=status if valid_status else None,
        since=_day(params.get("from")),
        until=_day(params.get("to")),
    )


def filter_params(filters: LogFilter) -> dict[str, str]:
    """The query string of a filter, for links to other pages and the CSV export."""
    found = {
        "key": "" if filters.key_id is None else str(filters.key_id),
        "model": filters.model or "",
        "status": filters.status or "",
        "from": filters.since.isoformat() if filters.since else "",
        "to": filters.until.isoformat() if filters.until else "",
    }
    return {name: value for name, value in found.items() if value}


async def key_names(state: WebState, user_id: int) -> dict[int, str]:
    """The names of the user's keys (revoked ones too), by id."""
    async with state.engine.connect() as conn:
        rows = (await conn.execute(
            select(api_keys.c.id, api_keys.c.name).where(api_keys.c.user_id == user_id)
            .order_by(api_keys.c.name)
        )).all()  # fmt: skip
    return {int(key_id): str(name) for key_id, name in rows}


async def logs_page(request: Request, signed_in: PageSession) -> Response:
    """One page of the user's requests, newest first, with the filter form."""
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    filters = filters_from(request.query_params)
    result = await log_page(
        state.engine, user_id, filters,
        before=parse_natural(request.query_params.get("before")),
        after=parse_natural(request.query_params.get("after")), limit=PAGE_SIZE,
    )  # fmt: skip
    query = filter_params(filters)
    return page(request, "logs.html", {
        "rows": result.rows, "keys": await key_names(state, user_id), "filters": filters,
        "models": sorted(state.models), "status_classes": STATUS_CLASSES,
        "older": _link(query, before=result.older), "newer": _link(query, after=result.newer),
        "csv_link": "/dashboard/logs.csv" + (f"?{urlencode(query)}" if query else ""),
    }, signed_in=signed_in)  # fmt: skip


def _link(query: dict[str, str], **cursor: int | None) -> str | None:
    name, value = next(iter(cursor.items()))
    if value is None:
        return None
    return "/dashboard/logs?" + urlencode({**query, name: str(value)})


async def log_detail(request: Request, signed_in: PageSession) -> Response:
    """One request in full; another user's request is not found."""
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    row = await find_log(state.engine, user_id, str(request.path_params["request_id"]))
    if row is None:
        return page(request, "error.html", {"status": 404, "message": "No such request."},
                    signed_in=signed_in, status=404)  # fmt: skip
    keys = await key_names(state, user_id)
    return page(request, "log_detail.html", {"row": row, "key_name": keys.get(row.key_id)},
                signed_in=signed_in)  # fmt: skip


def csv_row(row: Row[Any], keys: Mapping[int, str]) -> list[object]:
    """One request as a CSV line, in the order of ``CSV_HEADER``."""
    return [
        row.created_at.isoformat(), row.request_id, keys.get(row.key_id, ""), row.model or "",
        row.provider or "", row.status, int(bool(row.stream)), row.prompt_tokens,
        row.completion_tokens, format_micros(row.charged_micros), row.latency_ms,
        "" if row.ttft_ms is None else row.ttft_ms,
    ]  # fmt: skip


async def _csv_chunks(
    state: WebState, user_id: int, filters: LogFilter, keys: Mapping[int, str]
) -> AsyncIterator[str]:
    """The CSV text, one keyset-paged batch at a time; the buffer never holds more."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    async for rows in log_batches(state.engine, user_id, filters):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(csv_row(row, keys) for row in rows)
        yield buffer.getvalue()


async def logs_csv(request: Request, signed_in: PageSession) -> Response:
    """The filtered requests as a CSV download, streamed."""
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    filters = filters_from(request.query_params)
    keys = await key_names(state, user_id)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _csv_chunks(state, user_id, filters, keys),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="vaultgate-logs-{stamp}.csv"'},
    )
