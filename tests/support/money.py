"""Helpers for the money-path tests: a priced model whose upstream reports exactly the usage
its hold assumed, fleets of VaultGate processes on one database, bursts of concurrent
requests, settlement waits, database snapshots and the ledger audit CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.server import ServerProcess, make_user_and_key
from vaultgate.billing.ledger import CHARGE
from vaultgate.billing.pricing import Pricing, parse_price
from vaultgate.gateway.admission import prompt_token_bound
from vaultgate.providers.base import Usage
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import api_keys, balances, ledger_entries, request_logs, reservations

T = TypeVar("T")

FAKE_UPSTREAM_KEY = "sk-fake-upstream-secret-0123456789"
EXACT_MODEL = "fake-exact-text"
# Prices that do not divide evenly, so holds and charges must round the same way.
PRICE_IN = "1.25"
PRICE_OUT = "2.50"
MAX_TOKENS = 16
REDIS_URL = "redis://127.0.0.1:6379/12"
UNLIMITED_RPM = 1_000_000
SETTLE_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
POLL_S = 0.05
QUIET_S = 0.5
QUIET_TIMEOUT_S = 10.0


def chat_body(
    *,
    stream: bool = False,
    model: str = EXACT_MODEL,
    max_tokens: int = MAX_TOKENS,
    text: str = "Say hello to the ledger.",
) -> dict[str, Any]:
    """A small chat request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
    return body


def exact_usage() -> Usage:
    """The usage whose cost equals the hold of ``chat_body()``: both at their bounds."""
    return Usage(prompt_tokens=prompt_token_bound(chat_body()), completion_tokens=MAX_TOKENS)


def exact_pricing() -> Pricing:
    """The prices of EXACT_MODEL, read as the catalog reads them."""
    return Pricing(
        input_per_m=parse_price(PRICE_IN, where="test"),
        output_per_m=parse_price(PRICE_OUT, where="test"),
    )


def exact_cost() -> int:
    """Micros one EXACT_MODEL request holds and is charged."""
    return exact_pricing().token_cost(exact_usage())


def write_config(path: Path, fake_base_url: str) -> Path:
    """An operator TOML with EXACT_MODEL, whose upstream reports the bound usage."""
    usage = exact_usage()
    path.write_text(
        "\n".join(
            [
                "[providers.fake]",
                'format = "openai"',
                f'base_url = "{fake_base_url}"',
                'api_key_env = "FAKE_UPSTREAM_KEY"',
                "",
                "[[models]]",
                f'id = "{EXACT_MODEL}"',
                'provider = "fake"',
                f'upstream = "usage-{usage.prompt_tokens}-{usage.completion_tokens}"',
                f'pricing = {{ input = "{PRICE_IN}", output = "{PRICE_OUT}" }}',
                "",
            ]
        )
    )
    return path


