"""GET /metrics on a running gateway: after real requests the exposition parses strictly,
counters carry the right values and labels, histograms agree with the request log, client
model names never become labels, and the token guard holds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import FAKE_UPSTREAM_KEY, Gateway, operator_config
from tests.gateway.helpers import assert_openai_error, fake_cost, new_key, start_with_config
from tests.support.fake_openai import FakeOpenAI
from tests.support.prometheus_text import Scrape, parse_exposition
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import request_logs

USER = [{"role": "user", "content": "count this request"}]
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
CACHED_MODEL = """
[[models]]
id = "fake-cached-text"
provider = "fake"
upstream = "cached"
pricing = { input = "1.00", cached_input = "0.50", output = "2.00" }
"""
# The fake's "cached" usage: 120 prompt tokens (100 cached), 37 completion tokens, priced
# 20 x 1.00 + 100 x 0.50 + 37 x 2.00 per million.
CACHED_COST = 144
FAKE_IMAGE_256 = 10_000
ROOMY_RPM = 1_000_000
LOG_WAIT_S = 5.0


@pytest.fixture(scope="module")
def metered(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    """A gateway of this module alone; one failure opens a breaker, with no second round."""
    running = start_with_config(
        tmp_path_factory.mktemp("metrics"),
        operator_config(fake_upstream.base_url) + CACHED_MODEL,
        extra_env={
            "FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY,
            "VAULTGATE_BREAKER_FAILURE_THRESHOLD": "1",
            "VAULTGATE_RETRY_MAX_ROUNDS": "1",
        },
    )
    key, key_id, user_id = new_key(running.database_url, rpm_limit=ROOMY_RPM)
    yield dataclasses.replace(running, key=key, key_id=key_id, user_id=user_id)
    running.server.stop()


def _scrape(gateway: Gateway) -> Scrape:
    response = httpx.get(gateway.base_url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse_exposition(response.text)


def _delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def _chat(gateway: Gateway, key: str | None = None, **body: Any) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"messages": USER, **body},
        headers={"Authorization": f"Bearer {key or gateway.key}"},
        timeout=30,
    )


def test_metrics_chat_requests_counted_with_tokens_spend_and_attempts(
    metered: Gateway,
) -> None:
    before = _scrape(metered)
    for _ in range(2):
        assert _chat(metered, model="fake-plain-text").status_code == 200
    streamed = _chat(
        metered, model="fake-plain-text", stream=True, stream_options={"include_usage": True}
    )
    assert streamed.status_code == 200
    assert _chat(metered, model="fake-cached-text").status_code == 200
    after = _scrape(metered)

    plain = {"model": "fake-plain-text", "provider": "fake"}
    cached = {"model": "fake-cached-text", "provider": "fake"}
    assert _delta(
        before, after, "vaultgate_requests_total", endpoint="chat", status_class="2xx", **plain
    ) == 3  # fmt: skip
    assert _delta(before, after, "vaultgate_prompt_tokens_total", **plain) == 3 * 11
    assert _delta(before, after, "vaultgate_completion_tokens_total", **plain) == 3 * 6
    assert _delta(before, after, "vaultgate_cached_tokens_total", **plain) == 0
    assert _delta(before, after, "vaultgate_spend_micros_total", **plain) == 3 * fake_cost(11, 6)
    assert _delta(before, after, "vaultgate_prompt_tokens_total", **cached) == 120
    assert _delta(before, after, "vaultgate_cached_tokens_total", **cached) == 100
    assert _delta(before, after, "vaultgate_completion_tokens_total", **cached) == 37
    assert _delta(before, after, "vaultgate_spend_micros_total", **cached) == CACHED_COST
    attempts = {"endpoint": "chat", "model": "fake-plain-text"}
    assert _delta(before, after, "vaultgate_upstream_attempts_total", **attempts) == 3
    assert _delta(before, after, "vaultgate_upstream_failovers_total", **attempts) == 0
    spend = ("vaultgate_spend_micros_total", frozenset(cached.items()))
    assert after.raw[spend].isdigit()
    assert after.types["vaultgate_spend_micros_total"] == "counter"


def _log_totals(database_url: str, *, streamed_only: bool, column: Any) -> tuple[int, int]:
    """How many chat rows, and the sum of ``column`` over them."""

    async def query() -> tuple[int, int]:
        engine = create_engine(database_url)
        condition = request_logs.c.endpoint == "chat"
        if streamed_only:
            condition &= request_logs.c.stream.is_(True) & column.is_not(None)
        statement = select(func.count(), func.coalesce(func.sum(column), 0)).where(condition)
        try:
            async with engine.connect() as conn:
                count, total = (await conn.execute(statement)).one()
                return int(count), int(total)
        finally:
            await engine.dispose()

    return asyncio.run(query())


def _wait_for_log_count(database_url: str, count: int) -> None:
    deadline = time.monotonic() + LOG_WAIT_S
    while _log_totals(database_url, streamed_only=False, column=request_logs.c.latency_ms)[0] < (
        count
    ):
        assert time.monotonic() < deadline, "request-log rows did not arrive"
        time.sleep(0.05)


def _assert_well_formed(histogram: Any) -> None:
    bounds = [le for le, _ in histogram.buckets]
    counts = [count for _, count in histogram.buckets]
    assert bounds == sorted(bounds)
    assert bounds[-1] == float("inf")
    assert counts == sorted(counts), "buckets are not cumulative"
    assert counts[-1] == histogram.count


def test_metrics_histograms_cumulative_and_match_request_log(metered: Gateway) -> None:
    assert _chat(metered, model="fake-plain-text").status_code == 200
    assert _chat(metered, model="fake-plain-text", stream=True).status_code == 200

    scrape = _scrape(metered)

    latency = scrape.histograms("vaultgate_request_duration_seconds")
    ttft = scrape.histograms("vaultgate_time_to_first_token_seconds")
    chat = frozenset({("endpoint", "chat")})
    for histogram in (*latency.values(), *ttft.values()):
        _assert_well_formed(histogram)
    assert scrape.types["vaultgate_request_duration_seconds"] == "histogram"
    assert latency[chat].count is not None
    _wait_for_log_count(metered.database_url, int(latency[chat].count))
    rows, latency_ms = _log_totals(
        metered.database_url, streamed_only=False, column=request_logs.c.latency_ms
    )
    streamed, ttft_ms = _log_totals(
        metered.database_url, streamed_only=True, column=request_logs.c.ttft_ms
    )
    assert (latency[chat].count, round(latency[chat].sum * 1000)) == (rows, latency_ms)
    assert (ttft[chat].count, round(ttft[chat].sum * 1000)) == (streamed, ttft_ms)


def test_metrics_unknown_model_name_adds_no_label(metered: Gateway) -> None:
    invented = f"invented-{uuid.uuid4().hex}-text"
    injected = 'x"} 1\nvaultgate_requests_total{model="y'
    assert_openai_error(_chat(metered, model="first-invented-text"), 404)
    before = _scrape(metered)

    for name in (invented, injected):
        assert_openai_error(_chat(metered, model=name), 404)
    after = _scrape(metered)

    labels = {"endpoint": "chat", "model": "unknown", "provider": "none", "status_class": "4xx"}
    assert _delta(before, after, "vaultgate_requests_total", **labels) == 2
    assert set(after.raw) - set(before.raw) == set()
    models = {labels["model"] for labels, _ in after.series("vaultgate_requests_total")}
    assert invented not in models
    assert not any('x"' in model for model in models)


def test_metrics_rate_limit_quota_and_balance_refusals_counted_by_code(
    metered: Gateway,
) -> None:
    slow_key, _, _ = new_key(metered.database_url, rpm_limit=1)
    tiny_quota, _, _ = new_key(metered.database_url, rpm_limit=ROOMY_RPM, token_quota=5)
    broke, _, _ = new_key(metered.database_url, rpm_limit=ROOMY_RPM, credit_micros=0)
    before = _scrape(metered)

    assert _chat(metered, slow_key, model="fake-plain-text").status_code == 200
    assert_openai_error(_chat(metered, slow_key, model="fake-plain-text"), 429)
    quota = assert_openai_error(_chat(metered, tiny_quota, model="fake-plain-text"), 429)
    balance = assert_openai_error(_chat(metered, broke, model="fake-plain-text"), 402)
    after = _scrape(metered)

    assert (quota["code"], balance["code"]) == ("insufficient_quota", "insufficient_balance")
    refusals = "vaultgate_refusals_total"
    assert _delta(
        before, after, refusals,
        endpoint="chat", status="429", code="rate_limit_exceeded", type="requests",
    ) == 1  # fmt: skip
    assert _delta(
        before, after, refusals,
        endpoint="chat", status="429", code="insufficient_quota", type="insufficient_quota",
    ) == 1  # fmt: skip
    assert _delta(
        before, after, refusals,
        endpoint="chat", status="402", code="insufficient_balance", type="insufficient_balance",
    ) == 1  # fmt: skip
    assert (
        sum(value for _, value in after.series(refusals))
        - sum(value for _, value in before.series(refusals))
        == 3
    )


def test_metrics_failover_counts_attempts_and_shows_open_breaker(metered: Gateway) -> None:
    before = _scrape(metered)

    response = _chat(metered, model="fake-failover-text")
    after = _scrape(metered)

    assert response.status_code == 200
    assert response.headers["x-vaultgate-attempts"] == "2"
    attempts = {"endpoint": "chat", "model": "fake-failover-text"}
    assert _delta(before, after, "vaultgate_upstream_attempts_total", **attempts) == 2
    assert _delta(before, after, "vaultgate_upstream_failovers_total", **attempts) == 1
    assert _delta(
        before, after, "vaultgate_requests_total",
        endpoint="chat", model="fake-failover-text", provider="fake-backup", status_class="2xx",
    ) == 1  # fmt: skip
    state = "vaultgate_circuit_breaker_state"
    assert after.value(state, deployment="fake/error-503", state="open") == 1
    assert after.value(state, deployment="fake/error-503", state="closed") == 0
    assert after.value(state, deployment="fake-backup/plain", state="closed") == 1
    failures = "vaultgate_circuit_breaker_consecutive_failures"
    assert after.value(failures, deployment="fake/error-503") == 1


def test_metrics_image_request_counted_with_spend_and_latency(metered: Gateway) -> None:
    before = _scrape(metered)

    response = httpx.post(
        metered.base_url + "/v1/images/generations",
        json={"model": "fake-dalle-image", "prompt": "a boat", "size": "256x256"},
        headers={"Authorization": f"Bearer {metered.key}"},
        timeout=30,
    )
    after = _scrape(metered)

    assert response.status_code == 200, response.text
    image = {"model": "fake-dalle-image", "provider": "fake"}
    assert _delta(
        before, after, "vaultgate_requests_total", endpoint="images", status_class="2xx", **image
    ) == 1  # fmt: skip
    assert _delta(before, after, "vaultgate_spend_micros_total", **image) == FAKE_IMAGE_256
    images = frozenset({("endpoint", "images")})
    latency = after.histograms("vaultgate_request_duration_seconds")[images]
    _assert_well_formed(latency)
    assert (
        latency.count
        == before.value("vaultgate_request_duration_seconds_count", endpoint="images") + 1
    )


def test_metrics_request_log_and_process_gauges_present(metered: Gateway) -> None:
    assert _chat(metered, model="fake-plain-text").status_code == 200

    scrape = _scrape(metered)

    assert scrape.types["vaultgate_request_log_pending"] == "gauge"
    assert scrape.value("vaultgate_request_log_pending") >= 0
    for name in ("written", "dropped", "failed_batches"):
        assert scrape.types[f"vaultgate_request_log_{name}_total"] == "counter"
    assert scrape.value("vaultgate_request_log_dropped_total") == 0
    assert scrape.value("vaultgate_request_log_failed_batches_total") == 0
    started = scrape.value("process_start_time_seconds")
    assert time.time() - 600 < started <= time.time()


def test_metrics_without_token_proxied_request_forbidden(metered: Gateway) -> None:
    response = httpx.get(
        metered.base_url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )

    error = assert_openai_error(response, 403)
    assert error["code"] == "forbidden"


def test_metrics_with_token_bearer_required(tmp_path: Path, fake_upstream: FakeOpenAI) -> None:
    guarded = start_with_config(
        tmp_path,
        operator_config(fake_upstream.base_url),
        extra_env={
            "FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY,
            "VAULTGATE_METRICS_TOKEN": METRICS_TOKEN,
        },
    )
    url = guarded.base_url + "/metrics"
    try:
        missing = httpx.get(url, timeout=10)
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        api_key = httpx.get(url, headers={"Authorization": f"Bearer {guarded.key}"}, timeout=10)
        right = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    finally:
        guarded.server.stop()

    for refused in (missing, wrong, api_key):
        assert assert_openai_error(refused, 401)["code"] == "invalid_metrics_token"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert "vaultgate_requests_total" in parse_exposition(right.text).types
