"""Charts drawn on the server: the geometry of bar charts, rendered as SVG by ``_chart.html``.

No script and no style attributes (the CSP forbids both): shapes carry classes, and
app.css colours them from the theme's variables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 240
LEFT = 64
BOTTOM = 28
TOP = 12
ROW = 22
MAX_X_LABELS = 8


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar, its label and value text (shown in its tooltip)."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Label:
    """A piece of axis text at a position."""

    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything ``_chart.html`` needs to draw one chart."""

    id: str
    title: str
    desc: str
    width: int
    height: int
    bars: list[Bar]
    y_ticks: list[Label]
    x_labels: list[Label]
    horizontal: bool
    plot_left: int
    plot_bottom: float


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis values from 0 to at least ``top``: steps of 1, 2 or 5 times a power of 10."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _describe(title: str, points: Sequence[tuple[str, float]], fmt: Fmt) -> str:
    if not points:
        return f"{title}: no data."
    best = max(points, key=lambda p: p[1])
    total = sum(value for _, value in points)
    return f"{title}: {len(points)} bars, total {fmt(total)}, highest {best[0]} ({fmt(best[1])})."


Fmt = Callable[[float], str]


def column_chart(
    chart_id: str, title: str, points: Sequence[tuple[str, float]], fmt: Fmt
) -> Chart:
    """Vertical bars over time: one per (label, value), the x labels thinned to fit."""
    ticks = nice_ticks(max((v for _, v in points), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    scale = plot_h / ticks[-1]
    bars = [
        Bar(LEFT + i * slot + slot * 0.1, TOP + plot_h - value * scale, slot * 0.8,
            value * scale, label, fmt(value))
        for i, (label, value) in enumerate(points)
    ]  # fmt: skip
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    x_labels = [
        Label(LEFT + i * slot + slot / 2, HEIGHT - 8, label[5:] if len(label) > 5 else label)
        for i, (label, _) in enumerate(points)
        if i % every == 0
    ]
    y_ticks = [Label(LEFT - 6, TOP + plot_h - t * scale, fmt(t)) for t in ticks]
    return Chart(chart_id, title, _describe(title, points, fmt), WIDTH, HEIGHT, bars, y_ticks,
                 x_labels, False, LEFT, TOP + plot_h)  # fmt: skip


def bar_list_chart(
    chart_id: str, title: str, points: Sequence[tuple[str, float]], fmt: Fmt
) -> Chart:
    """Horizontal bars for categories (keys, models), largest first, names on the left."""
    ordered = sorted(points, key=lambda p: p[1], reverse=True)
    left, height = 180, TOP + ROW * max(len(ordered), 1) + BOTTOM
    top_value = nice_ticks(max((v for _, v in ordered), default=0))[-1]
    scale = (WIDTH - left - 90) / top_value
    bars = [
        Bar(left, TOP + i * ROW + 3, value * scale, ROW - 6, label, fmt(value))
        for i, (label, value) in enumerate(ordered)
    ]
    names = [Label(left - 6, TOP + i * ROW + ROW / 2 + 4, _short(label))
             for i, (label, _) in enumerate(ordered)]  # fmt: skip
    return Chart(chart_id, title, _describe(title, ordered, fmt), WIDTH, height, bars, names,
                 [], True, left, height - BOTTOM)  # fmt: skip


def _short(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
