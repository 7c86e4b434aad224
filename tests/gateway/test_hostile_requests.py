"""Hostile clients and hostile upstreams, end to end over real HTTP: every byte forwarded is
paid for, huge numbers and odd encodings are refused with OpenAI-shaped errors, a body that
never arrives times out, and usage or headers no provider could honestly send are neither
billed nor relayed."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import FAKE_UPSTREAM_KEY, Gateway
from tests.gateway.helpers import (
    assert_openai_error,
    fake_cost,
    start_with_config,
    wait_for_log_rows,
)
from tests.support.fake_openai import FakeOpenAI
from tests.support.hostile_openai import HostileOpenAI

CHAT = "/v1/chat/completions"
PAYLOAD = "x" * 400_000
HI = {"role": "user", "content": "hi"}
BODY_TIMEOUT_S = 0.5
HOSTILE_MODELS = {
    "usage-huge": "usage-prompt-1000000000000",
    "usage-negative": "usage-completion--3",
    "retry-after-huge": "retry-after-99999999999999999999",
    "retry-after-inf": "retry-after-inf",
    "html": "html-503",
    "choices-empty": "choices-empty",
    "content-number": "content-number",
    "chunk-choices-string": "chunk-choices-string",
}


def _model(model_id: str, provider: str, upstream: str) -> list[str]:
    return [
        "[[models]]", f'id = "{model_id}"', f'provider = "{provider}"',
        f'upstream = "{upstream}"', 'pricing = { input = "1.00", output = "2.00" }', "",
    ]  # fmt: skip


def _config(fake: FakeOpenAI, hostile: HostileOpenAI) -> str:
    lines = [
        "[providers.fake]", 'format = "openai"', f'base_url = "{fake.base_url}"',
        'api_key_env = "FAKE_UPSTREAM_KEY"', "",
        "[providers.hostile]", 'format = "openai"', f'base_url = "{hostile.base_url}"', "",
    ]  # fmt: skip
    # The fake upstream bills 100,000 (or 40,000) prompt tokens whatever it is sent.
    lines += _model("bill-100k-text", "fake", "usage-100000-5")
    lines += _model("bill-40k-text", "fake", "usage-40000-5")
    for name, upstream in HOSTILE_MODELS.items():
        lines += _model(f"hostile-{name}-text", "hostile", upstream)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileOpenAI]:
    """The hostile upstream, shared by the module."""
    server = HostileOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI, hostile: HostileOpenAI
) -> Iterator[Gateway]:
    """A gateway in front of both upstreams that waits BODY_TIMEOUT_S for a request body."""
    tmp_path: Path = tmp_path_factory.mktemp("hostile")
    running = start_with_config(
        tmp_path, _config(fake_upstream, hostile),
        extra_env={"FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY,
                   "VAULTGATE_BODY_READ_TIMEOUT_S": str(BODY_TIMEOUT_S)},
    )  # fmt: skip
    yield running
    running.server.stop()


@pytest.fixture(scope="module")
def sdk(guarded: Gateway) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the gateway, without client-side retries."""
    with openai.OpenAI(base_url=guarded.api_base, api_key=guarded.key, max_retries=0) as client:
        yield client


def _post(gateway: Gateway, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.base_url + CHAT, content=content, timeout=30,
        headers={"Authorization": f"Bearer {gateway.key}",
                 "content-type": "application/json", **headers},
    )  # fmt: skip


def _row(gateway: Gateway, request_id: str) -> dict[str, Any]:
    return wait_for_log_rows(gateway.database_url, [request_id])[request_id]


# D1: the hold bounds everything forwarded, so the charge is the cost.

BILLED_CASES: dict[str, tuple[list[Any], dict[str, Any]]] = {
    "extra-message-field": ([{**HI, "extra": PAYLOAD}], {}),
    "top-level-prediction": ([HI], {"prediction": {"type": "content", "content": PAYLOAD}}),
    "image-data-url": ([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PAYLOAD}},
    ]}], {}),
}  # fmt: skip


