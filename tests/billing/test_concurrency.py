"""Exact admission under concurrency: a burst of requests against a balance, a token quota
or a request rate that covers only part of it admits exactly that part — in one process,
and across three processes sharing PostgreSQL and Redis — and the books stay balanced."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.gateway.helpers import assert_openai_error
from tests.support.fake_openai import FakeOpenAI
from tests.support.money import (
    assert_audit_clean,
    burst,
    chat_body,
    exact_cost,
    exact_usage,
    start_fleet,
    wait_settled,
)
from vaultgate.storage.database import is_sqlite

BURST = 200
COVERED = 50
RPM_LIMIT = 20
RPM_BURST = 60
STARTING_CREDIT = 100_000_000


@pytest.fixture(params=[1, 3], ids=["one-process", "three-processes"])
def processes(request: pytest.FixtureRequest, database_url: str) -> int:
    """How many VaultGate processes share the database (three only on PostgreSQL)."""
    count = int(request.param)
    if count > 1 and is_sqlite(database_url):
        pytest.skip("several processes sharing a database is a PostgreSQL deployment")
    return count


def _mixed_bodies(count: int) -> list[dict[str, object]]:
    """Half streamed, half not: both paths hold and settle."""
    return [chat_body(stream=index % 2 == 1) for index in range(count)]


def _assert_answered(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.endswith("data: [DONE]\n\n")
    else:
        assert response.json()["usage"]["total_tokens"] == exact_usage().total_tokens


def test_balance_burst_covering_fifty_admits_exactly_fifty(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI, processes: int
) -> None:
    cost = exact_cost()
    fleet = start_fleet(
        tmp_path, database_url, fake_upstream.base_url,
        processes=processes, credit_micros=COVERED * cost,
    )  # fmt: skip
    try:
        responses = burst(fleet.base_urls, fleet.key, _mixed_bodies(BURST))
        settled = wait_settled(fleet, logs=BURST)
    finally:
        fleet.stop()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: COVERED, 402: BURST - COVERED}
    for response in responses:
        if response.status_code == 402:
            assert assert_openai_error(response, 402)["code"] == "insufficient_balance"
        else:
            _assert_answered(response)

    assert settled.balance == 0
    assert settled.ledger_sum == 0
    assert settled.request_logs == BURST
    assert (settled.charges, settled.charge_ids) == (COVERED, COVERED)
    assert settled.charged_micros == COVERED * cost
    assert settled.tokens_used == COVERED * exact_usage().total_tokens
    assert settled.tokens_reserved == 0
    assert_audit_clean(database_url, tmp_path)


def test_token_quota_burst_covering_fifty_admits_exactly_fifty(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI, processes: int
) -> None:
    quota = COVERED * exact_usage().total_tokens
    fleet = start_fleet(
        tmp_path, database_url, fake_upstream.base_url,
        processes=processes, credit_micros=STARTING_CREDIT, key_options={"token_quota": quota},
    )  # fmt: skip
    try:
        responses = burst(fleet.base_urls, fleet.key, _mixed_bodies(BURST))
        settled = wait_settled(fleet, logs=BURST)
    finally:
        fleet.stop()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: COVERED, 429: BURST - COVERED}
    for response in responses:
        if response.status_code == 429:
            assert assert_openai_error(response, 429)["code"] == "insufficient_quota"
        else:
            _assert_answered(response)

    assert settled.token_quota == quota
    assert settled.tokens_used == quota
    assert settled.tokens_reserved == 0
    assert settled.balance == STARTING_CREDIT - COVERED * exact_cost()
    assert (settled.charges, settled.charge_ids) == (COVERED, COVERED)
    assert_audit_clean(database_url, tmp_path)


def test_rpm_limit_burst_admits_exactly_the_limit(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI, processes: int
) -> None:
    fleet = start_fleet(
        tmp_path, database_url, fake_upstream.base_url,
        processes=processes, credit_micros=STARTING_CREDIT,
        key_options={"rpm_limit": RPM_LIMIT},
    )  # fmt: skip
    try:
        responses = burst(fleet.base_urls, fleet.key, _mixed_bodies(RPM_BURST))
        settled = wait_settled(fleet, logs=RPM_BURST)
    finally:
        fleet.stop()

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: RPM_LIMIT, 429: RPM_BURST - RPM_LIMIT}
    remaining = []
    for response in responses:
        headers = response.headers
        assert headers["x-ratelimit-limit-requests"] == str(RPM_LIMIT)
        assert headers["x-ratelimit-reset-requests"]
        if response.status_code == 200:
            _assert_answered(response)
            remaining.append(int(headers["x-ratelimit-remaining-requests"]))
            continue
        assert assert_openai_error(response, 429)["code"] == "rate_limit_exceeded"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert 1 <= int(headers["retry-after"]) <= 60
    # Every admitted request saw a different count: the window was never over-admitted.
    assert sorted(remaining) == list(range(RPM_LIMIT))

    assert (settled.charges, settled.charge_ids) == (RPM_LIMIT, RPM_LIMIT)
    assert settled.balance == STARTING_CREDIT - RPM_LIMIT * exact_cost()
    assert_audit_clean(database_url, tmp_path)
