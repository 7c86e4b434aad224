"""Fixtures of the conformance cases: every test runs once per target (and, where it asks
for ``harness``, once whole and once streamed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.providers.conformance.harness import Harness
from tests.providers.conformance.protocol import AnyTarget, FakeServer
from tests.providers.conformance.targets import all_targets
from vaultgate.providers.http import HttpClient, Timeouts

TARGETS = all_targets()


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``case`` marker: the case name a target may declare not applicable."""
    config.addinivalue_line("markers", "case(name): the conformance case a test belongs to")


@pytest.fixture(scope="module", params=TARGETS, ids=[target.name for target in TARGETS])
def target(request: pytest.FixtureRequest) -> AnyTarget:
    """Each target in turn."""
    chosen: AnyTarget = request.param
    return chosen


@pytest.fixture(autouse=True)
def _applies(request: pytest.FixtureRequest, target: AnyTarget) -> None:
    """Skip, with the target's reason, a case (or a variant of it) it declares not
    applicable."""
    marker = request.node.get_closest_marker("case")
    assert marker is not None, "every conformance test names its case"
    case = marker.args[0]
    test_id = f"-{request.node.callspec.id}-"
    for key, reason in target.not_applicable.items():
        name, _, variant = key.partition("[")
        if name == case and (not variant or f"-{variant.rstrip(']')}-" in test_id):
            pytest.skip(f"{target.name}: {reason}")


@pytest.fixture(scope="module")
def server(target: AnyTarget) -> Iterator[FakeServer]:
    """The target's fake server, shared by a module's tests."""
    running = target.start()
    yield running
    running.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """A pooled client, closed after the test."""
    client = HttpClient(
        pool_size=8, pool_per_host=8, timeouts=Timeouts(connect=5, read=30, total=60)
    )
    yield client
    await client.aclose()


@pytest.fixture(params=[False, True], ids=["whole", "stream"])
def harness(
    request: pytest.FixtureRequest, target: AnyTarget, server: FakeServer, http: HttpClient
) -> Harness:
    """The target's adapter on its fake, answering whole or streamed."""
    provider = target.adapter(target.config(server), http)
    return Harness(target, server, provider, stream=request.param)


@pytest.fixture
def streamed(target: AnyTarget, server: FakeServer, http: HttpClient) -> Harness:
    """The target's adapter on its fake, answering streamed, for cases about streams."""
    return Harness(target, server, target.adapter(target.config(server), http), stream=True)
