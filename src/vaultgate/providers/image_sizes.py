"""How OpenAI's ``size`` becomes each provider's way of asking for one.

OpenAI sizes read ``WIDTHxHEIGHT``. Providers that take an aspect ratio get it from
``ASPECT_RATIOS`` for OpenAI's own sizes (whose shapes are not exact ratios: 1792x1024 is
7:4, the nearest common ratio being 16:9), and otherwise the exact reduced ratio of the
size, when the provider offers it. Providers that take a width and a height get the size
as it is, checked against their limits. A size a provider cannot produce is refused with
400 on ``size``, before anything is sent.

=================  ============  =========================================================
OpenAI size        aspect ratio  width x height providers
=================  ============  =========================================================
256x256, 512x512   1:1           as asked, within the model's limits (FLUX.1: 256 to 1440,
1024x1024          1:1           multiples of 32; FLUX.2: multiples of 16, up to 4 MP;
1792x1024          16:9          Together: as asked)
1024x1792          9:16
1536x1024          3:2
1024x1536          2:3
=================  ============  =========================================================
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from vaultgate.errors import UpstreamError

ASPECT_RATIOS = {
    "256x256": "1:1",
    "512x512": "1:1",
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
    "1536x1024": "3:2",
    "1024x1536": "2:3",
}


@dataclass(frozen=True, slots=True)
class DimensionLimits:
    """The widths and heights a model accepts: a range, a step and a pixel budget."""

    low: int
    high: int
    multiple: int
    max_pixels: int | None = None

    def allows(self, width: int, height: int) -> bool:
        """Whether the model can make an image of this size."""
        for side in (width, height):
            if not self.low <= side <= self.high or side % self.multiple:
                return False
        return self.max_pixels is None or width * height <= self.max_pixels


def unsupported_size(provider: str, size: str, offered: str) -> UpstreamError:
    """The 400 for a size the provider cannot make."""
    return UpstreamError(
        f"{provider} cannot make images of size {size}; it offers {offered}.",
        status=400, error_type="invalid_request_error", code="unsupported_size",
        param="size", retryable=False,
    )  # fmt: skip


def parse_size(size: str) -> tuple[int, int]:
    """Width and height of a ``WIDTHxHEIGHT`` size (the gateway has checked its form)."""
    width, _, height = size.partition("x")
    return int(width), int(height)


def size_to_aspect_ratio(size: str, offered: Collection[str], *, provider: str) -> str:
    """The provider's aspect ratio for an OpenAI size, or 400."""
    ratio = ASPECT_RATIOS.get(size)
    if ratio is None:
        width, height = parse_size(size)
        divisor = math.gcd(width, height)
        ratio = f"{width // divisor}:{height // divisor}"
    if ratio not in offered:
        raise unsupported_size(provider, size, "the aspect ratios " + ", ".join(offered))
    return ratio


def size_to_dimensions(size: str, limits: DimensionLimits, *, provider: str) -> tuple[int, int]:
    """Width and height for an OpenAI size, checked against the model's limits, or 400."""
    width, height = parse_size(size)
    if not limits.allows(width, height):
        budget = f", at most {limits.max_pixels} pixels" if limits.max_pixels else ""
        offered = (
            f"sides from {limits.low} to {limits.high} in multiples of {limits.multiple}{budget}"
        )
        raise unsupported_size(provider, size, offered)
    return width, height
