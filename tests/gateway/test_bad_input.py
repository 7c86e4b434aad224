"""Every bad input of SPEC §1 over raw HTTP: the right status and the exact OpenAI error
shape, never a 500 or a stack trace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import assert_openai_error

CHAT = "/v1/chat/completions"
IMAGES = "/v1/images/generations"
USER = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> bytes:
    """A chat body: a valid one, with ``fields`` merged over it (None removes a field)."""
    body: dict[str, Any] = {"model": "offline-small-text", "messages": USER}
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def image(**fields: Any) -> bytes:
    """An images body, like ``chat``."""
    body: dict[str, Any] = {"model": "offline-painter-image", "prompt": "a cat", "size": "256x256"}
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


# (path, body, status, param, code); code None means any code.
CASES: dict[str, tuple[str, bytes, int, str | None, str | None]] = {
    "invalid-json": (CHAT, b'{"model": "offline-small-text", ', 400, None, "invalid_json"),
    "invalid-json-nan": (CHAT, b'{"temperature": NaN}', 400, None, "invalid_json"),
    "invalid-utf8": (CHAT, b'{"model": "\xff"}', 400, None, "invalid_json"),
    "lone-surrogate": (CHAT, b'{"model": "\\ud800"}', 400, None, "invalid_json"),
    "nested-too-deep": (CHAT, b"[" * 5000, 400, None, "invalid_json"),
    "empty-body": (CHAT, b"", 400, None, None),
    "blank-body": (CHAT, b"  \n ", 400, None, None),
    "array-body": (CHAT, b"[1, 2]", 400, None, None),
    "string-body": (CHAT, b'"hello"', 400, None, None),
    "null-body": (CHAT, b"null", 400, None, None),
    "missing-model": (CHAT, chat(model=None), 400, "model", "missing_required"),
    "model-number": (CHAT, chat(model=5), 400, "model", "invalid_type"),
    "model-empty": (CHAT, chat(model=""), 400, "model", "invalid_type"),
    "model-list": (CHAT, chat(model=["offline-small-text"]), 400, "model", "invalid_type"),
    "missing-messages": (CHAT, chat(messages=None), 400, "messages", "missing_required"),
    "messages-string": (CHAT, chat(messages="hi"), 400, "messages", "invalid_type"),
    "messages-object": (CHAT, chat(messages={"role": "user"}), 400, "messages", "invalid_type"),
    "messages-empty": (CHAT, chat(messages=[]), 400, "messages", None),
    "message-string": (CHAT, chat(messages=["hi"]), 400, "messages[0]", "invalid_type"),
    "bad-role": (
        CHAT, chat(messages=[{"role": "wizard", "content": "x"}]), 400,
        "messages[0].role", "invalid_value",
    ),
    "missing-role": (
        CHAT, chat(messages=[*USER, {"content": "x"}]), 400, "messages[1].role", "invalid_value"
    ),
    "missing-content": (
        CHAT, chat(messages=[{"role": "user"}]), 400, "messages[0].content", None
    ),
    "content-number": (
        CHAT, chat(messages=[{"role": "user", "content": 5}]), 400,
        "messages[0].content", "invalid_type",
    ),
    "content-part-string": (
        CHAT, chat(messages=[{"role": "user", "content": ["x"]}]), 400,
        "messages[0].content[0]", "invalid_type",
    ),
    "tool-without-id": (
        CHAT, chat(messages=[{"role": "tool", "content": "x"}]), 400,
        "messages[0].tool_call_id", None,
    ),
    "temperature-high": (CHAT, chat(temperature=2.5), 400, "temperature", "invalid_value"),
    "temperature-negative": (CHAT, chat(temperature=-0.1), 400, "temperature", "invalid_value"),
    "temperature-string": (CHAT, chat(temperature="hot"), 400, "temperature", "invalid_type"),
    "temperature-bool": (CHAT, chat(temperature=True), 400, "temperature", "invalid_type"),
    "top-p-high": (CHAT, chat(top_p=1.5), 400, "top_p", "invalid_value"),
    "top-p-negative": (CHAT, chat(top_p=-1), 400, "top_p", "invalid_value"),
    "max-tokens-zero": (CHAT, chat(max_tokens=0), 400, "max_tokens", "invalid_value"),
    "max-tokens-negative": (CHAT, chat(max_tokens=-5), 400, "max_tokens", "invalid_value"),
    "max-tokens-string": (CHAT, chat(max_tokens="10"), 400, "max_tokens", "invalid_type"),
    "max-tokens-float": (CHAT, chat(max_tokens=1.5), 400, "max_tokens", "invalid_type"),
    "max-tokens-huge": (
        CHAT, b'{"model": "offline-small-text", "messages": [{"role": "user", "content": "x"}],'
        b' "max_tokens": 100000000000000000000000000000}', 400, "max_tokens", "invalid_type",
    ),
    "max-completion-tokens-zero": (
        CHAT, chat(max_completion_tokens=0), 400, "max_completion_tokens", "invalid_value"
    ),
    "n-too-big": (CHAT, chat(n=129), 400, "n", "invalid_value"),
    "n-zero": (CHAT, chat(n=0), 400, "n", "invalid_value"),
    "stream-string": (CHAT, chat(stream="yes"), 400, "stream", "invalid_type"),
    "stream-number": (CHAT, chat(stream=1), 400, "stream", "invalid_type"),
    "stream-options-without-stream": (
        CHAT, chat(stream_options={"include_usage": True}), 400, "stream_options", None
    ),
    "stream-options-stream-false": (
        CHAT, chat(stream=False, stream_options={"include_usage": True}), 400,
        "stream_options", None,
    ),
    "stream-options-string": (
        CHAT, chat(stream=True, stream_options="usage"), 400, "stream_options", "invalid_type"
    ),
    "include-usage-string": (
        CHAT, chat(stream=True, stream_options={"include_usage": "yes"}), 400,
        "stream_options.include_usage", "invalid_type",
    ),
    "stop-too-many": (CHAT, chat(stop=["a", "b", "c", "d", "e"]), 400, "stop", None),
    "stop-number": (CHAT, chat(stop=5), 400, "stop", "invalid_type"),
    "presence-penalty-high": (CHAT, chat(presence_penalty=3), 400, "presence_penalty", None),
    "tools-string": (CHAT, chat(tools="lookup"), 400, "tools", "invalid_type"),
    "tool-choice-number": (CHAT, chat(tool_choice=5), 400, "tool_choice", "invalid_type"),
    "response-format-xml": (
        CHAT, chat(response_format={"type": "xml"}), 400, "response_format", None
    ),
    "seed-float": (CHAT, chat(seed=1.5), 400, "seed", "invalid_type"),
    "user-number": (CHAT, chat(user=5), 400, "user", "invalid_type"),
    "unknown-model": (CHAT, chat(model="gpt-99-text"), 404, "model", "model_not_found"),
    "unknown-model-stream": (
        CHAT, chat(model="gpt-99-text", stream=True), 404, "model", "model_not_found"
    ),
    "image-model-on-chat": (
        CHAT, chat(model="offline-painter-image"), 400, "model", "wrong_endpoint"
    ),
    "images-invalid-json": (IMAGES, b"{", 400, None, "invalid_json"),
    "images-empty-body": (IMAGES, b"", 400, None, None),
    "images-array-body": (IMAGES, b"[]", 400, None, None),
    "images-missing-model": (IMAGES, image(model=None), 400, "model", "missing_required"),
    "images-missing-prompt": (IMAGES, image(prompt=None), 400, "prompt", "missing_required"),
    "images-blank-prompt": (IMAGES, image(prompt="  "), 400, "prompt", None),
    "images-prompt-list": (IMAGES, image(prompt=["a"]), 400, "prompt", "invalid_type"),
    "images-n-too-big": (IMAGES, image(n=11), 400, "n", "invalid_value"),
    "images-n-zero": (IMAGES, image(n=0), 400, "n", "invalid_value"),
    "images-size-word": (IMAGES, image(size="big"), 400, "size", None),
    "images-size-unoffered": (IMAGES, image(size="300x300"), 400, "size", None),
    "images-size-huge": (IMAGES, image(size="99999x99999"), 400, "size", None),
    "images-quality-number": (IMAGES, image(quality=5), 400, "quality", "invalid_type"),
    "images-quality-unoffered": (IMAGES, image(quality="ultra"), 400, "size", None),
    "images-format-png": (IMAGES, image(response_format="png"), 400, "response_format", None),
    "images-unknown-model": (IMAGES, image(model="nope-image"), 404, "model", "model_not_found"),
    "text-model-on-images": (
        IMAGES, image(model="offline-small-text"), 400, "model", "wrong_endpoint"
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_unhandled_errors(shared: Gateway) -> Iterator[None]:
    """Fail the test if the server logged an unhandled exception while it ran."""
    before = len(shared.server.logs())
    yield
    written = shared.server.logs()[before:]
    assert "unhandled error" not in written
    assert "Traceback" not in written


@pytest.mark.parametrize(("path", "body", "status", "param", "code"), CASES.values(), ids=CASES)
def test_bad_input_returns_openai_error(
    http: httpx.Client,
    path: str,
    body: bytes,
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    response = http.post(path, content=body, headers={"content-type": "application/json"})

    error = assert_openai_error(response, status)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


def test_bad_input_image_model_on_chat_names_images_endpoint(http: httpx.Client) -> None:
    response = http.post(CHAT, content=chat(model="offline-painter-image"))

    message = assert_openai_error(response, 400)["message"]
    assert "offline-painter-image" in message
    assert "/v1/images/generations" in message


def test_bad_input_text_model_on_images_names_chat_endpoint(http: httpx.Client) -> None:
    response = http.post(IMAGES, content=image(model="fake-plain-text"))

    message = assert_openai_error(response, 400)["message"]
    assert "fake-plain-text" in message
    assert "/v1/chat/completions" in message


def test_bad_input_hybrid_model_is_accepted_on_both_endpoints(http: httpx.Client) -> None:
    chat_reply = http.post(CHAT, content=chat(model="offline-omni-hybrid"))
    image_reply = http.post(IMAGES, content=image(model="offline-omni-hybrid"))

    assert chat_reply.status_code == 200
    assert image_reply.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing-here", 404, "unknown_path"),
        ("POST", "/v1/completions", 404, "unknown_path"),
        ("GET", "/v1", 404, "unknown_path"),
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("PUT", "/v1/chat/completions", 405, "method_not_allowed"),
        ("GET", "/v1/images/generations", 405, "method_not_allowed"),
        ("POST", "/v1/models", 405, "method_not_allowed"),
        ("DELETE", "/v1/models/offline-small-text", 405, "method_not_allowed"),
    ],
)
def test_bad_input_unknown_path_or_method_is_openai_shaped(
    http: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    response = http.request(method, path, content=b"{}")

    error = assert_openai_error(response, status)
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
