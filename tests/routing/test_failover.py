"""Failover end to end: a VaultGate whose models have two or three deployments on a faulty
upstream. For each fault: what the client gets, which deployments were tried in which
order, and what the account paid."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.helpers import assert_error_object, assert_openai_error, sqlite_url
from tests.routing.helpers import (
    FULL_REPLY,
    REQUEST_TIMEOUT_S,
    SECRETS,
    Answer,
    Deployments,
    RoutedGateway,
    chat,
    chat_body,
    estimated_cost,
    ok_cost,
    settled,
    start_routed,
)
from tests.support.faulty_upstream import REPLY_WORDS, FaultyUpstream
from tests.support.money import books, wait_for_books

# Faults before any content: the next deployment answers, streamed or not.
BEFORE_CONTENT = [
    "status-500", "status-502", "status-503", "status-429", "status-401", "hang-headers",
    "reset", "malformed-json", "role-then-error", "role-then-reset",
]  # fmt: skip
# Faults after content: a whole answer fails over; a stream ends with an error event.
AFTER_CONTENT = {
    "hang-mid-stream-2": ("timeout", "upstream_timeout"),
    "reset-mid-stream-2": ("upstream_error", "upstream_error"),
    "cut-after-2": ("upstream_error", "upstream_error"),
    "error-event-after-2": ("upstream_error", "upstream_error"),
}
MODES = {False: "whole", True: "stream"}
DELIVERED = "".join(REPLY_WORDS[:2])
CREDIT = 100_000_000


def failover_model(fault: str, stream: bool) -> str:
    """The model whose first deployment has ``fault`` and whose second is healthy."""
    return f"fo-{fault}-{MODES[stream]}-text"


def _models() -> dict[str, Deployments]:
    models: dict[str, Deployments] = {}
    for fault in [*BEFORE_CONTENT, *AFTER_CONTENT]:
        for stream, mode in MODES.items():
            label = f"{fault}-{mode}"
            models[failover_model(fault, stream)] = [("p1", f"{fault}@{mode}"),
                                                     ("p2", f"ok@{label}")]  # fmt: skip
    models.update({
        "bad-request-text": [("p1", "status-400@br"), ("p2", "ok@br")],
        "slow-text": [("p1", "slow-300@sl"), ("p2", "ok@sl")],
        "retry-after-text": [("p1", "status-429-retry-30@ra"), ("p2", "ok@ra")],
        "all-fail-text": [("p1", "status-500@af"), ("p2", "status-401@af"), ("p3", "reset@af")],
        "all-429-text": [("p1", "status-429-retry-7@al"), ("p2", "status-429-retry-5@al")],
        "bounded-text": [("p1", "status-500@b"), ("p2", "status-502@b"), ("p3", "status-503@b")],
        "disconnect-text": [("patient", "hang-mid-stream-2@dc")],
        "charges-text": [("p1", "status-503@ch"), ("p2", "ok@ch")],
        "charges-role-text": [("p1", "role-then-error@ch"), ("p2", "ok@chr")],
        "charges-400-text": [("p1", "status-400@ch")],
        "charges-all-fail-text": [("p1", "status-500@cf"), ("p2", "reset@cf")],
        "charges-broken-text": [("p1", "error-event-after-2@cb"), ("p2", "ok@cb")],
        "charges-cut-text": [("p1", "cut-after-2@cc"), ("p2", "ok@cc")],
    })  # fmt: skip
    return models


MODELS = _models()


@pytest.fixture(scope="module")
def routed(
    tmp_path_factory: pytest.TempPathFactory, faulty_server: FaultyUpstream
) -> Iterator[RoutedGateway]:
    """One VaultGate on SQLite serving every model of this module."""
    tmp_path = tmp_path_factory.mktemp("failover")
    running = start_routed(tmp_path, sqlite_url(tmp_path), faulty_server, MODELS)
    yield running
    running.stop()


def _assert_no_secret(raw: bytes | str) -> None:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    for secret in SECRETS.values():
        assert secret not in text


def _assert_clean_stream(answer: Answer) -> None:
    """One role chunk, the whole reply, a finish reason and ``[DONE]``."""
    chunks, done = answer.events()
    assert done
    roles = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("role")]
    assert len(roles) == 1
    assert answer.text() == FULL_REPLY
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(chunk["model"] == chunks[0]["model"] for chunk in chunks)


def _assert_served_by_second(answer: Answer, model: str) -> None:
    assert answer.status == 200, answer.raw[:500]
    assert answer.headers["x-vaultgate-provider"] == "p2"
    assert answer.headers["x-vaultgate-attempts"] == "2"
    _assert_no_secret(answer.raw)
    if answer.headers["content-type"].startswith("text/event-stream"):
        _assert_clean_stream(answer)
    else:
        body = answer.json()
        assert body["model"] == model
        assert body["choices"][0]["message"]["content"] == FULL_REPLY


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fault", BEFORE_CONTENT)
def test_failover_fault_before_content_next_deployment_answers(
    routed: RoutedGateway, faulty: FaultyUpstream, fault: str, stream: bool
) -> None:
    model = failover_model(fault, stream)

    answer = chat(routed.gateway, chat_body(model, stream=stream), faulty)

    _assert_served_by_second(answer, model)
    mode = MODES[stream]
    assert faulty.deployments() == [f"p1/{fault}@{mode}", f"p2/ok@{fault}-{mode}"]
    row, charges = settled(routed.gateway.database_url, answer.request_id)
    assert (row["status"], row["provider"], row["attempts"]) == (200, "p2", 2)
    assert row["cost_micros"] == row["charged_micros"] == ok_cost()
    assert charges == [ok_cost()]


@pytest.mark.parametrize("fault", list(AFTER_CONTENT))
def test_failover_whole_answer_broken_midway_next_deployment_answers(
    routed: RoutedGateway, faulty: FaultyUpstream, fault: str
) -> None:
    model = failover_model(fault, False)

    answer = chat(routed.gateway, chat_body(model), faulty)

    _assert_served_by_second(answer, model)
    assert faulty.deployments() == [f"p1/{fault}@whole", f"p2/ok@{fault}-whole"]


@pytest.mark.parametrize("fault", list(AFTER_CONTENT))
def test_failover_stream_broken_after_content_ends_with_error_event(
    routed: RoutedGateway, faulty: FaultyUpstream, fault: str
) -> None:
    model = failover_model(fault, True)

    answer = chat(routed.gateway, chat_body(model, stream=True, usage=True), faulty)

    assert answer.status == 200
    assert answer.headers["x-vaultgate-provider"] == "p1"
    assert answer.headers["x-vaultgate-attempts"] == "1"
    chunks, done = answer.events()
    assert not done
    assert answer.text() == DELIVERED
    error = assert_error_object(chunks[-1]["error"])
    assert (error["type"], error["code"]) == AFTER_CONTENT[fault]
    assert all("error" not in chunk for chunk in chunks[:-1])
    assert not any(chunk.get("usage") for chunk in chunks)
    _assert_no_secret(answer.raw)
    # Content was sent, so no other deployment may add to it.
    assert faulty.deployments() == [f"p1/{fault}@stream"]
    prompt, completion, cost = estimated_cost(DELIVERED)
    row, charges = settled(routed.gateway.database_url, answer.request_id)
    assert row["status"] in (502, 504)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["usage_estimated"] is True
    assert row["cost_micros"] == row["charged_micros"] == cost
    assert charges == [cost]


def test_failover_hang_mid_stream_ends_after_idle_timeout(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    answer = chat(routed.gateway, chat_body(failover_model("hang-mid-stream-2", True),
                                            stream=True))  # fmt: skip

    # idle = 1 s: well before the upstream's own 10 s stall ends.
    assert answer.elapsed_s < 8
    faulty.wait_for(lambda: faulty.calls[0].ended is not None, timeout=5)
    assert faulty.calls[0].outcome == "client-closed"


def test_failover_hang_before_headers_first_byte_timeout_then_next(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    answer = chat(routed.gateway, chat_body(failover_model("hang-headers", False)))

    _assert_served_by_second(answer, failover_model("hang-headers", False))
    first, second = faulty.calls
    # first_byte = 1 s: the second deployment is asked about a second after the first.
    assert 0.9 <= second.started - first.started < 8
    faulty.wait_for(lambda: first.ended is not None, timeout=5)
    assert first.outcome == "client-closed"


def test_failover_429_with_retry_after_tries_next_without_waiting(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    answer = chat(routed.gateway, chat_body("retry-after-text"))

    _assert_served_by_second(answer, "retry-after-text")
    first, second = faulty.calls
    assert (first.deployment, second.deployment) == ("p1/status-429-retry-30@ra", "p2/ok@ra")
    # The provider asked for 30 s; the next deployment is tried long before that.
    assert second.started - first.started < 10
    assert answer.elapsed_s < 10


def test_failover_429_retry_after_keeps_deployment_aside_for_that_long(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    chat(routed.gateway, chat_body("retry-after-text"))
    faulty.reset()

    answer = chat(routed.gateway, chat_body("retry-after-text"))

    assert answer.status == 200
    assert answer.headers["x-vaultgate-attempts"] == "1"
    assert faulty.deployments() == ["p2/ok@ra"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_failover_upstream_400_returned_at_once_without_retry(
    routed: RoutedGateway, faulty: FaultyUpstream, stream: bool
) -> None:
    answer = chat(routed.gateway, chat_body("bad-request-text", stream=stream))

    response = httpx.Response(answer.status, headers=answer.headers, content=answer.raw)
    error = assert_openai_error(response, 400)
    assert error["code"] == "upstream_rejected_request"
    assert "fault 400" in error["message"]
    _assert_no_secret(answer.raw)
    assert answer.headers["x-vaultgate-attempts"] == "1"
    assert answer.headers["x-vaultgate-provider"] == "p1"
    assert faulty.deployments() == ["p1/status-400@br"]


def test_failover_slow_upstream_within_timeouts_answers(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    whole = chat(routed.gateway, chat_body("slow-text"))
    streamed = chat(routed.gateway, chat_body("slow-text", stream=True))

    for answer in (whole, streamed):
        assert answer.status == 200
        assert answer.headers["x-vaultgate-provider"] == "p1"
        assert answer.headers["x-vaultgate-attempts"] == "1"
        assert answer.text() == FULL_REPLY
    _assert_clean_stream(streamed)
    assert faulty.deployments() == ["p1/slow-300@sl", "p1/slow-300@sl"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_failover_every_deployment_failing_503_without_secrets(
    routed: RoutedGateway, faulty: FaultyUpstream, stream: bool
) -> None:
    answer = chat(routed.gateway, chat_body("all-fail-text", stream=stream))

    response = httpx.Response(answer.status, headers=answer.headers, content=answer.raw)
    error = assert_openai_error(response, 503)
    assert error["code"] == "no_provider_available"
    assert "Every provider of 'all-fail-text' failed (4 attempts)" in error["message"]
    _assert_no_secret(answer.raw)
    assert "Bearer sk-" not in answer.raw.decode()
    assert answer.headers["x-vaultgate-attempts"] == "4"
    # Two rounds in priority order, cut short by max_attempts = 4.
    assert faulty.deployments() == [
        "p1/status-500@af", "p2/status-401@af", "p3/reset@af", "p1/status-500@af",
    ]  # fmt: skip
    row, charges = settled(routed.gateway.database_url, answer.request_id)
    assert (row["status"], row["attempts"], row["charged_micros"]) == (503, 4, 0)
    assert charges == []


def test_failover_every_deployment_rate_limiting_429_with_retry_after(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    answer = chat(routed.gateway, chat_body("all-429-text"))

    response = httpx.Response(answer.status, headers=answer.headers, content=answer.raw)
    error = assert_openai_error(response, 429)
    assert error["code"] == "upstream_rate_limited"
    # The shortest wait any deployment asked for (5 s), less what has passed since.
    assert 1 <= int(answer.headers["retry-after"]) <= 5
    _assert_no_secret(answer.raw)
    # Both are cooling for their Retry-After, so the second round calls neither.
    assert faulty.deployments() == ["p1/status-429-retry-7@al", "p2/status-429-retry-5@al"]


def test_failover_max_attempts_two_calls_only_two_deployments(
    tmp_path: Path, faulty: FaultyUpstream
) -> None:
    env = {"VAULTGATE_RETRY_MAX_ATTEMPTS": "2"}
    bounded = start_routed(tmp_path, sqlite_url(tmp_path), faulty, MODELS, env=env)
    try:
        answer = chat(bounded.gateway, chat_body("bounded-text"))
    finally:
        bounded.stop()

    response = httpx.Response(answer.status, headers=answer.headers, content=answer.raw)
    assert_openai_error(response, 503)
    assert answer.headers["x-vaultgate-attempts"] == "2"
    assert faulty.deployments() == ["p1/status-500@b", "p2/status-502@b"]


def test_failover_client_disconnect_mid_stream_closes_upstream(
    routed: RoutedGateway, faulty: FaultyUpstream
) -> None:
    gateway = routed.gateway
    headers = {"authorization": f"Bearer {gateway.key}"}
    body = chat_body("disconnect-text", stream=True)
    received = b""
    with (
        httpx.Client(timeout=REQUEST_TIMEOUT_S) as client,
        client.stream("POST", gateway.base_url + "/v1/chat/completions",
                      json=body, headers=headers) as response,
    ):  # fmt: skip
        assert response.status_code == 200
        for part in response.iter_raw():
            received += part
            if REPLY_WORDS[1].encode() in received:
                break
    left = time.monotonic()

    (call,) = faulty.calls
    # The upstream would stall for 10 s and VaultGate's idle limit is 30 s: only the
    # client leaving can end the exchange this soon.
    faulty.wait_for(lambda: call.ended is not None, timeout=5)
    assert call.outcome == "client-closed"
    assert call.ended is not None
    assert call.ended - left < 5
    _, completion, cost = estimated_cost(DELIVERED)
    row, charges = settled(gateway.database_url, response.headers["x-request-id"])
    assert row["status"] == 499
    assert (row["completion_tokens"], row["charged_micros"]) == (completion, cost)
    assert charges == [cost]


def _run_charged_requests(routed: RoutedGateway, faulty: FaultyUpstream) -> dict[str, Answer]:
    gateway = routed.gateway
    return {
        "failover": chat(gateway, chat_body("charges-text")),
        "failover-stream": chat(gateway, chat_body("charges-text", stream=True)),
        "role": chat(gateway, chat_body("charges-role-text", stream=True)),
        "rejected": chat(gateway, chat_body("charges-400-text")),
        "all-fail": chat(gateway, chat_body("charges-all-fail-text")),
        "broken": chat(gateway, chat_body("charges-broken-text", stream=True), faulty),
        "cut": chat(gateway, chat_body("charges-cut-text", stream=True), faulty),
    }


def test_charges_failover_and_broken_streams_bill_only_what_was_delivered(
    tmp_path: Path, database_url: str, faulty: FaultyUpstream
) -> None:
    routed = start_routed(tmp_path, database_url, faulty, MODELS)
    try:
        answers = _run_charged_requests(routed, faulty)
    finally:
        routed.stop()

    statuses = {name: answer.status for name, answer in answers.items()}
    assert statuses == {
        "failover": 200, "failover-stream": 200, "role": 200, "rejected": 400,
        "all-fail": 503, "broken": 200, "cut": 200,
    }  # fmt: skip
    _, _, partial = estimated_cost(DELIVERED)
    expected = {
        "failover": ok_cost(), "failover-stream": ok_cost(), "role": ok_cost(),
        "rejected": 0, "all-fail": 0, "broken": partial, "cut": partial,
    }  # fmt: skip
    gateway = routed.gateway
    final = wait_for_books(gateway.database_url, gateway.user_id, gateway.key_id,
                           lambda b: b.holds == 0 and b.request_logs >= len(answers))  # fmt: skip
    for name, answer in answers.items():
        row, charges = settled(gateway.database_url, answer.request_id)
        assert row["charged_micros"] == expected[name], name
        assert charges == ([expected[name]] if expected[name] else []), name
    assert final.charged_micros == sum(expected.values())
    assert final.balance == final.ledger_sum == CREDIT - sum(expected.values())
    assert books(gateway.database_url, gateway.user_id, gateway.key_id) == final