def flush_redis() -> None:
    """Empty the Redis database the multi-process tests share their limits through."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class Fleet:
    """VaultGate processes sharing one database, and the one key they all serve."""

    servers: list[ServerProcess]
    key: str
    key_id: int
    user_id: int
    database_url: str

    @property
    def base_urls(self) -> list[str]:
        """Root URL of each process."""
        return [server.base_url for server in self.servers]

    def stop(self) -> None:
        """Stop every process gracefully."""
        for server in self.servers:
            server.stop()


def start_fleet(
    tmp_path: Path,
    database_url: str,
    fake_base_url: str,
    *,
    processes: int = 1,
    credit_micros: int = 100_000_000,
    key_options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Fleet:
    """One user with one key, and ``processes`` servers; Redis limits when more than one."""
    config = write_config(tmp_path / "vaultgate.toml", fake_base_url)
    options: dict[str, Any] = {"rpm_limit": UNLIMITED_RPM, **(key_options or {})}
    user, key, key_id = make_user_and_key(database_url, credit_micros=credit_micros, **options)
    shared = {"VAULTGATE_CONFIG": str(config), "FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY}
    if processes > 1:
        flush_redis()
        shared["VAULTGATE_REDIS_URL"] = REDIS_URL
    shared.update(env or {})
    data_dir = tmp_path / "data"
    servers = [ServerProcess(data_dir, database_url, env=shared) for _ in range(processes)]
    with ThreadPoolExecutor(processes) as pool:
        started = [pool.submit(server.start) for server in servers]
    failures = [error for future in started if (error := future.exception()) is not None]
    if failures:
        for server in servers:
            server.stop()
        raise failures[0]
    return Fleet(servers, key, key_id, user.id, database_url)


def burst(
    base_urls: Sequence[str], key: str, bodies: Sequence[dict[str, Any]]
) -> list[httpx.Response]:
    """Send every body at once, round-robin over ``base_urls``; the responses, in order."""
    return asyncio.run(_burst(base_urls, key, bodies))


async def _burst(
    base_urls: Sequence[str], key: str, bodies: Sequence[dict[str, Any]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies) + 10, max_keepalive_connections=0)
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        return await asyncio.gather(
            *(
                client.post(
                    base_urls[index % len(base_urls)] + "/v1/chat/completions",
                    json=body,
                    headers=headers,
                )
                for index, body in enumerate(bodies)
            )
        )


@dataclass(frozen=True)
class Books:
    """What the database says about one account and one key."""

    balance: int
    ledger_sum: int
    holds: int
    held_micros: int
    request_logs: int
    charges: int
    charge_ids: int
    charged_micros: int
    tokens_used: int
    tokens_reserved: int
    token_quota: int | None


async def read_books(engine: AsyncEngine, user_id: int, key_id: int) -> Books:
    """A snapshot of the account's and key's money and tokens.

    Everything is read by ONE statement of scalar subqueries: a live server keeps
    settling batches, and separate SELECTs would each see a different committed state
    (a balance from before a batch beside a ledger from after it).
    """
    ledger = ledger_entries.c
    charges = ledger.kind == CHARGE
    mine = ledger.user_id == user_id
    query = select(
        select(balances.c.balance_micros).where(balances.c.user_id == user_id)
        .scalar_subquery().label("balance"),
        select(func.coalesce(func.sum(ledger.amount_micros), 0)).where(mine)
        .scalar_subquery().label("ledger_sum"),
        select(func.count()).select_from(reservations).where(reservations.c.user_id == user_id)
        .scalar_subquery().label("holds"),
        select(func.coalesce(func.sum(reservations.c.amount_micros), 0))
        .where(reservations.c.user_id == user_id).scalar_subquery().label("held"),
        select(func.count()).select_from(request_logs).scalar_subquery().label("logs"),
        select(func.count()).select_from(ledger_entries).where(mine, charges)
        .scalar_subquery().label("charges"),
        select(func.count(func.distinct(ledger.request_id))).where(mine, charges)
        .scalar_subquery().label("charge_ids"),
        select(func.coalesce(func.sum(-ledger.amount_micros), 0)).where(mine, charges)
        .scalar_subquery().label("charged"),
        select(api_keys.c.tokens_used).where(api_keys.c.id == key_id)
        .scalar_subquery().label("tokens_used"),
        select(api_keys.c.tokens_reserved).where(api_keys.c.id == key_id)
        .scalar_subquery().label("tokens_reserved"),
        select(api_keys.c.token_quota).where(api_keys.c.id == key_id)
        .scalar_subquery().label("token_quota"),
    )  # fmt: skip
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return Books(
        balance=int(row.balance or 0), ledger_sum=int(row.ledger_sum or 0),
        holds=int(row.holds), held_micros=int(row.held), request_logs=int(row.logs or 0),
        charges=int(row.charges), charge_ids=int(row.charge_ids),
        charged_micros=int(row.charged), tokens_used=int(row.tokens_used),
        tokens_reserved=int(row.tokens_reserved), token_quota=row.token_quota,
    )  # fmt: skip


def books(database_url: str, user_id: int, key_id: int) -> Books:
    """``read_books`` from synchronous test code."""
    return asyncio.run(_with_engine(database_url, lambda e: read_books(e, user_id, key_id)))


def wait_for_books(
    database_url: str,
    user_id: int,
    key_id: int,
    done: Callable[[Books], bool],
    *,
    timeout: float = SETTLE_TIMEOUT_S,
) -> Books:
    """Poll the books until ``done`` holds; AssertionError with the last snapshot if not."""

    async def poll(engine: AsyncEngine) -> Books:
        deadline = time.monotonic() + timeout
        while True:
            snapshot = await read_books(engine, user_id, key_id)
            if done(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"books did not settle within {timeout}s: {snapshot}")
            await asyncio.sleep(POLL_S)

    return asyncio.run(_with_engine(database_url, poll))


def quiet_books(database_url: str, user_id: int, key_id: int) -> Books:
    """The books once they stop changing: statements a killed process sent before it died
    still commit on the database server after its death."""

    async def poll(engine: AsyncEngine) -> Books:
        deadline = time.monotonic() + QUIET_TIMEOUT_S
        previous = await read_books(engine, user_id, key_id)
        while True:
            await asyncio.sleep(QUIET_S)
            snapshot = await read_books(engine, user_id, key_id)
            if snapshot == previous:
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"books kept changing for {QUIET_TIMEOUT_S}s: {snapshot}")
            previous = snapshot

    return asyncio.run(_with_engine(database_url, poll))


def wait_settled(fleet: Fleet, *, logs: int, timeout: float = SETTLE_TIMEOUT_S) -> Books:
    """Wait until no hold is live and ``logs`` request-log rows exist."""
    return wait_for_books(
        fleet.database_url, fleet.user_id, fleet.key_id,
        lambda b: b.holds == 0 and b.request_logs >= logs, timeout=timeout,
    )  # fmt: skip


async def _with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


def run_sql(database_url: str, statement: Any) -> None:
    """Execute one statement in its own transaction (to tamper with the books)."""

    async def run(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(statement)

    asyncio.run(_with_engine(database_url, run))


def run_audit(database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``vaultgate ledger audit`` against ``database_url``, as an operator runs it."""
    env = {
        **os.environ,
        "VAULTGATE_DATABASE_URL": database_url,
        "VAULTGATE_DATA_DIR": str(tmp_path / "audit-data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "vaultgate", "ledger", "audit"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def assert_audit_clean(database_url: str, tmp_path: Path) -> None:
    """The audit CLI exits 0 and says so."""
    result = run_audit(database_url, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger audit clean" in result.stdout


@dataclass(frozen=True)
class Settled:
    """Per request id: its request-log rows (status, charged) and its ledger charges."""

    logs: dict[str, list[tuple[int, int]]]
    charges: dict[str, list[int]]


def settled_requests(database_url: str) -> Settled:
    """Every request-log row and every ledger charge, by request id."""

    async def read(engine: AsyncEngine) -> Settled:
        logs: dict[str, list[tuple[int, int]]] = {}
        charges: dict[str, list[int]] = {}
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(request_logs.c.request_id, request_logs.c.status,
                       request_logs.c.charged_micros)
            )  # fmt: skip
            for request_id, status, charged in rows:
                logs.setdefault(request_id, []).append((int(status), int(charged)))
            ledger = await conn.execute(
                select(ledger_entries.c.request_id, ledger_entries.c.amount_micros)
                .where(ledger_entries.c.kind == CHARGE)
            )  # fmt: skip
            for request_id, amount in ledger:
                charges.setdefault(request_id, []).append(-int(amount))
        return Settled(logs, charges)

    return asyncio.run(_with_engine(database_url, read))
