"""Exact prices and costs, in integer micro-units (1 USD = 1,000,000 micros).

Token prices are stored per million tokens, so a price of $2.50 per million is the integer
2,500,000 and a request's cost is an exact integer product divided once, rounded up to the
next micro. Image prices are per image, keyed by ``size`` or ``size/quality``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from vaultgate.errors import ConfigError, InvalidRequest
from vaultgate.providers.base import Usage

MICROS_PER_UNIT = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000
DEFAULT_QUALITY = "standard"


def parse_price(value: object, *, where: str) -> int:
    """A price written as a decimal string (or number) in micros; exact or ConfigError."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where}: price must be a decimal string, got {value!r}")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if not amount.is_finite():
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    micros = amount * MICROS_PER_UNIT
    if micros < 0 or micros != micros.to_integral_value():
        raise ConfigError(f"{where}: {value!r} must be non-negative with at most 6 decimals")
    return int(micros)


PLAIN_AMOUNT = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})?$")


def parse_amount(text: str) -> int:
    """A positive USD amount typed by a person ("25", "0.50") in micros; 400 otherwise.

    Only plain decimals are taken: "1e3" or "-5" are refused rather than read literally.
    """
    text = text.strip()
    if not PLAIN_AMOUNT.match(text):
        raise InvalidRequest("amount must be a plain decimal such as 25 or 0.50", param="amount")
    micros = parse_price(text, where="amount")
    if micros <= 0:
        raise InvalidRequest("amount must be positive", param="amount")
    return micros


def format_micros(micros: int) -> str:
    """A micro amount as a plain decimal string, e.g. 2500000 -> '2.5'."""
    text = format(Decimal(micros) / MICROS_PER_UNIT, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@dataclass(frozen=True, slots=True)
class Pricing:
    """A model's prices: per million tokens, and per image."""

    input_per_m: int = 0
    cached_input_per_m: int = 0
    output_per_m: int = 0
    images: Mapping[str, int] = field(default_factory=dict)

    def token_cost(self, usage: Usage) -> int:
        """Cost of a chat answer, rounded up to a whole micro."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        scaled = (
            (usage.prompt_tokens - cached) * self.input_per_m
            + cached * self.cached_input_per_m
            + usage.completion_tokens * self.output_per_m
        )
        return -(-scaled // TOKENS_PER_PRICE_UNIT)

    def image_price(self, size: str, quality: str) -> int | None:
        """Price of one image of this size and quality, or None if not offered."""
        found = self.images.get(f"{size}/{quality}")
        if found is None and quality in ("", DEFAULT_QUALITY, "auto"):
            found = self.images.get(size)
        return found

    def token_snapshot(self) -> dict[str, object]:
        """The token prices a charge used, recorded with it (micros per million)."""
        return {
            "input_per_m": self.input_per_m,
            "cached_input_per_m": self.cached_input_per_m,
            "output_per_m": self.output_per_m,
        }

    def public(self) -> dict[str, object]:
        """Prices as exact decimal strings, for the model list."""
        result: dict[str, object] = {
            "currency": "USD",
            "input_per_million": format_micros(self.input_per_m),
            "cached_input_per_million": format_micros(self.cached_input_per_m),
            "output_per_million": format_micros(self.output_per_m),
        }
        if self.images:
            result["per_image"] = {key: format_micros(v) for key, v in self.images.items()}
        return result