@pytest.mark.parametrize("case", BILLED_CASES)
def test_hostile_large_forwarded_payload_is_charged_its_full_cost(
    sdk: openai.OpenAI, guarded: Gateway, case: str
) -> None:
    messages, extra = BILLED_CASES[case]

    raw = sdk.chat.completions.with_raw_response.create(
        model="bill-100k-text", messages=messages, extra_body=extra
    )
    row = _row(guarded, raw.headers["x-request-id"])

    assert raw.parse().usage is not None
    assert row["cost_micros"] == fake_cost(100_000, 5)
    assert row["charged_micros"] == row["cost_micros"]


def test_hostile_short_image_link_is_charged_its_full_cost(
    sdk: openai.OpenAI, guarded: Gateway
) -> None:
    part = {"type": "image_url", "image_url": {"url": "http://img.example/a.png"}}

    raw = sdk.chat.completions.with_raw_response.create(
        model="bill-40k-text", messages=[{"role": "user", "content": [part]}]
    )
    row = _row(guarded, raw.headers["x-request-id"])

    assert row["charged_micros"] == row["cost_micros"] == fake_cost(40_000, 5)


@pytest.mark.parametrize("kind", ["input_text", "blob"])
def test_hostile_content_part_type_openai_refuses_is_400(sdk: openai.OpenAI, kind: str) -> None:
    part = {"type": kind, "text": PAYLOAD}

    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="bill-100k-text",
            messages=[{"role": "user", "content": [part]}],  # type: ignore[list-item]
        )

    assert caught.value.status_code == 400
    assert caught.value.body["param"] == "messages[0].content[0].type"  # type: ignore[index]
    assert caught.value.body["code"] == "invalid_value"  # type: ignore[index]


# D3: integers that would overflow a hold are refused.


@pytest.mark.parametrize(
    ("field", "value", "n"),
    [
        ("max_tokens", 2**63 - 1, 1),
        ("max_tokens", 2**63, 1),
        ("max_tokens", 2**64 - 1, 1),
        ("max_tokens", 2**62, 128),
        ("max_completion_tokens", 2**63 - 1, 1),
    ],
)
def test_hostile_huge_output_limit_is_400_naming_param(
    sdk: openai.OpenAI, field: str, value: int, n: int
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="bill-100k-text", messages=[HI], n=n, extra_body={field: value}
        )

    assert caught.value.body["param"] == field  # type: ignore[index]
    assert "2147483647" in caught.value.body["message"]  # type: ignore[index]


# D9: a body that never arrives.


def test_hostile_body_shorter_than_declared_length_gets_408(guarded: Gateway) -> None:
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {guarded.key}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", guarded.server.port), timeout=10) as conn:
        conn.sendall(head.encode() + b'{"model":')
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = conn.recv(65536)
            if not piece:
                break
            answer += piece

    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 408 ")
    error = orjson.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert error["type"] == "invalid_request_error"


# D10: encodings, tools, links, styles and names.


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
def test_hostile_encoded_body_is_415(guarded: Gateway, encoding: str) -> None:
    body = gzip.compress(orjson.dumps({"model": "bill-100k-text", "messages": [HI]}))

    error = assert_openai_error(_post(guarded, body, **{"content-encoding": encoding}), 415)

    assert error["code"] == "unsupported_content_encoding"
    assert encoding in error["message"]


def test_hostile_identity_encoding_is_accepted(guarded: Gateway) -> None:
    body = orjson.dumps({"model": "bill-40k-text", "messages": [HI]})

    assert _post(guarded, body, **{"content-encoding": "identity"}).status_code == 200


BAD_CHAT: dict[str, tuple[dict[str, Any], str]] = {
    "tools-number": ({"tools": [5]}, "tools[0]"),
    "tool-without-name": ({"tools": [{"type": "function", "function": {}}]},
                          "tools[0].function.name"),
    "tool-choice-undeclared": ({
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
    "image-javascript-url": ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}}]}]},
        "messages[0].content[0].image_url.url"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_CHAT)
def test_hostile_invalid_tools_and_links_are_400_naming_param(guarded: Gateway, case: str) -> None:
    fields, param = BAD_CHAT[case]
    body = {"model": "bill-40k-text", "messages": [HI], **fields}

    error = assert_openai_error(_post(guarded, orjson.dumps(body)), 400)

    assert error["param"] == param


