"""A lean closed-loop HTTP/1.1 load generator.

Each of ``concurrency`` keep-alive connections sends the same pre-rendered request, waits
for the whole response (chunked or not) and sends the next one. It is a bare asyncio
protocol with httptools' response parser, so the client costs a few tens of microseconds
per request and does not distort what it measures. Every run is bounded by a deadline and
by a request count.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import cast

import httptools

REQUEST_TIMEOUT_S = 10.0


def render_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one keep-alive POST."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self.first_byte = 0.0
        self.body_bytes = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the request in flight."""
        self.lost = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        """Feed the response parser."""
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)

    def on_body(self, body: bytes) -> None:
        """httptools callback."""
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        """httptools callback: the response is complete."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self._parser.get_status_code())

    def send(self, data: bytes) -> asyncio.Future[int]:
        """Send one request; the future gives the response status."""
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.first_byte = 0.0
        self.body_bytes = 0
        if self.lost:
            self._waiter.set_exception(ConnectionError("connection lost"))
        else:
            self._transport.write(data)
        return self._waiter

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    ttfb_p50_ms: float
    body_bytes: int
    client_cpu_s: float
    error_statuses: dict[int, int]

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict."""
        return asdict(self)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


class _Tally:
    """Shared counters of one run."""

    def __init__(self, deadline: float, max_requests: int) -> None:
        self.deadline = deadline
        self.remaining = max_requests
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.errors = 0
        self.error_statuses: Counter[int] = Counter()
        self.body_bytes = 0

    def take(self) -> bool:
        """Whether another request may start."""
        if self.remaining <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.remaining -= 1
        return True


async def _connect(port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Connection, "127.0.0.1", port)
    return protocol


async def _worker(port: int, request: bytes, tally: _Tally) -> None:
    conn = await _connect(port)
    try:
        while tally.take():
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.send(request), REQUEST_TIMEOUT_S)
            except (TimeoutError, ConnectionError, httptools.HttpParserError):
                tally.errors += 1
                conn.close()
                conn = await _connect(port)
                continue
            finished = time.perf_counter()
            if status != 200:
                tally.errors += 1
                tally.error_statuses[status] += 1
            tally.latencies.append(finished - started)
            tally.ttfbs.append(conn.first_byte - started)
            tally.body_bytes += conn.body_bytes
            if conn.lost:
                conn = await _connect(port)
    finally:
        conn.close()


async def run_load(
    port: int,
    request: bytes,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int,
) -> LoadResult:
    """Drive ``concurrency`` connections until the deadline or the request budget."""
    cpu_before = time.process_time()
    started = time.perf_counter()
    tally = _Tally(started + duration_s, max_requests)
    workers = [_worker(port, request, tally) for _ in range(concurrency)]
    await asyncio.wait_for(asyncio.gather(*workers), duration_s + 2 * REQUEST_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    ms = 1000.0
    return LoadResult(
        requests=len(latencies),
        errors=tally.errors,
        duration_s=elapsed,
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=percentile(latencies, 0.50) * ms,
        p90_ms=percentile(latencies, 0.90) * ms,
        p99_ms=percentile(latencies, 0.99) * ms,
        mean_ms=(sum(latencies) / len(latencies) * ms) if latencies else 0.0,
        ttfb_p50_ms=percentile(sorted(tally.ttfbs), 0.50) * ms,
        body_bytes=tally.body_bytes,
        client_cpu_s=time.process_time() - cpu_before,
        error_statuses=dict(tally.error_statuses),
    )
