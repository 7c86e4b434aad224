"""Dated price changes in a running app: the registry's entries switch at 00:00 UTC of the
change date, driven by an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from tests.support.fake_clock import FakeClock
from vaultgate.providers.catalog import ModelEntry, load_catalog
from vaultgate.providers.repricing import MAX_WAIT_S, DailyRepricer, reprice, seconds_to_next_day

pytestmark = pytest.mark.anyio

CONFIG = """
[providers.local]
format = "openai"
base_url = "http://127.0.0.1:9/v1"

[[models]]
id = "dated-text"
provider = "local"
pricing = { input = "1", cached_input = "0.1", output = "2" }

[[models.price_changes]]
from = 2027-01-01
input = "3"
output = "4"

[[models]]
id = "steady-text"
provider = "local"
pricing = { input = "5", output = "6" }
"""
EVE = dt.datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
WAKE_STEPS = 100


@pytest.fixture
def anyio_backend() -> str:
    """The app runs on asyncio."""
    return "asyncio"


def _models(tmp_path: Path, today: dt.date) -> dict[str, ModelEntry]:
    """The two models of ``CONFIG``, without the shipped ones."""
    path = tmp_path / "operator.toml"
    path.write_text(CONFIG)
    models = load_catalog(path, today=today).models
    return {model_id: models[model_id] for model_id in ("dated-text", "steady-text")}


def _prices(entry: ModelEntry) -> tuple[int, int, int]:
    pricing = entry.pricing
    return pricing.input_per_m, pricing.cached_input_per_m, pricing.output_per_m


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (EVE, 0.5),
        (dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC), 1800.0),
        (MIDNIGHT, MAX_WAIT_S),
        (dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC), MAX_WAIT_S),
        # 01:59:59.5 at UTC+2 is 23:59:59.5 UTC.
        (dt.datetime(2027, 1, 1, 1, 59, 59, 500_000, tzinfo=PLUS_TWO), 0.5),
    ],
)  # fmt: skip
def test_seconds_to_next_day_until_utc_midnight_capped(now: dt.datetime, seconds: float) -> None:
    assert seconds_to_next_day(now) == seconds


def test_reprice_new_day_replaces_only_changed_entries(tmp_path: Path) -> None:
    models = _models(tmp_path, EVE.date())
    dated, steady = models["dated-text"], models["steady-text"]

    changed = reprice(models, MIDNIGHT.date())

    assert changed == ["dated-text"]
    assert _prices(models["dated-text"]) == (3_000_000, 3_000_000, 4_000_000)
    assert _prices(dated) == (1_000_000, 100_000, 2_000_000)  # the old entry is untouched
    assert models["dated-text"].deployments == dated.deployments
    assert models["steady-text"] is steady
    assert reprice(models, MIDNIGHT.date()) == []


def test_reprice_earlier_day_restores_base_prices(tmp_path: Path) -> None:
    models = _models(tmp_path, MIDNIGHT.date())

    assert reprice(models, EVE.date()) == ["dated-text"]

    assert _prices(models["dated-text"]) == (1_000_000, 100_000, 2_000_000)


async def _until_repriced(models: dict[str, ModelEntry], before: ModelEntry) -> bool:
    for _ in range(WAKE_STEPS):
        if models["dated-text"] is not before:
            return True
        await asyncio.sleep(0)
    return False


async def test_daily_repricer_switches_at_utc_midnight(tmp_path: Path) -> None:
    models = _models(tmp_path, EVE.date())
    clock = FakeClock(EVE)
    task = asyncio.create_task(DailyRepricer(models, clock).run())
    try:
        old = models["dated-text"]
        assert not await _until_repriced(models, old)
        clock.move_to(MIDNIGHT - dt.timedelta(milliseconds=1))
        assert not await _until_repriced(models, old)

        clock.move_to(MIDNIGHT)

        assert await _until_repriced(models, old)
    finally:
        task.cancel()
    assert _prices(models["dated-text"]) == (3_000_000, 3_000_000, 4_000_000)
    # It slept until midnight exactly, then (capped) towards the next one.
    assert clock.sleeps[:2] == [0.5, MAX_WAIT_S]


async def test_daily_repricer_started_late_applies_prices_at_once(tmp_path: Path) -> None:
    models = _models(tmp_path, EVE.date())
    clock = FakeClock(MIDNIGHT + dt.timedelta(hours=5))

    task = asyncio.create_task(DailyRepricer(models, clock).run())
    try:
        assert await _until_repriced(models, models["dated-text"])
    finally:
        task.cancel()
    assert _prices(models["dated-text"]) == (3_000_000, 3_000_000, 4_000_000)


def test_shipped_gemini_flash_price_change_applies_from_2027() -> None:
    models = dict(load_catalog(None, today=dt.date(2026, 12, 31)).models)

    before = _prices(models["gemini-3.8-flash-text"])
    reprice(models, dt.date(2027, 1, 1))

    assert before == (750_000, 75_000, 3_750_000)
    assert _prices(models["gemini-3.8-flash-text"]) == (1_500_000, 1_500_000, 7_500_000)
