"""Counters and histograms of finished /v1 requests, fed by the request trace.

Recording is a handful of dict and list increments per request, on the one event loop, so it
needs no lock. Label values are bounded: a model is named only when the catalog offers it
(anything a client invents is ``unknown``), providers and deployments come from the catalog,
endpoints and error codes from the code.
"""

from __future__ import annotations

from collections.abc import Mapping

from vaultgate.billing.settlement import RequestLogEntry
from vaultgate.errors import VaultGateError
from vaultgate.metrics.exposition import Exposition, Histogram, LabelValues
from vaultgate.providers.catalog import ModelEntry

LATENCY_BUCKETS_MS = (
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000,
)  # fmt: skip
TTFT_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
# Refusals for a rate limit or token quota (429) and for the balance (402).
REFUSAL_STATUSES = frozenset({402, 429})
NO_LABEL = "none"
UNKNOWN_MODEL = "unknown"

# Per (model, provider): prompt, completion and cached tokens, and micro-USD charged.
PROMPT, COMPLETION, CACHED, SPEND = range(4)
# Per (endpoint, model): attempts, and attempts after the first.
ATTEMPTS, FAILOVERS = range(2)


def _status_class(status: int) -> str:
    index = status // 100
    return STATUS_CLASSES[index] if 0 <= index < len(STATUS_CLASSES) else "5xx"


class RequestMetrics:
    """What finished requests add up to, since this process started."""

    def __init__(self, models: Mapping[str, ModelEntry]) -> None:
        self._models = models
        self.requests: dict[LabelValues, int] = {}
        self.usage: dict[LabelValues, list[int]] = {}
        self.attempts: dict[LabelValues, list[int]] = {}
        self.refusals: dict[LabelValues, int] = {}
        self.latency: dict[LabelValues, Histogram] = {}
        self.ttft: dict[LabelValues, Histogram] = {}

    def model_label(self, name: str | None) -> str:
        """The catalog's id, ``unknown`` for a name it does not offer, ``none`` without one."""
        if name is None:
            return NO_LABEL
        return name if name in self._models else UNKNOWN_MODEL

    def observe(self, entry: RequestLogEntry, error: VaultGateError | str | None) -> None:
        """Count one finished request from its log entry and the error it ended with."""
        endpoint = entry.endpoint
        model = self.model_label(entry.model)
        provider = entry.provider or NO_LABEL
        key = (endpoint, model, provider, _status_class(entry.status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self._histogram(self.latency, endpoint, LATENCY_BUCKETS_MS).observe(entry.latency_ms)
        if entry.stream and entry.ttft_ms is not None:
            self._histogram(self.ttft, endpoint, TTFT_BUCKETS_MS).observe(entry.ttft_ms)
        if entry.prompt_tokens or entry.completion_tokens or entry.charged_micros:
            self._count_usage(entry, (model, provider))
        if entry.attempts:
            counts = self.attempts.setdefault((endpoint, model), [0, 0])
            counts[ATTEMPTS] += entry.attempts
            counts[FAILOVERS] += entry.attempts - 1
        if entry.status in REFUSAL_STATUSES:
            self._count_refusal(endpoint, entry.status, error)

    def _count_usage(self, entry: RequestLogEntry, key: LabelValues) -> None:
        counts = self.usage.get(key)
        if counts is None:
            counts = self.usage[key] = [0, 0, 0, 0]
        counts[PROMPT] += entry.prompt_tokens
        counts[COMPLETION] += entry.completion_tokens
        counts[CACHED] += entry.cached_tokens
        counts[SPEND] += entry.charged_micros

    def _count_refusal(
        self, endpoint: str, status: int, error: VaultGateError | str | None
    ) -> None:
        code, kind = NO_LABEL, NO_LABEL
        if isinstance(error, VaultGateError):
            code, kind = error.code or NO_LABEL, error.error_type
        key = (endpoint, str(status), code, kind)
        self.refusals[key] = self.refusals.get(key, 0) + 1

    @staticmethod
    def _histogram(
        table: dict[LabelValues, Histogram], endpoint: str, bounds_ms: tuple[int, ...]
    ) -> Histogram:
        histogram = table.get((endpoint,))
        if histogram is None:
            histogram = table[(endpoint,)] = Histogram(bounds_ms)
        return histogram

    def write(self, out: Exposition) -> None:
        """Render every family into ``out``."""
        out.counter(
            "vaultgate_requests_total",
            "Finished /v1 requests, by endpoint, model, provider and status class.",
            ("endpoint", "model", "provider", "status_class"),
            self.requests,
        )
        self._write_usage(out)
        self._write_attempts(out)
        out.counter(
            "vaultgate_refusals_total",
            "Requests refused for a rate limit or token quota (429) or the balance (402), "
            "by error code and type.",
            ("endpoint", "status", "code", "type"),
            self.refusals,
        )
        out.histogram(
            "vaultgate_request_duration_seconds",
            "Time from a request's arrival to its end (the last byte of a stream).",
            ("endpoint",),
            self.latency,
        )
        out.histogram(
            "vaultgate_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first content chunk.",
            ("endpoint",),
            self.ttft,
        )

    def _write_usage(self, out: Exposition) -> None:
        labels = ("model", "provider")
        for name, index, help_text in (
            ("vaultgate_prompt_tokens_total", PROMPT, "Prompt tokens, cached ones included."),
            ("vaultgate_completion_tokens_total", COMPLETION, "Completion tokens."),
            ("vaultgate_cached_tokens_total", CACHED, "Prompt tokens read from a cache."),
            (
                "vaultgate_spend_micros_total",
                SPEND,
                "Micro-USD charged to accounts (1000000 = 1 USD), as the requests finished.",
            ),
        ):
            values = {key: counts[index] for key, counts in self.usage.items()}
            out.counter(name, help_text + " By model and provider.", labels, values)

    def _write_attempts(self, out: Exposition) -> None:
        labels = ("endpoint", "model")
        out.counter(
            "vaultgate_upstream_attempts_total",
            "Calls to providers, by endpoint and model.",
            labels,
            {key: counts[ATTEMPTS] for key, counts in self.attempts.items()},
        )
        out.counter(
            "vaultgate_upstream_failovers_total",
            "Calls to providers after a request's first, each after a retryable failure.",
            labels,
            {key: counts[FAILOVERS] for key, counts in self.attempts.items()},
        )
