"""Circuit breakers and weights: end to end through VaultGate and the admin view, and the
breaker and ordering functions on their own."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gateway.helpers import sqlite_url
from tests.routing.helpers import (
    Deployments,
    RoutedGateway,
    chat,
    chat_body,
    deployment_health,
    start_routed,
)
from tests.support.faulty_upstream import FaultyUpstream
from vaultgate.providers.catalog import Deployment
from vaultgate.routing.breaker import BreakerPolicy, Breakers, Permit
from vaultgate.routing.router import ordered

THRESHOLD = 2
COOLDOWN_S = 3.0
WAIT_S = 15.0
MODELS: dict[str, Deployments] = {
    name: [("patient", f"a@{name}"), ("p2", f"b@{name}")]
    for name in ("opens-text", "probe-text", "reprobe-text", "client-error-text")
}
MODELS["weighted-text"] = [("p1", "ok@heavy", 3, 0), ("p2", "ok@light", 1, 0)]


@pytest.fixture(scope="module")
def routed(
    tmp_path_factory: pytest.TempPathFactory, faulty_server: FaultyUpstream
) -> Iterator[RoutedGateway]:
    """A VaultGate whose breakers open after two failures, for three seconds."""
    tmp_path = tmp_path_factory.mktemp("breaker")
    env = {
        "VAULTGATE_BREAKER_FAILURE_THRESHOLD": str(THRESHOLD),
        "VAULTGATE_BREAKER_COOLDOWN_S": str(COOLDOWN_S),
    }
    running = start_routed(tmp_path, sqlite_url(tmp_path), faulty_server, MODELS, env=env)
    yield running
    running.stop()


def _calls_since(faulty: FaultyUpstream, start: int) -> list[str]:
    return faulty.deployments()[start:]


def _open_first(routed: RoutedGateway, faulty: FaultyUpstream, model: str) -> None:
    """Fail the first deployment THRESHOLD times, so its breaker opens."""
    name = model
    faulty.behaviour.update({f"a@{name}": "status-500", f"b@{name}": "ok"})
    for _ in range(THRESHOLD):
        assert chat(routed.gateway, chat_body(model)).status == 200
    assert faulty.deployments() == [f"patient/a@{name}", f"p2/b@{name}"] * THRESHOLD


def _wait_for_status(routed: RoutedGateway, model: str, key: str, status: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while deployment_health(routed, model)[key]["status"] != status:
        assert time.monotonic() < deadline, f"{key} not {status} after {WAIT_S}s"
        time.sleep(0.1)


def test_breaker_threshold_failures_open_and_traffic_skips_deployment(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    model = "opens-text"
    _open_first(routed, faulty, model)
    health = deployment_health(routed, model)
    assert health[f"patient/a@{model}"]["status"] == "open"
    assert health[f"patient/a@{model}"]["consecutive_failures"] == THRESHOLD
    assert 0 < health[f"patient/a@{model}"]["cooldown_remaining_s"] <= COOLDOWN_S
    assert health[f"p2/b@{model}"]["status"] == "closed"
    start = len(faulty.calls)

    answers = [chat(routed.gateway, chat_body(model)) for _ in range(3)]

    assert [a.headers["x-vaultgate-provider"] for a in answers] == ["p2"] * 3
    assert [a.headers["x-vaultgate-attempts"] for a in answers] == ["1"] * 3
    assert _calls_since(faulty, start) == [f"p2/b@{model}"] * 3
    # Still open now, so it was open for every request above.
    assert deployment_health(routed, model)[f"patient/a@{model}"]["status"] == "open"


def test_breaker_after_cooldown_one_probe_closes_it(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    model = "probe-text"
    first = f"patient/a@{model}"
    _open_first(routed, faulty, model)
    faulty.behaviour[f"a@{model}"] = "slow-2000"  # healthy again, and slow to answer
    _wait_for_status(routed, model, first, "half-open")
    start = len(faulty.calls)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: chat(routed.gateway, chat_body(model)), range(4)))

    assert [a.status for a in answers] == [200] * 4
    calls = Counter(_calls_since(faulty, start))
    # One request probes the first deployment; the others go on to the second meanwhile.
    assert calls == {first: 1, f"p2/b@{model}": 3}
    assert sorted(a.headers["x-vaultgate-provider"] for a in answers) == [
        "p2", "p2", "p2", "patient",
    ]  # fmt: skip
    health = deployment_health(routed, model)[first]
    assert (health["status"], health["consecutive_failures"]) == ("closed", 0)
    faulty.behaviour[f"a@{model}"] = "ok"
    start = len(faulty.calls)

    again = chat(routed.gateway, chat_body(model))

    assert again.headers["x-vaultgate-provider"] == "patient"
    assert _calls_since(faulty, start) == [first]


def test_breaker_failed_probe_reopens_with_longer_cooldown(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    model = "reprobe-text"
    first = f"patient/a@{model}"
    _open_first(routed, faulty, model)
    _wait_for_status(routed, model, first, "half-open")
    start = len(faulty.calls)

    answer = chat(routed.gateway, chat_body(model))

    assert answer.status == 200
    assert answer.headers["x-vaultgate-attempts"] == "2"
    assert _calls_since(faulty, start) == [first, f"p2/b@{model}"]
    health = deployment_health(routed, model)[first]
    assert health["status"] == "open"
    assert health["consecutive_failures"] == THRESHOLD + 1
    # The cooldown doubled: more is left than the first cooldown ever had.
    assert COOLDOWN_S < health["cooldown_remaining_s"] <= 2 * COOLDOWN_S


def test_breaker_upstream_client_error_not_counted_as_failure(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    model = "client-error-text"
    first = f"patient/a@{model}"
    faulty.behaviour.update({f"a@{model}": "status-500", f"b@{model}": "ok"})
    assert chat(routed.gateway, chat_body(model)).status == 200
    assert deployment_health(routed, model)[first]["consecutive_failures"] == 1
    faulty.behaviour[f"a@{model}"] = "status-400"

    rejected = chat(routed.gateway, chat_body(model))

    assert rejected.status == 400
    assert faulty.deployments()[-1] == first
    health = deployment_health(routed, model)[first]
    assert (health["status"], health["consecutive_failures"]) == ("closed", 0)
    faulty.behaviour[f"a@{model}"] = "status-500"
    assert chat(routed.gateway, chat_body(model)).status == 200
    # One failure since the 400: below the threshold of two, so still closed.
    health = deployment_health(routed, model)[first]
    assert (health["status"], health["consecutive_failures"]) == ("closed", 1)


def test_breaker_weights_split_traffic_in_proportion(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: chat(routed.gateway, chat_body("weighted-text")), range(200))
        )

    assert all(answer.status == 200 for answer in answers)
    calls = Counter(faulty.deployments())
    assert sum(calls.values()) == 200
    heavy, light = calls["p1/ok@heavy"], calls["p2/ok@light"]
    assert heavy + light == 200
    # 3:1 expects 150:50; the bounds are about five standard deviations wide.
    assert 120 <= heavy <= 180
    assert light > 0


# ordered() on its own.


def _deployment(name: str, weight: int = 1, priority: int = 0) -> Deployment:
    return Deployment(provider=name, upstream=name, weight=weight, priority=priority)


def test_ordered_weights_pick_first_in_proportion() -> None:
    heavy, light = _deployment("heavy", 3), _deployment("light", 1)
    rng = random.Random(20240601)

    firsts = Counter(ordered([heavy, light], rng)[0].provider for _ in range(4000))

    assert 2850 <= firsts["heavy"] <= 3150  # 3000 expected; sd about 27
    assert firsts["heavy"] + firsts["light"] == 4000


def test_ordered_priorities_before_weights() -> None:
    backup = _deployment("backup", weight=100, priority=1)
    primary = _deployment("primary", weight=1, priority=0)
    pair = [_deployment("x", 1, 2), _deployment("y", 1, 2)]
    rng = random.Random(7)

    plans = [[d.provider for d in ordered([backup, *pair, primary], rng)] for _ in range(200)]

    assert all(plan[:2] == ["primary", "backup"] for plan in plans)
    assert {tuple(plan[2:]) for plan in plans} == {("x", "y"), ("y", "x")}


def test_ordered_each_deployment_exactly_once() -> None:
    deployments = [_deployment(f"d{i}", weight=i + 1, priority=i % 2) for i in range(6)]

    plan = ordered(deployments, random.Random(3))

    assert sorted(d.provider for d in plan) == sorted(d.provider for d in deployments)


# Breakers on their own.

POLICY = BreakerPolicy(failure_threshold=2, cooldown_s=0.2, max_cooldown_s=0.5)


def _open(breakers: Breakers, key: str = "p/m") -> None:
    for _ in range(POLICY.failure_threshold):
        permit = breakers.acquire(key)
        assert permit is Permit.NORMAL
        breakers.failure(key, permit)


def _sleep_past_cooldown(breakers: Breakers, key: str = "p/m") -> None:
    left, _ = breakers.cooling(key)
    time.sleep(left + 0.02)


def test_breakers_below_threshold_stay_closed() -> None:
    breakers = Breakers(POLICY)
    breakers.failure("p/m", Permit.NORMAL)

    assert breakers.acquire("p/m") is Permit.NORMAL
    assert breakers.snapshot()["p/m"]["status"] == "closed"


def test_breakers_threshold_reached_skip_until_cooldown_then_one_probe() -> None:
    breakers = Breakers(POLICY)
    _open(breakers)

    assert breakers.acquire("p/m") is None
    assert breakers.snapshot()["p/m"]["status"] == "open"
    _sleep_past_cooldown(breakers)
    assert breakers.snapshot()["p/m"]["status"] == "half-open"
    assert breakers.acquire("p/m") is Permit.PROBE
    assert breakers.acquire("p/m") is None  # the probe is in flight
    assert breakers.acquire("other/m") is Permit.NORMAL


def test_breakers_successful_probe_closes() -> None:
    breakers = Breakers(POLICY)
    _open(breakers)
    _sleep_past_cooldown(breakers)
    probe = breakers.acquire("p/m")
    assert probe is Permit.PROBE

    breakers.success("p/m", probe)

    assert breakers.acquire("p/m") is Permit.NORMAL
    assert breakers.snapshot()["p/m"] == {
        "status": "closed", "consecutive_failures": 0, "cooldown_remaining_s": 0.0,
    }  # fmt: skip


def test_breakers_failed_probes_double_cooldown_up_to_cap() -> None:
    breakers = Breakers(POLICY)
    _open(breakers)
    cooldowns = []
    for _ in range(3):
        _sleep_past_cooldown(breakers)
        probe = breakers.acquire("p/m")
        assert probe is Permit.PROBE
        breakers.failure("p/m", probe)
        cooldowns.append(breakers.cooling("p/m")[0])

    assert breakers.acquire("p/m") is None
    assert 0.3 < cooldowns[0] <= 0.4
    assert 0.4 < cooldowns[1] <= 0.5
    assert 0.4 < cooldowns[2] <= 0.5  # capped at max_cooldown_s


def test_breakers_rate_limit_with_retry_after_opens_at_once() -> None:
    breakers = Breakers(POLICY)

    breakers.failure("p/m", Permit.NORMAL, retry_after_s=5)

    assert breakers.acquire("p/m") is None
    left, rate_limited = breakers.cooling("p/m")
    assert 4.5 < left <= 5
    assert rate_limited


def test_breakers_success_resets_consecutive_failures() -> None:
    breakers = Breakers(POLICY)
    breakers.failure("p/m", Permit.NORMAL)
    breakers.success("p/m", Permit.NORMAL)

    breakers.failure("p/m", Permit.NORMAL)

    assert breakers.acquire("p/m") is Permit.NORMAL
    assert breakers.snapshot()["p/m"]["consecutive_failures"] == 1


def test_breakers_stale_probe_lets_another_probe_through() -> None:
    breakers = Breakers(BreakerPolicy(failure_threshold=1, cooldown_s=0.05, probe_timeout_s=0.1))
    breakers.failure("p/m", Permit.NORMAL)
    time.sleep(0.07)
    assert breakers.acquire("p/m") is Permit.PROBE
    assert breakers.acquire("p/m") is None

    time.sleep(0.12)

    assert breakers.acquire("p/m") is Permit.PROBE
