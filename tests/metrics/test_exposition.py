"""The text format writer: escaping, cumulative histograms, and a strict parse of the
result (with the parser's own refusals checked, so it cannot pass everything)."""

from __future__ import annotations

import pytest

from tests.support.prometheus_text import ExpositionError, parse_exposition
from vaultgate.metrics.exposition import (
    Exposition,
    Histogram,
    escape_label_value,
    format_ms_as_seconds,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0"), (5, "0.005"), (250, "0.25"), (1000, "1"), (1050, "1.05"), (300_000, "300")],
)
def test_format_ms_as_seconds_exact_decimal(ms: int, text: str) -> None:
    assert format_ms_as_seconds(ms) == text


def test_escape_label_value_backslash_quote_newline_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_exposition_awkward_label_values_round_trip_through_parser() -> None:
    out = Exposition()
    awkward = 'model "x"\\y\nz'
    out.counter("demo_total", "Help with a \\ and a\nline feed.", ("name",), {(awkward,): 3})

    scrape = parse_exposition(out.text())

    assert scrape.types == {"demo_total": "counter"}
    assert scrape.helps == {"demo_total": "Help with a \\\\ and a\\nline feed."}
    assert scrape.value("demo_total", name=awkward) == 3


def test_histogram_buckets_cumulative_with_sum_and_count() -> None:
    histogram = Histogram((10, 100))
    for ms in (3, 10, 11, 100, 5000):
        histogram.observe(ms)
    out = Exposition()
    out.histogram("demo_seconds", "Demo.", ("endpoint",), {("chat",): histogram})

    scrape = parse_exposition(out.text())

    assert out.text().splitlines()[2:] == [
        'demo_seconds_bucket{endpoint="chat",le="0.01"} 2',
        'demo_seconds_bucket{endpoint="chat",le="0.1"} 4',
        'demo_seconds_bucket{endpoint="chat",le="+Inf"} 5',
        'demo_seconds_sum{endpoint="chat"} 5.124',
        'demo_seconds_count{endpoint="chat"} 5',
    ]
    (series,) = scrape.histograms("demo_seconds").values()
    assert (series.sum, series.count) == (5.124, 5)


def test_exposition_series_sorted_by_labels() -> None:
    out = Exposition()
    out.gauge("demo", "Demo.", ("k",), {("b",): 2, ("a",): 1})

    assert out.text().splitlines()[2:] == ['demo{k="a"} 1', 'demo{k="b"} 2']


@pytest.mark.parametrize(
    "text",
    [
        "# TYPE a counter\na 1",  # no final line feed
        "a 1\n",  # no TYPE
        "# TYPE a counter\na 1 1700000000\n",  # timestamp
        '# TYPE a counter\na{x="1} 1\n',  # unterminated value
        '# TYPE a counter\na{x="\\t"} 1\n',  # unknown escape
        '# TYPE a counter\na{x="1"} 1\na{x="1"} 2\n',  # duplicate series
        "# TYPE a counter\n# TYPE b gauge\nb 1\na 1\n",  # family split apart
        "# TYPE a counter\na one\n",  # not a number
        "# TYPE a counter\n\na 1\n",  # empty line
        "# a comment\n",  # stray comment
    ],
)
def test_parser_malformed_exposition_refused(text: str) -> None:
    with pytest.raises(ExpositionError):
        parse_exposition(text)