def test_hostile_image_style_number_is_400(guarded: Gateway) -> None:
    response = httpx.post(
        guarded.base_url + "/v1/images/generations", timeout=30,
        headers={"Authorization": f"Bearer {guarded.key}"},
        json={"model": "offline-painter-image", "prompt": "a cat", "style": 5},
    )  # fmt: skip

    assert assert_openai_error(response, 400)["param"] == "style"


def test_hostile_huge_model_name_is_truncated_in_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="m" * 100_000, messages=[HI])  # type: ignore[list-item]

    message = caught.value.body["message"]  # type: ignore[index]
    assert "m" * 100 in message
    assert len(message) < 300


# D6: what a hostile upstream reports is not trusted.


def test_hostile_absurd_usage_is_replaced_by_estimate(
    sdk: openai.OpenAI, guarded: Gateway
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="hostile-usage-huge-text", messages=[HI]
    )
    row = _row(guarded, raw.headers["x-request-id"])
    usage = raw.parse().usage

    assert usage is not None
    assert usage.prompt_tokens < 1000
    assert row["usage_estimated"] is True
    assert row["prompt_tokens"] < 1000
    assert row["cost_micros"] == row["charged_micros"] < 1000


def test_hostile_absurd_usage_in_stream_is_replaced_by_estimate(
    sdk: openai.OpenAI, guarded: Gateway
) -> None:
    with sdk.chat.completions.with_streaming_response.create(
        model="hostile-usage-huge-text", messages=[HI], stream=True,
        stream_options={"include_usage": True},
    ) as response:  # fmt: skip
        chunks = list(response.parse())
    row = _row(guarded, response.headers["x-request-id"])

    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens < 1000
    assert row["usage_estimated"] is True
    assert row["cost_micros"] == row["charged_micros"] < 1000


def test_hostile_negative_usage_is_estimated_not_free(
    sdk: openai.OpenAI, guarded: Gateway
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="hostile-usage-negative-text", messages=[HI]
    )
    row = _row(guarded, raw.headers["x-request-id"])

    assert row["usage_estimated"] is True
    assert row["completion_tokens"] > 0
    assert row["charged_micros"] == row["cost_micros"] > 0


@pytest.mark.parametrize(
    ("name", "says"),
    [("choices-empty", "without choices"), ("content-number", "malformed chat completion")],
)
def test_hostile_completion_without_valid_choice_is_a_provider_failure(
    sdk: openai.OpenAI, name: str, says: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model=f"hostile-{name}-text", messages=[HI])

    # Each attempt failed with 502; with no deployment left the router answers 503.
    assert caught.value.status_code == 503
    assert says in caught.value.message


def test_hostile_stream_chunk_with_bad_choices_never_reaches_client(
    guarded: Gateway,
) -> None:
    body = {"model": "hostile-chunk-choices-string-text", "messages": [HI], "stream": True}

    response = _post(guarded, orjson.dumps(body))

    error = assert_openai_error(response, 503)
    assert "malformed stream chunk" in error["message"]
    assert "nope" not in response.text


# D7: headers and messages relayed from an upstream are made sane.


@pytest.mark.parametrize("name", ["retry-after-huge", "retry-after-inf"])
def test_hostile_retry_after_is_clamped_to_an_hour(guarded: Gateway, name: str) -> None:
    body = {"model": f"hostile-{name}-text", "messages": [HI]}

    response = _post(guarded, orjson.dumps(body))

    assert_openai_error(response, 429)
    assert response.headers["retry-after"] == "3600"


def test_hostile_html_error_page_is_relayed_as_text(guarded: Gateway) -> None:
    body = {"model": "hostile-html-text", "messages": [HI]}

    error = assert_openai_error(_post(guarded, orjson.dumps(body)), 503)

    assert "hostile: 502 Bad Gateway 502 Bad Gateway nginx & friends" in error["message"]
    assert "<" not in error["message"]
    assert len(error["message"]) < 1200
