"""Cases about upstream failures: statuses mapped as the gateway expects, and failures
inside a stream raised, never ended as an empty success."""

from __future__ import annotations

import pytest

from tests.providers.conformance.harness import Harness
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import JsonObject

pytestmark = pytest.mark.anyio


@pytest.mark.case("upstream-errors")
@pytest.mark.parametrize(
    ("scenario", "status", "retryable"),
    [
        ("error-400", 400, False),  # the caller's to fix: no other deployment is tried
        ("error-401", 502, True),  # the gateway's own credentials: another may work
        ("error-429", 429, True),
        ("error-500", 502, True),
    ],
)
async def test_upstream_error_maps_to_gateway_status(
    harness: Harness, scenario: str, status: int, retryable: bool
) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await harness.run(harness.call(scenario), into=seen)

    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert seen == []
    key = harness.provider.config.api_key
    assert not key or key not in caught.value.message
    if scenario == "error-429":
        assert caught.value.headers.get("retry-after") == harness.target.facts.retry_after


@pytest.mark.case("stream-error")
async def test_stream_error_after_content_raises_mid_stream(streamed: Harness) -> None:
    seen: list[JsonObject] = []

    with pytest.raises(UpstreamError) as caught:
        await streamed.run(streamed.call("stream-error"), into=seen)

    assert caught.value.status >= 500 or caught.value.status == 429
    assert caught.value.retryable is True
    assert any(choice["delta"].get("content") for chunk in seen for choice in chunk["choices"]), (
        "some content came before the failure"
    )
    assert not any(choice.get("finish_reason") for chunk in seen for choice in chunk["choices"]), (
        "no choice finished"
    )
