"""The request log on SQLite and PostgreSQL: one row per request with usage, cost and
timing; partial charges for clients that leave; nothing lost on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Gateway, start_gateway
from tests.gateway.helpers import (
    count_log_rows,
    fake_cost,
    parse_event_stream,
    stream_text,
    token_cost,
    wait_for_log_rows,
)
from tests.support.fake_openai import FakeOpenAI
from vaultgate.providers.tokens import estimate_text_tokens

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "log this request"}]
OFFLINE_IN = 100_000
OFFLINE_OUT = 400_000
PAINTER_256 = 4_000


def _sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key, max_retries=0)


def _assert_owned_by(row: dict[str, Any], gateway: Gateway) -> None:
    assert row["key_id"] == gateway.key_id
    assert row["user_id"] == gateway.user_id


def test_request_log_fake_chat_rows_carry_usage_cost_and_timing(gateway: Gateway) -> None:
    with _sdk(gateway) as sdk:
        plain = sdk.chat.completions.with_raw_response.create(
            model="fake-plain-text", messages=USER
        )
        streamed = {}
        for usage in (True, False):
            with sdk.chat.completions.with_streaming_response.create(
                model="fake-plain-text",
                messages=USER,
                stream=True,
                stream_options={"include_usage": usage},
            ) as response:
                list(response.iter_lines())
            streamed[usage] = response.headers["x-request-id"]
    ids = [plain.headers["x-request-id"], *streamed.values()]

    rows = wait_for_log_rows(gateway.database_url, ids)

    for request_id in ids:
        row = rows[request_id]
        _assert_owned_by(row, gateway)
        assert row["model"] == "fake-plain-text"
        assert row["provider"] == "fake"
        assert row["endpoint"] == "chat"
        assert row["status"] == 200
        assert row["attempts"] == 1
        assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 6)
        assert row["usage_estimated"] is False
        assert row["cost_micros"] == fake_cost(11, 6) == 23
        assert row["error"] is None
        assert row["latency_ms"] >= 0
        assert row["ttft_ms"] is not None
        assert 0 <= row["ttft_ms"] <= row["latency_ms"]
    assert rows[ids[0]]["stream"] is False
    assert rows[ids[1]]["stream"] is True
    assert rows[ids[2]]["stream"] is True


def test_request_log_offline_rows_charge_catalog_prices(gateway: Gateway) -> None:
    with _sdk(gateway) as sdk:
        text = sdk.chat.completions.with_raw_response.create(
            model="offline-small-text", messages=USER, max_tokens=7
        )
        reply = text.parse()
        picture = sdk.images.with_raw_response.generate(
            model="offline-painter-image", prompt="a boat", size="256x256", n=2
        )
    text_id = text.headers["x-request-id"]
    image_id = picture.headers["x-request-id"]

    rows = wait_for_log_rows(gateway.database_url, [text_id, image_id])

    assert reply.usage is not None
    chat_row = rows[text_id]
    _assert_owned_by(chat_row, gateway)
    assert (chat_row["model"], chat_row["provider"]) == ("offline-small-text", "offline")
    assert chat_row["prompt_tokens"] == reply.usage.prompt_tokens
    assert chat_row["completion_tokens"] == reply.usage.completion_tokens == 7
    assert chat_row["cost_micros"] == token_cost(
        reply.usage.prompt_tokens, 7, OFFLINE_IN, OFFLINE_OUT
    )
    image_row = rows[image_id]
    _assert_owned_by(image_row, gateway)
    assert (image_row["endpoint"], image_row["status"]) == ("images", 200)
    assert image_row["images"] == 2
    assert image_row["cost_micros"] == 2 * PAINTER_256
    assert image_row["prompt_tokens"] == image_row["completion_tokens"] == 0


def test_request_log_failed_requests_are_logged_with_status(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    url = gateway.base_url + "/v1/chat/completions"
    bodies = [
        ({"model": "gpt-99-text", "messages": USER}, 404),
        ({"model": "offline-small-text", "messages": USER, "top_p": 9}, 400),
        ({"model": "fake-error-503-text", "messages": USER}, 503),
        ({"model": "fake-error-400-text", "messages": USER, "stream": True}, 400),
    ]
    ids = {}
    for body, status in bodies:
        response = httpx.post(url, json=body, headers=headers, timeout=10)
        assert response.status_code == status
        ids[response.headers["x-request-id"]] = status

    rows = wait_for_log_rows(gateway.database_url, list(ids))

    for request_id, status in ids.items():
        row = rows[request_id]
        _assert_owned_by(row, gateway)
        assert row["status"] == status
        assert row["error"]
        assert row["cost_micros"] == 0
        assert row["completion_tokens"] == 0
    upstream_row = next(r for r in rows.values() if r["status"] == 503)
    # One deployment: tried, then retried once after a backoff (two rounds by default).
    assert (upstream_row["provider"], upstream_row["attempts"]) == ("fake", 2)


def test_request_log_client_disconnect_is_499_and_charged_for_streamed_tokens(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    slow = start_gateway(
        tmp_path,
        database_url,
        fake_upstream.base_url,
        extra_env={"VAULTGATE_OFFLINE_TOKEN_DELAY_MS": "50"},
    )
    try:
        headers = {"Authorization": f"Bearer {slow.key}"}
        body = {"model": "offline-small-text", "messages": USER}
        with httpx.Client(base_url=slow.base_url, headers=headers, timeout=30) as http:
            full = http.post("/v1/chat/completions", json=body).json()
            received: list[dict[str, Any]] = []
            with http.stream(
                "POST", "/v1/chat/completions", json={**body, "stream": True}
            ) as response:
                request_id = response.headers["x-request-id"]
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        received.append(parse_event_stream(line.encode() + b"\n\n")[0][0])
                    if len(received) == 2:
                        break
        row = wait_for_log_rows(database_url, [request_id])[request_id]
    finally:
        slow.server.stop()

    full_text = full["choices"][0]["message"]["content"]
    delivered = stream_text(received)
    assert delivered
    assert full_text.startswith(delivered)
    assert row["status"] == 499
    assert row["stream"] is True
    assert row["usage_estimated"] is True
    assert estimate_text_tokens(delivered) <= row["completion_tokens"]
    assert row["completion_tokens"] < estimate_text_tokens(full_text) // 2
    assert row["cost_micros"] == token_cost(
        row["prompt_tokens"], row["completion_tokens"], OFFLINE_IN, OFFLINE_OUT
    )
    assert "client disconnected" in slow.server.logs()


def test_request_log_sigterm_flushes_pending_rows(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    # A flush interval far longer than the test: rows can only reach the database through
    # the shutdown flush.
    lazy = start_gateway(
        tmp_path,
        database_url,
        fake_upstream.base_url,
        extra_env={"VAULTGATE_REQUEST_LOG_FLUSH_INTERVAL_S": "600"},
    )
    try:
        ids = []
        with _sdk(lazy) as sdk:
            for index in range(40):
                model = "offline-small-text" if index % 2 else "fake-plain-text"
                raw = sdk.chat.completions.with_raw_response.create(model=model, messages=USER)
                ids.append(raw.headers["x-request-id"])
        assert count_log_rows(database_url, ids) == 0
    finally:
        exit_code = lazy.server.stop(signal.SIGTERM)

    # uvicorn re-raises the captured signal after its graceful shutdown.
    assert exit_code in (0, -signal.SIGTERM)
    rows = wait_for_log_rows(database_url, ids, timeout=0.5)
    assert all(row["status"] == 200 for row in rows.values())
    assert "rows lost" not in lazy.server.logs()
