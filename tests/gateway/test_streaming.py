"""The SSE wire format over raw HTTP, and upstream quirks as a client sees them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import (
    assert_error_object,
    assert_openai_error,
    fake_cost,
    parse_event_stream,
    stream_text,
    wait_for_log_rows,
)
from tests.support.fake_openai import FakeOpenAI
from vaultgate.providers.tokens import estimate_prompt_tokens, estimate_text_tokens

USER = [{"role": "user", "content": "stream to me"}]
FAKE_REPLY = "Hello from the fake upstream."


def _stream(
    http: httpx.Client, model: str, *, usage: bool | None = None
) -> tuple[httpx.Response, bytes]:
    body: dict[str, Any] = {"model": model, "messages": USER, "stream": True}
    if usage is not None:
        body["stream_options"] = {"include_usage": usage}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = response.read()
    return response, raw


def _upstream_calls(upstream: FakeOpenAI, upstream_model: str) -> int:
    return sum(1 for r in upstream.requests if r.body.get("model") == upstream_model)


@pytest.mark.parametrize("model", ["offline-small-text", "fake-plain-text", "fake-comments-text"])
@pytest.mark.parametrize("usage", [None, False, True])
def test_stream_wire_format_is_openai_sse(
    http: httpx.Client, model: str, usage: bool | None
) -> None:
    response, raw = _stream(http, model, usage=usage)
    chunks, done = parse_event_stream(raw)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert done
    assert raw.count(b"data: [DONE]") == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert {chunk["model"] for chunk in chunks} == {model}
    assert len({chunk["id"] for chunk in chunks}) == 1
    with_usage = [chunk for chunk in chunks if chunk.get("usage")]
    if usage:
        assert with_usage == [chunks[-1]]
        assert chunks[-1]["choices"] == []
    else:
        assert with_usage == []
        assert all(chunk["choices"] for chunk in chunks)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert all(reason is None for reason in finishes[:-1])


def test_stream_comments_quirk_reassembles_text(http: httpx.Client) -> None:
    _, raw = _stream(http, "fake-comments-text", usage=True)
    chunks, done = parse_event_stream(raw)

    assert done
    assert stream_text(chunks) == FAKE_REPLY
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_stream_no_usage_quirk_gets_estimated_usage(shared: Gateway, http: httpx.Client) -> None:
    response, raw = _stream(http, "fake-no-usage-text", usage=True)
    chunks, done = parse_event_stream(raw)

    assert done
    assert stream_text(chunks) == FAKE_REPLY
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == estimate_prompt_tokens(USER)
    assert usage["completion_tokens"] == estimate_text_tokens(FAKE_REPLY)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    request_id = response.headers["x-request-id"]
    row = wait_for_log_rows(shared.database_url, [request_id])[request_id]
    assert row["usage_estimated"] is True
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    assert row["cost_micros"] == fake_cost(usage["prompt_tokens"], usage["completion_tokens"])


def test_complete_no_usage_quirk_gets_estimated_usage(shared: Gateway, http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", json={"model": "fake-no-usage-text", "messages": USER}
    )

    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == estimate_prompt_tokens(USER)
    assert usage["completion_tokens"] == estimate_text_tokens(FAKE_REPLY)
    request_id = response.headers["x-request-id"]
    row = wait_for_log_rows(shared.database_url, [request_id])[request_id]
    assert row["usage_estimated"] is True
    assert row["completion_tokens"] == usage["completion_tokens"]


@pytest.mark.parametrize("model", ["fake-stream-error-after-2-text", "fake-cut-after-2-text"])
def test_stream_upstream_failure_after_first_byte_ends_with_error_event(
    shared: Gateway, http: httpx.Client, model: str
) -> None:
    response, raw = _stream(http, model, usage=True)
    events, done = parse_event_stream(raw)

    assert response.status_code == 200
    assert not done
    assert b"[DONE]" not in raw
    *chunks, last = events
    assert list(last) == ["error"]
    assert_error_object(last["error"])
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    delivered = stream_text(chunks)
    assert delivered == "Hello from"
    assert not any(chunk.get("usage") for chunk in chunks)
    request_id = response.headers["x-request-id"]
    row = wait_for_log_rows(shared.database_url, [request_id])[request_id]
    assert row["status"] >= 500
    assert row["error"]
    assert row["completion_tokens"] == estimate_text_tokens(delivered)
    assert row["cost_micros"] == fake_cost(row["prompt_tokens"], row["completion_tokens"])


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_client_error_as_500_is_400_and_not_retried(
    http: httpx.Client, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    before = _upstream_calls(fake_upstream, "client-error-as-500")
    body = {"model": "fake-client-error-as-500-text", "messages": USER, "stream": stream}

    response = http.post("/v1/chat/completions", json=body)

    error = assert_openai_error(response, 400)
    assert "prompt too long" in error["message"]
    assert response.headers["x-vaultgate-attempts"] == "1"
    assert _upstream_calls(fake_upstream, "client-error-as-500") == before + 1


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_malformed_body_is_503_not_500(http: httpx.Client, stream: bool) -> None:
    body = {"model": "fake-malformed-text", "messages": USER, "stream": stream}

    response = http.post("/v1/chat/completions", json=body)

    assert assert_openai_error(response, 503)["code"] == "no_provider_available"


@pytest.mark.parametrize("stream", [False, True])
def test_failover_served_by_backup_with_two_attempts(
    shared: Gateway, http: httpx.Client, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    before = _upstream_calls(fake_upstream, "error-503")
    body = {"model": "fake-failover-text", "messages": USER, "stream": stream}

    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = response.read()

    assert response.status_code == 200
    assert response.headers["x-vaultgate-provider"] == "fake-backup"
    assert response.headers["x-vaultgate-attempts"] == "2"
    assert _upstream_calls(fake_upstream, "error-503") == before + 1
    if stream:
        chunks, done = parse_event_stream(raw)
        assert done
        assert stream_text(chunks) == FAKE_REPLY
    else:
        assert response.json()["choices"][0]["message"]["content"] == FAKE_REPLY
    request_id = response.headers["x-request-id"]
    row = wait_for_log_rows(shared.database_url, [request_id])[request_id]
    assert (row["provider"], row["attempts"], row["status"]) == ("fake-backup", 2, 200)
