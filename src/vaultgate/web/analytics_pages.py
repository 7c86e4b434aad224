"""Analytics: requests, tokens and spend over time, per key and per model, as SVG charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from vaultgate.bounds import parse_natural
from vaultgate.usage.analytics import Totals, Unit, usage
from vaultgate.web.charts import Chart, bar_list_chart, column_chart
from vaultgate.web.logs_pages import key_names
from vaultgate.web.render import page, usd
from vaultgate.web.security import PageSession
from vaultgate.web.state import WebState

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
HOURLY_UP_TO = dt.timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Range:
    """The period shown: ``start`` up to ``end`` (exclusive), and how to bucket it."""

    start: dt.datetime
    end: dt.datetime
    days: int | None
    unit: Unit


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def range_from(params: Mapping[str, str], now: dt.datetime) -> Range:
    """A preset (``days``) or custom (``from``/``to``, whole UTC days) period."""
    since, until = _day(params.get("from")), _day(params.get("to"))
    if since and until and since <= until and (until - since).days < MAX_DAYS:
        start = dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC)
        end = dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)
        end += dt.timedelta(days=1)
        return Range(start, end, None, "hour" if end - start <= HOURLY_UP_TO else "day")
    asked = parse_natural(params.get("days"))
    days = asked if asked is not None and 0 < asked <= MAX_DAYS else DEFAULT_DAYS
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if days * dt.timedelta(days=1) <= HOURLY_UP_TO:
        return Range(end - dt.timedelta(days=days), end, days, "hour")
    end = end.replace(hour=0) + dt.timedelta(days=1)
    return Range(end - dt.timedelta(days=days), end, days, "day")


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.2g}"


def _money(value: float) -> str:
    return usd(round(value))


def _charts(by_time: Mapping[str, Totals], by_key: Mapping[str, Totals],
            by_model: Mapping[str, Totals]) -> list[Chart]:  # fmt: skip
    series = list(by_time.items())
    return [
        column_chart("requests-over-time", "Requests over time",
                     [(k, t.requests) for k, t in series], _count),
        column_chart("tokens-over-time", "Tokens over time",
                     [(k, t.tokens) for k, t in series], _count),
        column_chart("spend-over-time", "Spend over time",
                     [(k, t.spent_micros) for k, t in series], _money),
        bar_list_chart("spend-by-key", "Spend by key",
                       [(k, t.spent_micros) for k, t in by_key.items()], _money),
        bar_list_chart("spend-by-model", "Spend by model",
                       [(k, t.spent_micros) for k, t in by_model.items()], _money),
        bar_list_chart("requests-by-model", "Requests by model",
                       [(k, t.requests) for k, t in by_model.items()], _count),
    ]  # fmt: skip


async def analytics_page(request: Request, signed_in: PageSession) -> Response:
    """The signed-in user's usage over the chosen period."""
    state: WebState = request.app.state.web
    user_id = signed_in.session.user.id
    period = range_from(request.query_params, dt.datetime.now(dt.UTC))
    found = await usage(state.engine, user_id, start=period.start, end=period.end,
                        unit=period.unit)  # fmt: skip

    names = await key_names(state, user_id)
    by_key = {
        names.get(key_id, f"key {key_id}") if key_id is not None else "(no key)": totals
        for key_id, totals in found.by_key.items()
    }
    return page(request, "analytics.html", {
        "period": period, "presets": PRESETS, "total": found.total,
        "by_key": sorted(by_key.items(), key=lambda kv: -kv[1].spent_micros),
        "by_model": sorted(found.by_model.items(), key=lambda kv: -kv[1].spent_micros),
        "charts": _charts(found.by_time, by_key, found.by_model),
        "last_day": (period.end - dt.timedelta(days=1)).date(),
    }, signed_in=signed_in)  # fmt: skip
