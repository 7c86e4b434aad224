"""Checking request bodies against OpenAI's rules, naming the offending parameter.

Hand-written checks rather than a schema library: they run on every request, and each
failure must say exactly which parameter is wrong, as OpenAI's own errors do. Parameters
not listed here are passed on untouched for the provider to judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from vaultgate.errors import InvalidRequest
from vaultgate.gateway.checks import check_integer, invalid_type
from vaultgate.gateway.message_checks import check_message
from vaultgate.gateway.tool_checks import check_tool_choice, check_tools

SIZE_PATTERN = re.compile(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")
IMAGE_RESPONSE_FORMATS = ("url", "b64_json")
MAX_IMAGES = 10
MAX_CHOICES = 128
MAX_STOP_SEQUENCES = 4
# Output limits are 32-bit integers in OpenAI's API; no model comes near the bound, and it
# keeps the hold (limit × choices × price) far inside the 64-bit columns that store it.
MAX_OUTPUT_TOKENS = 2**31 - 1
SEED_RANGE = (-(2**63), 2**63 - 1)
LOGIT_BIAS_RANGE = (-100, 100)


def _fail(param: str, expected: str, value: Any) -> InvalidRequest:
    return invalid_type(param, expected, value)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(
            f"'{name}' must be between {low:g} and {high:g}, got {value}.",
            param=name, code="invalid_value",
        )  # fmt: skip


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> None:
    check_integer(body.get(name), name, low, high)


def _typed(body: dict[str, Any], name: str, kind: type, expected: str) -> None:
    value = body.get(name)
    if value is not None and (
        not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    ):
        raise _fail(name, expected, value)


def _logit_bias(body: dict[str, Any]) -> None:
    bias = body.get("logit_bias")
    if bias is None:
        return
    if not isinstance(bias, dict):
        raise _fail("logit_bias", "an object", bias)
    low, high = LOGIT_BIAS_RANGE
    for value in bias.values():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail("logit_bias", "an object of numbers", value)
        if not low <= value <= high:
            raise InvalidRequest(
                f"'logit_bias' values must be between {low} and {high}, got {value}.",
                param="logit_bias", code="invalid_value",
            )  # fmt: skip


def _stop(body: dict[str, Any]) -> None:
    stop = body.get("stop")
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _fail("stop", "a string or an array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences.", param="stop")


def _stream_options(body: dict[str, Any]) -> None:
    options = body.get("stream_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise _fail("stream_options", "an object", options)
    if not body.get("stream"):
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _fail("stream_options.include_usage", "a boolean", include_usage)


def _response_format(body: dict[str, Any]) -> None:
    value = body.get("response_format")
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") not in (
        "text",
        "json_object",
        "json_schema",
    ):
        raise InvalidRequest(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
            param="response_format",
        )


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("'model' is required.", param="model", code="missing_required")
    if not isinstance(model, str) or not model:
        raise _fail("model", "a non-empty string", model)
    return model


CHAT_CHECKS: tuple[Callable[[dict[str, Any]], None], ...] = (
    lambda b: _number(b, "temperature", 0, 2),
    lambda b: _number(b, "top_p", 0, 1),
    lambda b: _number(b, "presence_penalty", -2, 2),
    lambda b: _number(b, "frequency_penalty", -2, 2),
    lambda b: _integer(b, "max_tokens", 1, MAX_OUTPUT_TOKENS),
    lambda b: _integer(b, "max_completion_tokens", 1, MAX_OUTPUT_TOKENS),
    lambda b: _integer(b, "n", 1, MAX_CHOICES),
    lambda b: _integer(b, "seed", *SEED_RANGE),
    lambda b: _integer(b, "top_logprobs", 0, 20),
    lambda b: _typed(b, "stream", bool, "a boolean"),
    lambda b: _typed(b, "logprobs", bool, "a boolean"),
    lambda b: _typed(b, "user", str, "a string"),
    lambda b: _typed(b, "metadata", dict, "an object"),
    _logit_bias,
    _stop,
    _stream_options,
    _response_format,
)


def validate_chat(body: Any) -> str:
    """Check a chat-completions body; return its model id."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required.", param="messages", code="missing_required")
    if not isinstance(messages, list):
        raise _fail("messages", "an array", messages)
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    for index, message in enumerate(messages):
        check_message(message, index)
    check_tool_choice(body, check_tools(body))
    for check in CHAT_CHECKS:
        check(body)
    return model


def validate_images(body: Any) -> str:
    """Check an images-generations body; return its model id."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = _model(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("'prompt' is required.", param="prompt", code="missing_required")
    if not isinstance(prompt, str):
        raise _fail("prompt", "a string", prompt)
    if not prompt.strip():
        raise InvalidRequest("'prompt' must not be empty.", param="prompt")
    _integer(body, "n", 1, MAX_IMAGES)
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or not SIZE_PATTERN.match(size)):
        raise InvalidRequest("'size' must look like '1024x1024'.", param="size")
    _typed(body, "quality", str, "a string")
    _typed(body, "style", str, "a string")
    _integer(body, "partial_images", 0, 3)
    _integer(body, "output_compression", 0, 100)
    response_format = body.get("response_format")
    if response_format is not None and response_format not in IMAGE_RESPONSE_FORMATS:
        raise InvalidRequest(
            "'response_format' must be 'url' or 'b64_json'.", param="response_format"
        )
    _typed(body, "user", str, "a string")
    return model
