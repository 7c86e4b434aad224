"""Threshold alerts: a key nearing its token quota, an account nearing an empty balance.

After each settled batch the affected keys and accounts are checked. Crossing a threshold
inserts an ``alert_states`` row — its primary key makes the alert fire once per crossing,
however many requests and processes see it — plus a dashboard notification, and posts to
the configured webhook. Falling back below a threshold (a quota raised, a top-up) deletes
the row, which re-arms the alert.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import orjson
from sqlalchemy import and_, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.billing.pricing import format_micros
from vaultgate.storage.tables import alert_states, api_keys, balances, notifications

log = logging.getLogger("vaultgate.billing")

KEY_QUOTA = "key_quota"
LOW_BALANCE = "low_balance"
WEBHOOK_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class Alert:
    """One crossing to announce."""

    kind: str
    user_id: int
    subject_id: int
    threshold: str
    message: str


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Thresholds, and where to post alerts."""

    quota_percents: tuple[int, ...]
    balance_micros: int
    webhook_url: str | None


async def _crossings(
    engine: AsyncEngine, rules: AlertRules, key_ids: set[int], user_ids: set[int]
) -> tuple[list[Alert], list[tuple[str, int, str]]]:
    """Alerts now crossed, and (kind, subject, threshold) states now clear."""
    crossed: list[Alert] = []
    clear: list[tuple[str, int, str]] = []
    async with engine.connect() as conn:
        keys = (await conn.execute(
            select(api_keys.c.id, api_keys.c.user_id, api_keys.c.name, api_keys.c.token_quota,
                   api_keys.c.tokens_used)
            .where(api_keys.c.id.in_(key_ids), api_keys.c.token_quota.is_not(None))
        )).all() if key_ids else []  # fmt: skip
        money = (await conn.execute(
            select(balances.c.user_id, balances.c.balance_micros)
            .where(balances.c.user_id.in_(user_ids))
        )).all() if user_ids and rules.balance_micros else []  # fmt: skip
    for key_id, user_id, name, quota, used in keys:
        for percent in rules.quota_percents:
            if quota and used * 100 >= quota * percent:
                crossed.append(Alert(
                    KEY_QUOTA, user_id, key_id, f"{percent}%",
                    f"Key '{name}' has used {used} of its {quota} tokens ({percent}% reached).",
                ))  # fmt: skip
            else:
                clear.append((KEY_QUOTA, key_id, f"{percent}%"))
    threshold = format_micros(rules.balance_micros)
    for user_id, balance in money:
        if balance < rules.balance_micros:
            crossed.append(Alert(
                LOW_BALANCE, user_id, user_id, threshold,
                f"Your balance is {format_micros(balance)} USD, below {threshold} USD.",
            ))  # fmt: skip
        else:
            clear.append((LOW_BALANCE, user_id, threshold))
    return crossed, clear


async def _record(engine: AsyncEngine, alert: Alert) -> bool:
    """Claim the crossing and write the notification; False if it was already claimed."""
    now = dt.datetime.now(dt.UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(alert_states).values(
                kind=alert.kind, subject_id=alert.subject_id, threshold=alert.threshold,
                crossed_at=now,
            ))  # fmt: skip
            await conn.execute(insert(notifications).values(
                user_id=alert.user_id, kind=alert.kind, subject_id=alert.subject_id,
                threshold=alert.threshold, message=alert.message, created_at=now,
            ))  # fmt: skip
    except IntegrityError:
        return False
    return True


async def _rearm(engine: AsyncEngine, states: Iterable[tuple[str, int, str]]) -> None:
    conditions = [
        and_(alert_states.c.kind == kind, alert_states.c.subject_id == subject,
             alert_states.c.threshold == threshold)
        for kind, subject, threshold in states
    ]  # fmt: skip
    if not conditions:
        return
    async with engine.begin() as conn:
        for condition in conditions:
            await conn.execute(delete(alert_states).where(condition))


async def post_webhook(session: aiohttp.ClientSession, url: str, alert: Alert) -> None:
    """Deliver one alert; failures are logged, never raised."""
    payload = {
        "type": alert.kind,
        "user_id": alert.user_id,
        "subject_id": alert.subject_id,
        "threshold": alert.threshold,
        "message": alert.message,
    }
    try:
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
        async with session.post(
            url,
            data=orjson.dumps(payload),
            timeout=timeout,
            headers={"content-type": "application/json"},
        ) as response:
            if response.status >= 300:
                log.warning("alert webhook refused", extra={"fields": {"status": response.status}})
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("alert webhook failed", extra={"fields": {"error": type(exc).__name__}})


class AlertChecker:
    """Runs the checks for settled batches and delivers what they find."""

    def __init__(
        self,
        engine: AsyncEngine,
        rules: AlertRules,
        session_factory: type[aiohttp.ClientSession] = aiohttp.ClientSession,
    ) -> None:
        self._engine = engine
        self._rules = rules
        self._session_factory = session_factory
        self._deliveries: set[asyncio.Task[None]] = set()

    async def check(self, key_ids: set[int], user_ids: set[int]) -> list[Alert]:
        """Fire the alerts newly crossed by these keys and accounts."""
        crossed, clear = await _crossings(self._engine, self._rules, key_ids, user_ids)
        await _rearm(self._engine, clear)
        fired = [alert for alert in crossed if await _record(self._engine, alert)]
        if fired and self._rules.webhook_url:
            task = asyncio.create_task(self._deliver(fired))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return fired

    async def _deliver(self, alerts: list[Alert]) -> None:
        assert self._rules.webhook_url
        async with self._session_factory() as session:
            for alert in alerts:
                await post_webhook(session, self._rules.webhook_url, alert)

    async def aclose(self) -> None:
        """Wait for deliveries in progress."""
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
