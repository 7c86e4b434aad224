"""aiohttp against httpx as VaultGate's upstream client: CPU per request.

``python bench/http_clients.py`` starts the bench upstream, then runs each client in a
process of its own doing keep-alive POSTs of the same JSON body, read the way the gateway
reads them (whole body then ``orjson.loads``; or the stream chunk by chunk), and reports
the client process's CPU time per request. The bench load generator's bare httptools
client is included as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop

from loadgen import render_request, run_load
from servers import BENCH_DIR, UPSTREAM_KEY, start_upstream

CLIENTS = ("aiohttp", "httpx", "httptools-floor")
BODY = {
    "model": "bench-upstream",
    "messages": [{"role": "user", "content": "Say hello and introduce yourself."}],
    "max_tokens": 64,
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
HEADERS = {
    "Authorization": f"Bearer {UPSTREAM_KEY}",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
PATH = "/v1/chat/completions"
Send = Callable[[bytes, bool], Awaitable[int]]
Tally = tuple[int, float, float]


async def _drive(
    send: Send, *, stream: bool, concurrency: int, requests: int, limit_s: float
) -> Tally:
    """``requests`` calls over ``concurrency`` tasks: (done, CPU seconds, wall seconds)."""
    body = orjson.dumps(STREAM_BODY if stream else BODY)
    deadline = time.perf_counter() + limit_s
    done = 0

    async def worker(count: int) -> None:
        nonlocal done
        for _ in range(count):
            if time.perf_counter() > deadline:
                return
            await send(body, stream)
            done += 1

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return done, time.process_time() - cpu, wall


async def _with_aiohttp(url: str, run: Callable[[Send], Awaitable[Any]]) -> Any:
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=256, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes, stream: bool) -> int:
            async with session.post(url, data=body, headers=HEADERS) as response:
                if stream:
                    size = 0
                    async for data in response.content.iter_any():
                        size += len(data)
                    return size
                return len(orjson.loads(await response.read()))

        return await run(send)


async def _with_httpx(url: str, run: Callable[[Send], Awaitable[Any]]) -> Any:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def send(body: bytes, stream: bool) -> int:
            if not stream:
                response = await client.post(url, content=body, headers=HEADERS)
                return len(orjson.loads(response.content))
            size = 0
            async with client.stream("POST", url, content=body, headers=HEADERS) as response:
                async for data in response.aiter_raw():
                    size += len(data)
            return size

        return await run(send)


async def _floor(
    port: int, stream: bool, concurrency: int, requests: int, limit_s: float
) -> Tally:
    body = orjson.dumps(STREAM_BODY if stream else BODY)
    request = render_request(port, PATH, body, {"Authorization": HEADERS["Authorization"]})
    result = await run_load(
        port, request, concurrency=concurrency, duration_s=limit_s, max_requests=requests
    )
    return result.requests, result.client_cpu_s, result.duration_s


async def measure_client(client: str, port: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (mode, concurrency) of one client, after a warm-up."""
    url = f"http://127.0.0.1:{port}{PATH}"
    rows = []
    for stream in (False, True):
        for concurrency in args.concurrency:

            async def run(send: Send, stream: bool = stream, c: int = concurrency) -> Any:
                await _drive(send, stream=stream, concurrency=c, requests=200, limit_s=2)
                return await _drive(
                    send, stream=stream, concurrency=c, requests=args.requests, limit_s=30
                )

            if client == "aiohttp":
                done, cpu, wall = await _with_aiohttp(url, run)
            elif client == "httpx":
                done, cpu, wall = await _with_httpx(url, run)
            else:
                await _floor(port, stream, concurrency, 200, 2)
                done, cpu, wall = await _floor(port, stream, concurrency, args.requests, 30)
            rows.append(
                {
                    "client": client,
                    "mode": "stream" if stream else "json",
                    "concurrency": concurrency,
                    "requests": done,
                    "cpu_us_per_req": cpu / done * 1e6 if done else None,
                    "rps": done / wall if wall else None,
                }
            )
    return rows


def _run_child(client: str, port: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    argv = [sys.executable, __file__, "--child", client, "--port", str(port)]
    argv += ["--requests", str(args.requests), "--concurrency", args.concurrency_text]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{client} run failed:\n{done.stderr}")
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    print("| client | mode | c | requests | CPU µs/req | req/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['client']} | {r['mode']} | {r['concurrency']} | {r['requests']} "
            f"| {r['cpu_us_per_req']:.0f} | {r['rps']:.0f} |"
        )


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per scenario")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.concurrency_text = args.concurrency
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    return args


def main() -> None:
    """Measure every client against one upstream, or (as a child) one client."""
    args = parse_args()
    if args.child:
        rows = uvloop.run(measure_client(args.child, args.port, args))
        print(json.dumps(rows))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="vaultgate-clients-") as tmp:
        upstream, port = start_upstream(Path(tmp), args.chunks)
        try:
            for client in CLIENTS:
                rows += _run_child(client, port, args)
        finally:
            upstream.stop()
    out = BENCH_DIR / "results" / f"http-clients-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    _print_table(rows)
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()
