"""A strict parser of Prometheus' text exposition format 0.0.4, for tests of ``/metrics``.

It refuses what a Prometheus server would refuse and a little more that VaultGate never
writes: timestamps, stray comments, a family's samples split apart, a sample without a
``# TYPE``, a duplicate series, malformed escapes
(https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

Labels = frozenset[tuple[str, str]]


class ExpositionError(AssertionError):
    """The text breaks the format."""


@dataclass
class Histogram:
    """One histogram series: cumulative ``(le, count)`` pairs, ``_sum`` and ``_count``."""

    buckets: list[tuple[float, float]] = field(default_factory=list)
    sum: float | None = None
    count: float | None = None


@dataclass
class Scrape:
    """Everything one exposition declared."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    raw: dict[tuple[str, Labels], str] = field(default_factory=dict)

    def value(self, name: str, /, **labels: str) -> float:
        """The value of one series; 0 when it is absent (a counter not yet counted)."""
        raw = self.raw.get((name, frozenset(labels.items())))
        return 0.0 if raw is None else parse_value(raw)

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every series of one sample name, with its labels."""
        return [
            (dict(labels), parse_value(raw))
            for (sample, labels), raw in self.raw.items()
            if sample == name
        ]

    def histograms(self, family: str) -> dict[Labels, Histogram]:
        """A histogram family's series, by their labels without ``le``."""
        found: dict[Labels, Histogram] = {}
        for (sample, labels), raw in self.raw.items():
            if not sample.startswith(family) or sample[len(family) :] not in HISTOGRAM_SUFFIXES:
                continue
            values = dict(labels)
            le = values.pop("le", None)
            histogram = found.setdefault(frozenset(values.items()), Histogram())
            if sample.endswith("_bucket"):
                assert le is not None, f"{sample} without le"
                histogram.buckets.append((parse_value(le), parse_value(raw)))
            elif sample.endswith("_sum"):
                histogram.sum = parse_value(raw)
            else:
                histogram.count = parse_value(raw)
        return found


def parse_value(text: str) -> float:
    """A sample value: a Go-style float, ``+Inf``, ``-Inf`` or ``NaN``."""
    if text in ("+Inf", "-Inf", "NaN"):
        return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[text]
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", text):
        raise ExpositionError(f"bad sample value {text!r}")
    return float(text)


def _labels(text: str, line: str) -> tuple[Labels, str]:
    """Parse ``{a="x",...}`` at the start of ``text``; return the labels and the rest."""
    labels: dict[str, str] = {}
    position = 1
    while True:
        if text[position] == "}":
            return frozenset(labels.items()), text[position + 1 :]
        match = LABEL_NAME.match(text, position)
        if match is None or text[match.end() : match.end() + 2] != '="':
            raise ExpositionError(f"bad label in {line!r}")
        name = match.group()
        position = match.end() + 2
        value: list[str] = []
        while text[position] != '"':
            char = text[position]
            if char == "\n":
                raise ExpositionError(f"raw line feed in a label value: {line!r}")
            if char == "\\":
                escaped = ESCAPES.get(text[position + 1])
                if escaped is None:
                    raise ExpositionError(f"bad escape in {line!r}")
                value.append(escaped)
                position += 2
                continue
            value.append(char)
            position += 1
        if name in labels:
            raise ExpositionError(f"label {name} twice in {line!r}")
        labels[name] = "".join(value)
        position += 1
        if text[position] == ",":
            position += 1
        elif text[position] != "}":
            raise ExpositionError(f"bad label list in {line!r}")


def _family_of(sample: str, scrape: Scrape) -> str:
    if sample in scrape.types:
        return sample
    for suffix in HISTOGRAM_SUFFIXES:
        base = sample.removesuffix(suffix)
        if base != sample and scrape.types.get(base) in ("histogram", "summary"):
            return base
    raise ExpositionError(f"sample {sample} has no # TYPE before it")


class _Reader:
    def __init__(self) -> None:
        self.scrape = Scrape()
        self.current: str | None = None
        self.finished: set[str] = set()

    def enter(self, family: str) -> None:
        if family == self.current:
            return
        if family in self.finished:
            raise ExpositionError(f"the lines of {family} are not together")
        if self.current is not None:
            self.finished.add(self.current)
        self.current = family

    def comment(self, line: str) -> None:
        parts = line.split(" ", 3)
        if len(parts) < 4 or parts[1] not in ("HELP", "TYPE"):
            raise ExpositionError(f"unexpected comment {line!r}")
        _, kind, name, rest = parts
        if not METRIC_NAME.fullmatch(name):
            raise ExpositionError(f"bad metric name in {line!r}")
        self.enter(name)
        table = self.scrape.helps if kind == "HELP" else self.scrape.types
        if name in table:
            raise ExpositionError(f"second # {kind} for {name}")
        if kind == "TYPE" and rest not in TYPES:
            raise ExpositionError(f"unknown type in {line!r}")
        table[name] = rest

    def sample(self, line: str) -> None:
        match = METRIC_NAME.match(line)
        if match is None:
            raise ExpositionError(f"bad sample line {line!r}")
        name, rest = match.group(), line[match.end() :]
        labels: Labels = frozenset()
        if rest.startswith("{"):
            try:
                labels, rest = _labels(rest, line)
            except IndexError:
                raise ExpositionError(f"unterminated label list in {line!r}") from None
        if not rest.startswith(" ") or " " in rest[1:]:
            raise ExpositionError(f"expected one value and no timestamp: {line!r}")
        parse_value(rest[1:])
        self.enter(_family_of(name, self.scrape))
        if (name, labels) in self.scrape.raw:
            raise ExpositionError(f"duplicate series {line!r}")
        self.scrape.raw[(name, labels)] = rest[1:]


def parse_exposition(text: str) -> Scrape:
    """Parse a whole exposition strictly; ExpositionError on the first fault."""
    if not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a line feed")
    reader = _Reader()
    for line in text[:-1].split("\n"):
        if not line:
            raise ExpositionError("empty line")
        if line.startswith("#"):
            reader.comment(line)
        else:
            reader.sample(line)
    return reader.scrape
