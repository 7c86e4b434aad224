"""Where the gateway spends its CPU on non-streamed chat requests.

``python bench/profile_gateway.py`` serves VaultGate on uvicorn against the bench upstream
and loads it at concurrency 1 then 8, profiled one of two ways:

* ``--profiler py-spy`` (default when a ``py-spy`` binary is found on PATH or given with
  ``--py-spy``): sampling from outside the process, one recording per concurrency, so the
  figures are not inflated by the profiler. Prints the top functions by own samples and by
  samples including callees.
* ``--profiler cprofile``: the server runs under ``python -m cProfile``; prints the top
  functions by own time and by cumulative time. Deterministic, but it adds a fixed cost
  to every Python call, so call-heavy code looks more expensive than it is.

Results go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
import uvloop

from loadgen import render_request, run_load
from servers import BENCH_DIR, CHAT_BODY, VARIANTS, VaultGateSetup, start_upstream

MAX_REQUESTS = 200_000
SAMPLE_RATE_HZ = 997
TOP = 25


async def _load(port: int, key: str, concurrency: int, duration_s: float) -> None:
    request = render_request(
        port, "/v1/chat/completions", orjson.dumps(CHAT_BODY), {"Authorization": f"Bearer {key}"}
    )
    result = await run_load(
        port, request, concurrency=concurrency, duration_s=duration_s, max_requests=MAX_REQUESTS
    )
    print(f"  c={concurrency}: {result.requests} requests, {result.rps:.0f} req/s", flush=True)


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:123)`` shortened to ``func (package/module.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    for anchor in ("site-packages", "src", "python3.11"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
    return f"{name} ({'/'.join(parts)})"


def summarise_collapsed(path: Path) -> str:
    """Top functions by own and by inclusive samples, from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "own samples:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(TOP)]
    lines += ["", "including callees:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(TOP)]
    return "\n".join(lines)


def _py_spy_record(py_spy: str, pid: int, out: Path, duration_s: float) -> subprocess.Popen[bytes]:
    argv = [
        py_spy, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE_HZ),
        "--duration", str(int(duration_s)), "--format", "raw", "--output", str(out),
        "--nonblocking",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def profile_with_py_spy(args: argparse.Namespace, work: Path, stamp: str) -> None:
    """One py-spy recording per concurrency, attached to the running server."""
    upstream, upstream_port = start_upstream(work, 20)
    try:
        setup = VaultGateSetup(work, upstream_port, args.src)
        key = setup.create_key()
        server, port = setup.start(VARIANTS["uvicorn"])
        try:
            await _load(port, key, 1, 1.0)
            for concurrency in (1, 8):
                out = BENCH_DIR / "results" / f"profile-{stamp}-c{concurrency}.txt"
                recorder = _py_spy_record(args.py_spy, server.pid, out, args.duration)
                await asyncio.sleep(0.5)
                await _load(port, key, concurrency, args.duration)
                _, err = recorder.communicate(timeout=args.duration + 30)
                if recorder.returncode != 0:
                    raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
                print(f"\n== py-spy, non-streamed, c={concurrency} ({out.name})")
                print(summarise_collapsed(out))
        finally:
            server.stop()
    finally:
        upstream.stop()


async def profile_with_cprofile(args: argparse.Namespace, work: Path, stamp: str) -> None:
    """The server under cProfile for both concurrencies; stats once it has stopped."""
    out = BENCH_DIR / "results" / f"profile-{stamp}.prof"
    upstream, upstream_port = start_upstream(work, 20)
    try:
        setup = VaultGateSetup(work, upstream_port, args.src)
        key = setup.create_key()
        python_args = ("-m", "cProfile", "-o", str(out))
        server, port = setup.start(VARIANTS["uvicorn"], python_args)
        try:
            for concurrency in (1, 8):
                await _load(port, key, concurrency, args.duration)
        finally:
            server.stop()
    finally:
        upstream.stop()
    stats = pstats.Stats(str(out))
    print(f"\n== cProfile, non-streamed, c=1 then c=8 ({out.name})")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)


def main() -> None:
    """Profile the gateway with the chosen profiler."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiler", choices=("py-spy", "cprofile"), default=None)
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per concurrency")
    parser.add_argument("--src", type=Path, default=None, help="VaultGate source tree to run")
    args = parser.parse_args()
    profiler = args.profiler or ("py-spy" if args.py_spy else "cprofile")
    if profiler == "py-spy" and not args.py_spy:
        parser.error("no py-spy binary: pip install py-spy, or pass --py-spy PATH")
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    job = profile_with_py_spy if profiler == "py-spy" else profile_with_cprofile
    with tempfile.TemporaryDirectory(prefix="vaultgate-profile-") as tmp:
        uvloop.run(job(args, Path(tmp), stamp))


if __name__ == "__main__":
    main()
