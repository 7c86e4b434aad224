"""Counting finished requests: bounded labels, usage and spend, attempts, refusals and the
scrape's gauges (breakers, request-log writer, process start)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.support.prometheus_text import parse_exposition
from vaultgate.billing.pricing import Pricing
from vaultgate.billing.settlement import RequestLogEntry
from vaultgate.errors import ModelNotFound, QuotaExhausted, RateLimited
from vaultgate.metrics.requests import RequestMetrics
from vaultgate.metrics.scrape import MetricsExporter
from vaultgate.providers.catalog import Deployment, ModelEntry
from vaultgate.routing.breaker import BreakerPolicy, Breakers, Permit
from vaultgate.storage.database import create_engine
from vaultgate.usage.request_log import RequestLogWriter

MODELS = {
    "alpha-text": ModelEntry(
        "alpha-text", "text", (Deployment("p1", "alpha"), Deployment("p2", "alpha-2")), Pricing()
    ),
}


def _entry(**fields: object) -> RequestLogEntry:
    base: dict[str, object] = {
        "created_at": dt.datetime.now(dt.UTC), "request_id": "req_1", "endpoint": "chat",
        "status": 200, "latency_ms": 40, "model": "alpha-text", "provider": "p1",
    }  # fmt: skip
    return RequestLogEntry(**{**base, **fields})  # type: ignore[arg-type]


def _exporter(metrics: RequestMetrics, breakers: Breakers, tmp_path: Path) -> MetricsExporter:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    writer = RequestLogWriter(engine, flush_interval_s=1, batch_size=10, max_pending=1000)
    return MetricsExporter(
        metrics, breakers=breakers, models=MODELS, request_log=writer, started_at=1234.5
    )


def test_observe_unknown_model_name_labelled_unknown() -> None:
    metrics = RequestMetrics(MODELS)

    metrics.observe(_entry(model="made-up-model", provider=None, status=404), ModelNotFound("x"))
    metrics.observe(_entry(model=None, provider=None, status=400), "bad body")

    assert metrics.requests == {
        ("chat", "unknown", "none", "4xx"): 1,
        ("chat", "none", "none", "4xx"): 1,
    }


def test_observe_usage_spend_and_attempts_summed_by_labels() -> None:
    metrics = RequestMetrics(MODELS)

    for _ in range(2):
        metrics.observe(
            _entry(
                prompt_tokens=120, completion_tokens=30, cached_tokens=100,
                charged_micros=77, attempts=3, stream=True, ttft_ms=12,
            ),
            None,
        )  # fmt: skip

    assert metrics.requests == {("chat", "alpha-text", "p1", "2xx"): 2}
    assert metrics.usage == {("alpha-text", "p1"): [240, 60, 200, 154]}
    assert metrics.attempts == {("chat", "alpha-text"): [6, 4]}
    assert metrics.latency[("chat",)].count == 2
    assert metrics.ttft[("chat",)].sum_ms == 24


def test_observe_unstreamed_request_has_no_time_to_first_token() -> None:
    metrics = RequestMetrics(MODELS)

    metrics.observe(_entry(ttft_ms=40, stream=False), None)

    assert metrics.ttft == {}


def test_observe_refusals_counted_by_status_code_and_type() -> None:
    metrics = RequestMetrics(MODELS)
    tokens = RateLimited("slow down")
    tokens.error_type = "tokens"

    metrics.observe(_entry(status=429), RateLimited("slow down"))
    metrics.observe(_entry(status=429), tokens)
    metrics.observe(_entry(status=429), QuotaExhausted("quota"))
    metrics.observe(_entry(status=503), None)

    assert metrics.refusals == {
        ("chat", "429", "rate_limit_exceeded", "requests"): 1,
        ("chat", "429", "rate_limit_exceeded", "tokens"): 1,
        ("chat", "429", "insufficient_quota", "insufficient_quota"): 1,
    }


def test_scrape_breaker_states_one_per_deployment(tmp_path: Path) -> None:
    breakers = Breakers(BreakerPolicy(failure_threshold=2))
    breakers.failure("p1/alpha", Permit.NORMAL)
    breakers.failure("p1/alpha", Permit.NORMAL)
    breakers.failure("p2/alpha-2", Permit.NORMAL)

    scrape = parse_exposition(_exporter(RequestMetrics(MODELS), breakers, tmp_path).render())

    state = "vaultgate_circuit_breaker_state"
    assert sorted(
        (labels["deployment"], labels["state"], value)
        for labels, value in scrape.series(state)
        if value
    ) == [("p1/alpha", "open", 1), ("p2/alpha-2", "closed", 1)]
    assert len(scrape.series(state)) == 6
    failures = "vaultgate_circuit_breaker_consecutive_failures"
    assert scrape.value(failures, deployment="p1/alpha") == 2
    assert scrape.value(failures, deployment="p2/alpha-2") == 1


def test_scrape_request_log_and_process_gauges(tmp_path: Path) -> None:
    exporter = _exporter(RequestMetrics(MODELS), Breakers(), tmp_path)

    scrape = parse_exposition(exporter.render())

    assert scrape.types["vaultgate_request_log_pending"] == "gauge"
    assert scrape.types["vaultgate_request_log_failed_batches_total"] == "counter"
    assert scrape.raw[("process_start_time_seconds", frozenset())] == "1234.500"


@pytest.mark.parametrize("status", [200, 499, 503])
def test_observe_status_class_from_status(status: int) -> None:
    metrics = RequestMetrics(MODELS)

    metrics.observe(_entry(status=status), None)

    ((key, count),) = metrics.requests.items()
    assert (key[3], count) == (f"{status // 100}xx", 1)
