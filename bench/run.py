"""The VaultGate benchmark: the gateway against the same upstream called directly.

``python bench/run.py`` starts the bench upstream and VaultGate (behind uvicorn, granian,
and uvicorn with the INFO access log), then drives each with the same chat request,
non-streamed and streamed, at several concurrencies. It prints a table and writes JSON to
``bench/results/``. ``--quick`` takes about 30 seconds; the default run under 3 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvloop

from loadgen import render_request, run_load
from procs import Child, cpu_seconds, peak_rss_mb
from report import compare_with_direct, machine_info, markdown_table, source_info, write_json
from servers import (
    BENCH_DIR,
    CHAT_BODY,
    FLUSH_INTERVAL_S,
    STREAM_BODY,
    UPSTREAM_KEY,
    VARIANTS,
    VaultGateSetup,
    start_upstream,
)

MAX_REQUESTS = 200_000
MODES = {"json": CHAT_BODY, "stream": STREAM_BODY}
# The access-log variant only answers "what does INFO logging cost", so it runs less.
INFO_SCENARIOS = (("json", 1), ("json", 8))


@dataclass(frozen=True)
class Timing:
    """How long each scenario warms up and measures."""

    warmup_s: float
    duration_s: float


@dataclass(frozen=True)
class Target:
    """A server under load: its name in the table, port, API key and process."""

    name: str
    port: int
    key: str
    server: Child


async def measure(target: Target, mode: str, concurrency: int, timing: Timing) -> dict[str, Any]:
    """Warm up, then measure one scenario, with the server's CPU time around it."""
    port, server = target.port, target.server
    headers = {"Authorization": f"Bearer {target.key}"}
    request = render_request(port, "/v1/chat/completions", orjson.dumps(MODES[mode]), headers)
    await run_load(
        port, request, concurrency=concurrency, duration_s=timing.warmup_s,
        max_requests=MAX_REQUESTS,
    )  # fmt: skip
    # Let the request-log writer flush the warm-up rows so they are not billed here.
    await asyncio.sleep(FLUSH_INTERVAL_S + 0.1)
    cpu_before = cpu_seconds(server.pid)
    result = await run_load(
        port, request, concurrency=concurrency, duration_s=timing.duration_s,
        max_requests=MAX_REQUESTS,
    )  # fmt: skip
    await asyncio.sleep(FLUSH_INTERVAL_S + 0.1)
    server_cpu = cpu_seconds(server.pid) - cpu_before
    per_request = 1000 / result.requests if result.requests else 0.0
    row: dict[str, Any] = {"target": target.name, "mode": mode, "concurrency": concurrency}
    row.update(result.as_dict())
    row["server_cpu_s"] = server_cpu
    row["server_cpu_ms_per_req"] = server_cpu * per_request
    row["client_cpu_ms_per_req"] = result.client_cpu_s * per_request
    row["peak_rss_mb"] = peak_rss_mb(server.pid)
    print(
        f"  {target.name:13} {mode:6} c={concurrency:<3} {result.rps:8.0f} req/s  "
        f"p50 {result.p50_ms:7.3f} ms  p99 {result.p99_ms:7.3f} ms  "
        f"cpu {row['server_cpu_ms_per_req']:.3f} ms/req  errors {result.error_statuses or 0}",
        flush=True,
    )
    return row


def scenarios(variant: str, concurrencies: list[int]) -> list[tuple[str, int]]:
    """The (mode, concurrency) pairs a target runs."""
    if variant == "uvicorn-info":
        return [s for s in INFO_SCENARIOS if s[1] in concurrencies] or [("json", 1)]
    return [(mode, c) for mode in MODES for c in concurrencies]


async def run_all(args: argparse.Namespace, work_dir: Path) -> list[dict[str, Any]]:
    """Every scenario, direct first, then each server variant in turn."""
    timing = Timing(args.warmup, args.duration)
    rows = []
    upstream, upstream_port = start_upstream(work_dir, args.chunks)
    try:
        print("direct (upstream CPU per request shown)", flush=True)
        direct = Target("direct", upstream_port, UPSTREAM_KEY, upstream)
        for mode, c in scenarios("direct", args.concurrency):
            rows.append(await measure(direct, mode, c, timing))
        for name in args.servers:
            # A fresh data directory per variant, so no variant inherits a larger database.
            variant_dir = work_dir / name
            variant_dir.mkdir()
            setup = VaultGateSetup(variant_dir, upstream_port, args.src)
            key = setup.create_key()
            server, port = setup.start(VARIANTS[name])
            print(f"vaultgate on {name} (pid {server.pid})", flush=True)
            try:
                target = Target(name, port, key, server)
                for mode, c in scenarios(name, args.concurrency):
                    rows.append(await measure(target, mode, c, timing))
            finally:
                server.stop()
    finally:
        upstream.stop()
    return rows


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short scenarios (~30 s)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--servers", default="uvicorn,granian,uvicorn-info", help="variants")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--src", type=Path, default=None, help="VaultGate source tree to run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 0.7, 0.25
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown server variants {sorted(unknown)}; known: {sorted(VARIANTS)}")
    return args


def main() -> None:
    """Run the benchmark, print the table and write the JSON results."""
    args = parse_args()
    meta = {
        **machine_info(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "stream_chunks": args.chunks,
        "argv": sys.argv[1:],
        **source_info(args.src),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vaultgate-bench-") as tmp:
        rows = uvloop.run(run_all(args, Path(tmp)))
    compare_with_direct(rows)
    meta["wall_s"] = round(time.monotonic() - started, 1)
    out = args.out or BENCH_DIR / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, meta, rows)
    print()
    print(markdown_table(rows))
    print(f"\nwall time {meta['wall_s']} s; results in {out}")


if __name__ == "__main__":
    main()
