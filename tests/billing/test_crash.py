"""The books survive a crash and a graceful stop under load, and the audit notices tampering.

A process killed mid-stream leaves the holds of its requests in flight behind: the audit
counts them as live, nothing is charged twice, and a process restarted on the database
releases them once they are older than ``VAULTGATE_STALE_HOLD_AFTER_S``. A process stopped
with SIGTERM finishes its streams and settles every one of them before it exits.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from tests.support.fake_openai import FakeOpenAI
from tests.support.money import (
    POLL_S,
    Books,
    Fleet,
    assert_audit_clean,
    books,
    burst,
    chat_body,
    quiet_books,
    read_books,
    run_audit,
    run_sql,
    settled_requests,
    start_fleet,
    wait_for_books,
    wait_settled,
)
from tests.support.server import ServerProcess
from vaultgate.billing.ledger import CHARGE
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import api_keys, balances, ledger_entries

LOAD = 100
OFFLINE_MODEL = "offline-small-text"
TOKEN_DELAY_MS = "60"
STALE_AFTER_S = "2"
SIGNAL_WAIT_S = 30.0
STOP_TIMEOUT_S = 40.0
RELEASE_WAIT_S = 20.0
AFTER_RESTART = 5

Outcome = httpx.Response | BaseException


def _slow_streams() -> list[dict[str, Any]]:
    """Streams of 4 to 53 tokens: some finish early, some are mid-way at any moment."""
    return [
        chat_body(stream=True, model=OFFLINE_MODEL, max_tokens=4 + index % 50,
                  text=f"request number {index}")
        for index in range(LOAD)
    ]  # fmt: skip


async def _wait_books(fleet: Fleet, ready: Callable[[Books], bool]) -> Books:
    engine = create_engine(fleet.database_url)
    try:
        deadline = time.monotonic() + SIGNAL_WAIT_S
        while True:
            snapshot = await read_books(engine, fleet.user_id, fleet.key_id)
            if ready(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"load never reached the signal point: {snapshot}")
            await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()


async def _load_then_signal(
    fleet: Fleet, sig: int, ready: Callable[[Books], bool]
) -> tuple[list[Outcome], Books]:
    """Start LOAD slow streams, send ``sig`` once ``ready``, and collect what clients got."""
    server = fleet.servers[0]
    limits = httpx.Limits(max_connections=LOAD + 10, max_keepalive_connections=0)
    headers = {"authorization": f"Bearer {fleet.key}"}
    async with httpx.AsyncClient(limits=limits, timeout=STOP_TIMEOUT_S) as client:
        calls = [
            asyncio.create_task(
                client.post(server.base_url + "/v1/chat/completions", json=body, headers=headers)
            )
            for body in _slow_streams()
        ]
        try:
            at_signal = await _wait_books(fleet, ready)
            await asyncio.to_thread(server.stop, sig, STOP_TIMEOUT_S)
            outcomes = await asyncio.wait_for(
                asyncio.gather(*calls, return_exceptions=True), STOP_TIMEOUT_S
            )
        finally:
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
    return list(outcomes), at_signal


def _mid_stream(snapshot: Books) -> bool:
    """Some requests settled, many still holding."""
    return snapshot.request_logs >= 10 and snapshot.holds >= 20


def _kill_under_load(tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI) -> Fleet:
    fleet = start_fleet(
        tmp_path, database_url, fake_upstream.base_url,
        env={"VAULTGATE_OFFLINE_TOKEN_DELAY_MS": TOKEN_DELAY_MS},
    )  # fmt: skip
    try:
        outcomes, _ = asyncio.run(_load_then_signal(fleet, signal.SIGKILL, _mid_stream))
    finally:
        fleet.stop()
    assert any(isinstance(outcome, httpx.TransportError) for outcome in outcomes)
    return fleet


def _restart(fleet: Fleet, tmp_path: Path, env: dict[str, str] | None = None) -> ServerProcess:
    settings = {**fleet.servers[0].env, **(env or {})}
    settings.pop("VAULTGATE_OFFLINE_TOKEN_DELAY_MS", None)
    return ServerProcess(tmp_path / "data", fleet.database_url, env=settings).start()


def _assert_never_charged_twice(snapshot: Books) -> None:
    assert snapshot.charges == snapshot.charge_ids
    assert snapshot.balance >= 0


def test_gateway_killed_under_load_leaves_live_holds_and_clean_books(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    fleet = _kill_under_load(tmp_path, database_url, fake_upstream)
    after_kill = quiet_books(database_url, fleet.user_id, fleet.key_id)
    assert after_kill.holds > 0
    assert after_kill.tokens_reserved > 0
    _assert_never_charged_twice(after_kill)
    assert after_kill.balance + after_kill.held_micros == after_kill.ledger_sum
    assert_audit_clean(database_url, tmp_path)

    restarted = _restart(fleet, tmp_path)
    try:
        answers = burst(
            [restarted.base_url], fleet.key,
            [chat_body(model=OFFLINE_MODEL) for _ in range(AFTER_RESTART)],
        )  # fmt: skip
        assert [answer.status_code for answer in answers] == [200] * AFTER_RESTART
        later = wait_for_books(
            database_url, fleet.user_id, fleet.key_id,
            lambda b: b.request_logs == after_kill.request_logs + AFTER_RESTART,
        )  # fmt: skip
    finally:
        restarted.stop()

    # The orphans stay held (they are not yet stale) and the books still balance.
    assert later.holds == after_kill.holds
    assert later.charges == after_kill.charges + AFTER_RESTART
    _assert_never_charged_twice(later)
    assert later.balance + later.held_micros == later.ledger_sum
    assert_audit_clean(database_url, tmp_path)


def test_restart_after_kill_releases_orphaned_holds_once_stale(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    fleet = _kill_under_load(tmp_path, database_url, fake_upstream)
    after_kill = quiet_books(database_url, fleet.user_id, fleet.key_id)
    assert after_kill.holds > 0

    restarted = _restart(fleet, tmp_path, {"VAULTGATE_STALE_HOLD_AFTER_S": STALE_AFTER_S})
    try:
        released = wait_for_books(
            database_url, fleet.user_id, fleet.key_id,
            lambda b: b.holds == 0, timeout=RELEASE_WAIT_S,
        )  # fmt: skip
    finally:
        restarted.stop()

    assert released.balance == released.ledger_sum
    assert released.balance == after_kill.balance + after_kill.held_micros
    assert released.tokens_reserved == 0
    assert released.charges == after_kill.charges
    _assert_never_charged_twice(released)
    assert_audit_clean(database_url, tmp_path)


def test_sigterm_under_load_settles_every_answered_request(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    fleet = start_fleet(
        tmp_path, database_url, fake_upstream.base_url,
        env={"VAULTGATE_OFFLINE_TOKEN_DELAY_MS": TOKEN_DELAY_MS},
    )  # fmt: skip
    try:
        # Signal once every request is admitted and many are still streaming.
        outcomes, at_signal = asyncio.run(
            _load_then_signal(
                fleet, signal.SIGTERM,
                lambda b: b.holds + b.request_logs >= LOAD and b.holds >= 20,
            )
        )  # fmt: skip
    finally:
        fleet.stop()
    assert at_signal.holds >= 20

    answered = [outcome for outcome in outcomes if isinstance(outcome, httpx.Response)]
    assert len(answered) == LOAD, [o for o in outcomes if not isinstance(o, httpx.Response)]
    settled = settled_requests(database_url)
    for response in answered:
        assert response.status_code == 200, response.text
        assert response.text.endswith("data: [DONE]\n\n")
        request_id = response.headers["x-request-id"]
        assert len(settled.logs.get(request_id, [])) == 1, request_id
        [(status, charged)] = settled.logs[request_id]
        assert status == 200
        assert charged > 0
        assert settled.charges.get(request_id) == [charged]

    final = books(database_url, fleet.user_id, fleet.key_id)
    assert final.holds == 0
    assert final.tokens_reserved == 0
    assert final.charges == LOAD
    assert final.balance == final.ledger_sum
    assert_audit_clean(database_url, tmp_path)


@pytest.mark.parametrize("tamper", ["balance", "ledger-charge", "reserved-tokens"])
def test_audit_after_tampering_exits_one_naming_the_mismatch(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI, tamper: str
) -> None:
    fleet = start_fleet(tmp_path, database_url, fake_upstream.base_url)
    try:
        answers = burst(fleet.base_urls, fleet.key, [chat_body() for _ in range(3)])
        assert [answer.status_code for answer in answers] == [200] * 3
        wait_settled(fleet, logs=3)
    finally:
        fleet.stop()
    assert_audit_clean(database_url, tmp_path)

    expected = _tamper(tamper, fleet)
    result = run_audit(database_url, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "ledger audit clean" not in result.stdout
    mismatches = [line for line in result.stdout.splitlines() if line.startswith("MISMATCH: ")]
    for words in expected:
        assert any(words in line for line in mismatches), (words, result.stdout)


def _tamper(kind: str, fleet: Fleet) -> list[str]:
    """Corrupt the books one way; the words the audit must print about it."""
    user = f"user {fleet.user_id}: "
    if kind == "balance":
        run_sql(
            fleet.database_url,
            update(balances).where(balances.c.user_id == fleet.user_id)
            .values(balance_micros=balances.c.balance_micros + 1),
        )  # fmt: skip
        return [user + "balance ", "!= ledger sum"]
    if kind == "ledger-charge":
        request_id = next(iter(settled_requests(fleet.database_url).charges))
        run_sql(
            fleet.database_url,
            delete(ledger_entries).where(
                ledger_entries.c.kind == CHARGE, ledger_entries.c.request_id == request_id
            ),
        )
        return [f"request {request_id}: logged as charged but no ledger charge", user]
    run_sql(
        fleet.database_url,
        update(api_keys).where(api_keys.c.id == fleet.key_id).values(tokens_reserved=7),
    )
    return [f"key {fleet.key_id}: 7 tokens reserved but holds total 0"]
