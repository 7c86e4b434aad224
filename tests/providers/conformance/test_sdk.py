"""The fakes cannot drift: each provider's official SDK accepts every scenario its fake
answers, and reads the error scenarios as the errors they are."""

from __future__ import annotations

import pytest

from tests.providers.conformance.protocol import SCENARIOS, AnyTarget, FakeServer

ANSWERS = [s for s in SCENARIOS if not s.startswith("error-") and s != "stream-error"]
# Bad credentials are a 401, or a 403 where the provider answers them so (AWS).
ERRORS = {"error-400": {400}, "error-401": {401, 403}, "error-429": {429}, "error-500": {500}}


@pytest.mark.case("sdk")
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("scenario", ANSWERS)
def test_sdk_accepts_fake_answer(
    target: AnyTarget, server: FakeServer, scenario: str, stream: bool
) -> None:
    assert target.sdk_status(server, scenario, stream=stream) is None


@pytest.mark.case("sdk")
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("scenario", list(ERRORS))
def test_sdk_reads_fake_error_status(
    target: AnyTarget, server: FakeServer, scenario: str, stream: bool
) -> None:
    assert target.sdk_status(server, scenario, stream=stream) in ERRORS[scenario]


@pytest.mark.case("sdk")
def test_sdk_raises_on_fake_error_inside_stream(target: AnyTarget, server: FakeServer) -> None:
    assert target.sdk_status(server, "stream-error", stream=True) is not None


@pytest.mark.case("sdk")
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_sdk_accepts_fake_call_without_arguments(
    target: AnyTarget, server: FakeServer, stream: bool
) -> None:
    scenario = target.facts.no_argument_call
    if scenario is None:
        pytest.skip(f"{target.name}: its fake has no call without arguments")

    assert target.sdk_status(server, scenario, stream=stream) is None
