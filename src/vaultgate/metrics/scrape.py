"""One scrape: the request counters, plus gauges read from live objects at scrape time
(circuit breakers, the request-log writer, the process)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from vaultgate.metrics.exposition import Exposition, LabelValues
from vaultgate.metrics.requests import RequestMetrics
from vaultgate.providers.catalog import ModelEntry
from vaultgate.routing.breaker import Breakers
from vaultgate.routing.router import deployment_id
from vaultgate.usage.request_log import RequestLogWriter

BREAKER_STATES = ("closed", "open", "half-open")


class MetricsExporter:
    """Renders this process's metrics in Prometheus' text format."""

    def __init__(
        self,
        requests: RequestMetrics,
        *,
        breakers: Breakers,
        models: Mapping[str, ModelEntry],
        request_log: RequestLogWriter,
        started_at: float | None = None,
    ) -> None:
        self.requests = requests
        self._breakers = breakers
        self._models = models
        self._request_log = request_log
        self._started_at = time.time() if started_at is None else started_at

    def render(self) -> str:
        """The whole exposition."""
        out = Exposition()
        self.requests.write(out)
        self._write_breakers(out)
        self._write_request_log(out)
        out.gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            (),
            {(): f"{self._started_at:.3f}"},
        )
        return out.text()

    def _write_breakers(self, out: Exposition) -> None:
        """Every offered deployment's breaker: one series per state, 1 for the current one."""
        known = self._breakers.snapshot()
        deployments = {deployment_id(d) for m in self._models.values() for d in m.deployments}
        states: dict[LabelValues, int] = {}
        failures: dict[LabelValues, int] = {}
        for deployment in deployments:
            seen = known.get(deployment, {})
            current = seen.get("status", "closed")
            for state in BREAKER_STATES:
                states[(deployment, state)] = int(state == current)
            consecutive = seen.get("consecutive_failures", 0)
            failures[(deployment,)] = consecutive if isinstance(consecutive, int) else 0
        out.gauge(
            "vaultgate_circuit_breaker_state",
            "Circuit breaker of each deployment (provider/upstream): 1 for its current state.",
            ("deployment", "state"),
            states,
        )
        out.gauge(
            "vaultgate_circuit_breaker_consecutive_failures",
            "Retryable failures in a row of each deployment (provider/upstream).",
            ("deployment",),
            failures,
        )

    def _write_request_log(self, out: Exposition) -> None:
        writer = self._request_log
        out.gauge(
            "vaultgate_request_log_pending",
            "Finished requests waiting to be written to the request log.",
            (),
            {(): writer.pending},
        )
        out.counter(
            "vaultgate_request_log_written_total",
            "Finished requests written to the request log (and settled).",
            (),
            {(): writer.written},
        )
        out.counter(
            "vaultgate_request_log_dropped_total",
            "Finished requests never written: queue overflow or an unwritable row.",
            (),
            {(): writer.dropped},
        )
        out.counter(
            "vaultgate_request_log_failed_batches_total",
            "Batch writes the database refused (their rows are kept and retried).",
            (),
            {(): writer.failed_batches},
        )
