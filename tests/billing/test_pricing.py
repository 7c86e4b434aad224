"""Exact prices and costs in integer micros."""

from __future__ import annotations

import pytest

from vaultgate.billing.pricing import Pricing, format_micros, parse_price
from vaultgate.errors import ConfigError
from vaultgate.providers.base import Usage

GPT_4O = Pricing(input_per_m=2_500_000, cached_input_per_m=1_250_000, output_per_m=10_000_000)


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("0.075", 75_000),
        ("2.50", 2_500_000),
        ("0", 0),
        ("0.000001", 1),
        ("1e-6", 1),
        ("1000000", 1_000_000_000_000),
        (" 1.5 ", 1_500_000),
        (3, 3_000_000),
        (0.075, 75_000),
        (0.1, 100_000),
        (2.675, 2_675_000),
    ],
)
def test_parse_price_exact_values_give_exact_micros(value: object, micros: int) -> None:
    result = parse_price(value, where="test")

    assert result == micros
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    ["1e-7", "0.0000001", 1e-7, "-1", -0.5, "-0.000001", "abc", "", "1,5", True, False,
     None, [1], {"usd": 1}, "NaN", "Infinity", "-Infinity", float("nan"), float("inf")],
)  # fmt: skip
def test_parse_price_inexact_negative_or_not_numeric_raises_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^model 'm': "):
        parse_price(value, where="model 'm'")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0"),
        (1, "0.000001"),
        (75_000, "0.075"),
        (2_500_000, "2.5"),
        (1_000_000, "1"),
        (10_000_000, "10"),
        (1_234_567_890, "1234.56789"),
    ],
)
def test_format_micros_gives_plain_decimal(micros: int, text: str) -> None:
    assert format_micros(micros) == text


@pytest.mark.parametrize("value", ["0.075", "2.5", "0.000001", "1234.56789", "0"])
def test_format_micros_round_trips_parse_price(value: str) -> None:
    assert format_micros(parse_price(value, where="t")) == value


def test_token_cost_exact_integer_micros() -> None:
    usage = Usage(prompt_tokens=1_000, completion_tokens=500)

    # 1000 * 2.50/M + 500 * 10/M = 0.0025 + 0.005 USD
    assert GPT_4O.token_cost(usage) == 7_500


def test_token_cost_cached_tokens_priced_at_cached_rate() -> None:
    usage = Usage(prompt_tokens=1_000, completion_tokens=10, cached_tokens=400)

    # 600 * 2.50/M + 400 * 1.25/M + 10 * 10/M = 0.0015 + 0.0005 + 0.0001 USD
    assert GPT_4O.token_cost(usage) == 2_100


def test_token_cost_cached_beyond_prompt_is_capped_at_prompt() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=1_000)

    assert GPT_4O.token_cost(usage) == 125


@pytest.mark.parametrize(
    ("usage", "micros"),
    [
        (Usage(prompt_tokens=1), 3),  # 2.5 micros rounds up to 3
        (Usage(completion_tokens=1), 10),
        (Usage(prompt_tokens=1, cached_tokens=1), 2),  # 1.25 rounds up to 2
        (Usage(prompt_tokens=3, completion_tokens=1), 18),  # 7.5 + 10 = 17.5
        (Usage(), 0),
    ],
)
def test_token_cost_fractional_micros_round_up(usage: Usage, micros: int) -> None:
    assert GPT_4O.token_cost(usage) == micros


def test_token_cost_tiny_price_still_charges_one_micro() -> None:
    cheap = Pricing(input_per_m=1, output_per_m=1)

    assert cheap.token_cost(Usage(prompt_tokens=1)) == 1
    assert cheap.token_cost(Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)) == 2


def test_token_cost_huge_counts_stay_exact() -> None:
    usage = Usage(prompt_tokens=10**12 + 1, completion_tokens=0)

    assert GPT_4O.token_cost(usage) == 2_500_000_000_003


IMAGES = Pricing(images={"1024x1024": 40_000, "1024x1024/hd": 80_000, "512x512/hd": 9})


@pytest.mark.parametrize(
    ("size", "quality", "price"),
    [
        ("1024x1024", "standard", 40_000),
        ("1024x1024", "auto", 40_000),
        ("1024x1024", "", 40_000),
        ("1024x1024", "hd", 80_000),
        ("512x512", "hd", 9),
        ("512x512", "standard", None),
        ("256x256", "standard", None),
        ("256x256", "hd", None),
    ],
)
def test_image_price_by_size_and_quality(size: str, quality: str, price: int | None) -> None:
    assert IMAGES.image_price(size, quality) == price


def test_image_price_unknown_quality_does_not_fall_back_to_size() -> None:
    assert IMAGES.image_price("1024x1024", "ultra") is None


def test_public_prices_are_exact_strings() -> None:
    pricing = Pricing(
        input_per_m=150_000, cached_input_per_m=75_000, output_per_m=600_000,
        images={"1024x1024": 40_000},
    )  # fmt: skip

    assert pricing.public() == {
        "currency": "USD",
        "input_per_million": "0.15",
        "cached_input_per_million": "0.075",
        "output_per_million": "0.6",
        "per_image": {"1024x1024": "0.04"},
    }


def test_public_prices_without_images_omit_per_image() -> None:
    assert "per_image" not in GPT_4O.public()
