"""What the routing layer (ordering, breakers, retry bookkeeping) costs a healthy request.

Runs the same trivial attempt many times directly and through ``Router.call`` with one and
with three deployments, and prints the CPU microseconds each adds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from vaultgate.billing.pricing import Pricing
from vaultgate.providers.base import Provider
from vaultgate.providers.catalog import Deployment, ModelEntry
from vaultgate.routing.breaker import Breakers
from vaultgate.routing.router import Router

ROUNDS = 200_000


@dataclass
class Trace:
    """The attempt bookkeeping the router writes to."""

    provider: str | None = None
    attempts: int = 0
    request_id: str = "req_bench"


async def _answer(provider: Provider, deployment: Deployment) -> str:
    return deployment.upstream


def _model(count: int) -> ModelEntry:
    deployments = tuple(Deployment(f"p{i}", f"m{i}", 1, i) for i in range(count))
    return ModelEntry(id="bench-text", type="text", deployments=deployments, pricing=Pricing())


async def _measure(label: str, run: object) -> float:
    started = time.process_time()
    for _ in range(ROUNDS):
        await run()  # type: ignore[operator]
    per_call = (time.process_time() - started) / ROUNDS * 1e6
    print(f"{label:34} {per_call:7.2f} µs CPU per request")
    return per_call


async def main() -> None:
    """Direct calls, then the router over one and three healthy deployments."""
    providers: dict[str, Provider] = {f"p{i}": object() for i in range(3)}  # type: ignore[misc]
    one, three = _model(1), _model(3)
    router = Router(providers, Breakers())
    direct = await _measure("direct attempt", lambda: _answer(providers["p0"], one.deployments[0]))
    single = await _measure("router, 1 deployment", lambda: router.call(one, Trace(), _answer))
    triple = await _measure("router, 3 deployments", lambda: router.call(three, Trace(), _answer))
    print(
        f"routing adds {single - direct:.2f} µs (1 deployment), "
        f"{triple - direct:.2f} µs (3 deployments)"
    )


if __name__ == "__main__":
    asyncio.run(main())
