"""Prometheus' text exposition format, version 0.0.4, written by hand.

Each metric family is a ``# HELP`` and a ``# TYPE`` line followed by its samples,
``name{label="value",...} value``. Label values escape backslash, double quote and line feed;
help text escapes backslash and line feed
(https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
Histograms are kept as per-bucket counts with their sum in whole milliseconds, so the
request path only adds integers; buckets are made cumulative when rendered.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


def escape_label_value(value: str) -> str:
    """A label value as it goes between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Help text as it goes after ``# HELP name``."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_labels(names: Sequence[str], values: Sequence[str]) -> str:
    """``{a="x",b="y"}``, or nothing without labels."""
    if not names:
        return ""
    pairs = zip(names, values, strict=True)
    return "{" + ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs) + "}"


def format_ms_as_seconds(ms: int) -> str:
    """Whole milliseconds as an exact decimal number of seconds: 2500 -> ``2.5``."""
    seconds, rest = divmod(ms, 1000)
    if not rest:
        return str(seconds)
    return f"{seconds}.{rest:03d}".rstrip("0")


class Histogram:
    """Counts of observations in fixed buckets of milliseconds, their sum and number."""

    __slots__ = ("bounds_ms", "count", "counts", "sum_ms")

    def __init__(self, bounds_ms: tuple[int, ...]) -> None:
        self.bounds_ms = bounds_ms
        # One count per bucket, the last for values above every bound (``+Inf``).
        self.counts = [0] * (len(bounds_ms) + 1)
        self.sum_ms = 0
        self.count = 0

    def observe(self, ms: int) -> None:
        """Count one observation of ``ms`` milliseconds."""
        self.counts[bisect_left(self.bounds_ms, ms)] += 1
        self.sum_ms += ms
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, observations at or below le)`` for each bucket, ``+Inf`` last."""
        rows = []
        running = 0
        bounds = (*map(format_ms_as_seconds, self.bounds_ms), "+Inf")
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            rows.append((bound, running))
        return rows


class Exposition:
    """Builds one scrape's text, family by family."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def _family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {escape_help(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def _samples(
        self,
        name: str,
        label_names: Sequence[str],
        values: Mapping[LabelValues, int | float | str],
    ) -> None:
        for labels in sorted(values):
            value = values[labels]
            self._lines.append(f"{name}{format_labels(label_names, labels)} {value}")

    def counter(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        values: Mapping[LabelValues, int],
    ) -> None:
        """A counter family; ``name`` ends in ``_total``."""
        self._family(name, "counter", help_text)
        self._samples(name, label_names, values)

    def gauge(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        values: Mapping[LabelValues, int | float | str],
    ) -> None:
        """A gauge family."""
        self._family(name, "gauge", help_text)
        self._samples(name, label_names, values)

    def histogram(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        histograms: Mapping[LabelValues, Histogram],
    ) -> None:
        """A histogram family in seconds: buckets, ``_sum`` and ``_count`` per label set."""
        self._family(name, "histogram", help_text)
        bucket_names = (*label_names, "le")
        for labels in sorted(histograms):
            histogram = histograms[labels]
            for le, count in histogram.cumulative():
                rendered = format_labels(bucket_names, (*labels, le))
                self._lines.append(f"{name}_bucket{rendered} {count}")
            rendered = format_labels(label_names, labels)
            self._lines.append(f"{name}_sum{rendered} {format_ms_as_seconds(histogram.sum_ms)}")
            self._lines.append(f"{name}_count{rendered} {histogram.count}")

    def text(self) -> str:
        """The whole exposition, ending with a line feed."""
        return "\n".join(self._lines) + "\n"
