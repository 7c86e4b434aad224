"""A dated price change in a running app: a stream admitted before 00:00 UTC and still
running after it is held and charged at the prices it was admitted with; the next request
pays the new ones. The app runs in process on an injected clock, driven through ASGI."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tests.gateway.helpers import sqlite_url, token_cost
from tests.support.fake_clock import FakeClock
from tests.support.server import make_user_and_key
from vaultgate.app import create_app
from vaultgate.config import Settings
from vaultgate.gateway.hot_path import HotPath
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import balances, ledger_entries, request_logs, reservations

pytestmark = pytest.mark.anyio

CONFIG = """
[[models]]
id = "dated-offline-text"
provider = "offline"
upstream = "offline-small"
pricing = { input = "1", output = "2" }

[[models.price_changes]]
from = 2027-01-01
input = "10"
output = "20"
"""
MODEL = "dated-offline-text"
EVE = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
OLD = {"input_per_m": 1_000_000, "cached_input_per_m": 1_000_000, "output_per_m": 2_000_000}
NEW = {"input_per_m": 10_000_000, "cached_input_per_m": 10_000_000, "output_per_m": 20_000_000}
CREDIT = 100_000_000
WAKE_STEPS = 100


@dataclass
class Exchange:
    """What the app sent back for one request."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)


async def call(
    app: HotPath,
    body: dict[str, Any],
    key: str,
    on_chunk: Callable[[int], Awaitable[None]] | None = None,
) -> Exchange:
    """POST ``body`` to /v1/chat/completions over ASGI; ``on_chunk`` runs on each body part,
    with the stream paused until it returns."""
    exchange = Exchange()
    raw = orjson.dumps(body)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "headers": [
            (b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
    }  # fmt: skip
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Future()  # the client never leaves; cancelled when the answer ends
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
            exchange.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message.get("body"):
            exchange.chunks.append(message["body"])
            if on_chunk is not None:
                await on_chunk(len(exchange.chunks))

    await app(scope, receive, send)
    return exchange


async def _settled(database_url: str, request_ids: list[str], user_id: int) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            logs = select(request_logs).where(request_logs.c.request_id.in_(request_ids))
            charges = select(ledger_entries).where(ledger_entries.c.request_id.in_(request_ids))
            balance = select(balances.c.balance_micros).where(balances.c.user_id == user_id)
            return {
                "logs": {r["request_id"]: r for r in (await conn.execute(logs)).mappings()},
                "charges": {r["request_id"]: r for r in (await conn.execute(charges)).mappings()},
                "balance": await conn.scalar(balance),
                "holds": (await conn.execute(select(reservations))).all(),
            }
    finally:
        await engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    """The app runs on asyncio."""
    return "asyncio"


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Settings, str, int]:
    """Settings for an in-process app with the dated model, and a key with credit."""
    url = sqlite_url(tmp_path)
    config = tmp_path / "operator.toml"
    config.write_text(CONFIG)
    user, key, _ = make_user_and_key(url, credit_micros=CREDIT)
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, config=config,
        offline_token_delay_ms=0, offline_first_token_delay_ms=0,
    )  # fmt: skip
    return settings, key, user.id


async def test_price_switch_stream_across_midnight_charged_at_admission_prices(
    prepared: tuple[Settings, str, int],
) -> None:
    settings, key, user_id = prepared
    clock = FakeClock(EVE)
    app = create_app(settings, environ={}, clock=clock)
    models = app.state.gateway.registry.models
    admitted = models[MODEL]
    after_switch: list[int] = []

    async def midnight_mid_stream(count: int) -> None:
        if count == 1:
            clock.move_to(MIDNIGHT)
            for _ in range(WAKE_STEPS):
                if models[MODEL] is not admitted:
                    break
                await asyncio.sleep(0)
            assert models[MODEL].pricing.input_per_m == NEW["input_per_m"]
        else:
            after_switch.append(count)

    async with app.app.router.lifespan_context(app.app):
        assert models[MODEL].pricing.input_per_m == OLD["input_per_m"]
        streamed = await call(
            app, {"model": MODEL, "messages": [{"role": "user", "content": "across"}],
                  "stream": True}, key, midnight_mid_stream,
        )  # fmt: skip
        later = await call(
            app, {"model": MODEL, "messages": [{"role": "user", "content": "after"}]}, key
        )
    ids = [streamed.headers["x-request-id"], later.headers["x-request-id"]]
    settled = await _settled(settings.resolved_database_url(), ids, user_id)

    assert (streamed.status, later.status) == (200, 200)
    assert len(after_switch) > 3, "the stream did not run on after the switch"
    costs = []
    for request_id, prices in zip(ids, (OLD, NEW), strict=True):
        row, charge = settled["logs"][request_id], settled["charges"][request_id]
        cost = token_cost(
            row["prompt_tokens"], row["completion_tokens"],
            prices["input_per_m"], prices["output_per_m"],
        )  # fmt: skip
        assert row["completion_tokens"] > 0
        assert row["cost_micros"] == row["charged_micros"] == cost
        assert charge["prices"] == prices
        assert charge["amount_micros"] == -cost
        costs.append(cost)
    assert settled["balance"] == CREDIT - sum(costs)
    assert settled["holds"] == []
