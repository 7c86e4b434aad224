"""Anthropic's Messages API, translated to and from OpenAI's chat-completions shape.

Reference: https://docs.anthropic.com/en/api/messages (request and response),
https://docs.anthropic.com/en/docs/build-with-claude/streaming (events) and
https://docs.anthropic.com/en/api/errors (error bodies and statuses).

OpenAI parameters, and what becomes of them:

=========================== ==========================================================
Parameter                   Treatment
=========================== ==========================================================
messages                    translated: ``system``/``developer`` → top-level ``system``
                            (joined with blank lines, in order); ``tool`` → user
                            ``tool_result`` blocks; consecutive same-role turns merged
max_completion_tokens,      translated to ``max_tokens`` (required by Anthropic; the
max_tokens                  model's catalog limit, else 4096, when absent)
temperature                 translated, clamped to Anthropic's 0–1 (OpenAI allows 0–2)
top_p                       translated
stop                        translated to ``stop_sequences``
user                        translated to ``metadata.user_id``
tools, tool_choice,         translated (``required`` → ``any``, a named function →
parallel_tool_calls         ``tool``, ``false`` → ``disable_parallel_tool_use``)
stream, stream_options      translated; Anthropic always reports usage in streams
n                           answered by the gateway: Anthropic returns one choice per
                            request, so ``n`` > 1 becomes ``n`` concurrent calls
                            (``supports_n`` is False; see ``fanout``)
response_format             ``text`` honoured; ``json_object``/``json_schema`` refused:
                            dropping them would hand prose to a caller parsing JSON
seed, logprobs,             dropped with a warning: Anthropic has no equivalent, and
top_logprobs,               the answer is still a valid completion without them
presence_penalty,
frequency_penalty,
logit_bias, anything else
=========================== ==========================================================

Content parts other than text and ``image_url``, tools other than functions and the
legacy ``function`` role are refused too. Refusals are 400 errors naming the parameter;
drops are listed in the gateway's ``x-vaultgate-warning`` header.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    JsonObject,
    Usage,
    usage_with_cache_counts,
)
from vaultgate.providers.http import (
    HttpAdapter,
    UpstreamRequest,
    error_message_from_body,
    scrub_secret,
    upstream_rate_limited,
    upstream_rejected,
)
from vaultgate.providers.openai_compat import CLIENT_ERROR_STATUSES, DEPLOYMENT_ERROR_STATUSES
from vaultgate.providers.sse import SseEvent

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0
# Anthropic's own status for "overloaded": https://docs.anthropic.com/en/api/errors
OVERLOADED_STATUS = 529

SENT_PARAMS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens",
        "max_completion_tokens", "temperature", "top_p", "stop", "user", "tools",
        "tool_choice", "parallel_tool_calls",
    }
)  # fmt: skip
# Honoured when trivially satisfiable, refused otherwise; ``n`` is the gateway's to answer
# (see the module docstring).
CHECKED_PARAMS = frozenset({"n", "response_format"})

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status Anthropic documents for each error type, for errors inside a stream.
ERROR_TYPE_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": OVERLOADED_STATUS,
}


def refuse(param: str, why: str) -> UpstreamError:
    """A 400 for a request Anthropic cannot answer faithfully; no deployment is retried."""
    return UpstreamError(
        f"'{param}' is not supported by Anthropic models: {why}",
        status=400, error_type="invalid_request_error", code="unsupported_parameter",
        param=param, retryable=False,
    )  # fmt: skip


# Request: OpenAI → Anthropic.


def openai_to_anthropic_request(call: ChatCall, *, stream: bool) -> JsonObject:
    """The Messages API body for an OpenAI chat body."""
    body = call.body
    check_refused_params(body)
    system, messages = openai_to_anthropic_messages(body["messages"])

    request: JsonObject = {
        "model": call.upstream_model,
        "messages": messages,
        "max_tokens": openai_to_anthropic_max_tokens(body, call.max_output_tokens),
    }
    if system:
        request["system"] = system
    if stream:
        request["stream"] = True
    request.update(openai_to_anthropic_sampling(body))
    request.update(openai_to_anthropic_tools(body))
    return request


def check_refused_params(body: JsonObject) -> None:
    """Raise for parameters whose meaning Anthropic cannot honour."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") != "text":
        # TODO: translate json_schema to ``output_config.format`` once the catalog records
        # which Claude models accept it (https://docs.anthropic.com/en/api/messages).
        raise refuse("response_format", "JSON output is not translated for Anthropic yet")


def openai_to_anthropic_max_tokens(body: JsonObject, model_limit: int | None) -> int:
    """``max_tokens`` is required by Anthropic; OpenAI's newer name wins when both are set."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int):
            return value
    return model_limit or DEFAULT_MAX_TOKENS


def openai_to_anthropic_sampling(body: JsonObject) -> JsonObject:
    """Temperature (clamped), top_p, stop sequences and the end-user id."""
    sampling: JsonObject = {}
    temperature = body.get("temperature")
    if temperature is not None:
        # OpenAI accepts 0–2, Anthropic 0–1; the upper half of OpenAI's range is clamped.
        sampling["temperature"] = min(float(temperature), MAX_TEMPERATURE)
    if body.get("top_p") is not None:
        sampling["top_p"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    if stops:
        sampling["stop_sequences"] = stops
    if body.get("user"):
        sampling["metadata"] = {"user_id": body["user"]}
    return sampling


def openai_to_anthropic_messages(messages: list[Any]) -> tuple[str, list[JsonObject]]:
    """The joined system prompt, and the turns with same-role neighbours merged.

    Anthropic requires user and assistant turns to alternate
    (https://docs.anthropic.com/en/api/messages, ``messages``); OpenAI does not.
    """
    system: list[str] = []
    turns: list[JsonObject] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content"), f"messages[{index}].content"))
            continue
        anthropic_role, blocks = _openai_message_to_blocks(message, index)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    return "\n\n".join(part for part in system if part), turns


def _openai_message_to_blocks(message: JsonObject, index: int) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    param = f"messages[{index}]"
    if role == "user":
        return "user", _content_blocks(message.get("content"), f"{param}.content")
    if role == "assistant":
        blocks = _content_blocks(message.get("content"), f"{param}.content")
        for position, tool_call in enumerate(message.get("tool_calls") or ()):
            blocks.append(
                openai_to_anthropic_tool_use(tool_call, f"{param}.tool_calls[{position}]")
            )
        return "assistant", blocks
    if role == "tool":
        content = message.get("content")
        if not isinstance(content, str):
            content = _content_blocks(content, f"{param}.content")
        result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        return "user", [{**result, "content": content}]
    raise refuse(f"{param}.role", f"the '{role}' role has no Anthropic equivalent")


def _text_of(content: Any, param: str) -> str:
    """The text of a system message, whose parts may only be text."""
    if isinstance(content, str):
        return content
    texts = []
    for position, part in enumerate(content or ()):
        if part.get("type") != "text":
            raise refuse(f"{param}[{position}]", "system prompts take text only")
        texts.append(part["text"])
    return "\n\n".join(texts)


def _content_blocks(content: Any, param: str) -> list[JsonObject]:
    """Anthropic content blocks for an OpenAI content string or part list.

    Empty text is left out: Anthropic rejects empty text blocks.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for position, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]["url"]
            blocks.append(openai_to_anthropic_image(url, f"{param}[{position}]"))
        else:
            raise refuse(f"{param}[{position}]", f"content parts of type '{kind}'")
    return blocks


def openai_to_anthropic_image(url: str, param: str) -> JsonObject:
    """An image block: a URL source, or a base64 source for a ``data:`` URL."""
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not header.endswith(";base64"):
        raise refuse(param, "images must be http(s) URLs or base64 data URLs")
    media_type = header.removeprefix("data:").removesuffix(";base64")
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "image", "source": source}


def openai_to_anthropic_tool_use(tool_call: Any, param: str) -> JsonObject:
    """A ``tool_use`` block for an assistant's tool call; its arguments must be an object."""
    function = tool_call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise refuse(f"{param}.function.arguments", "arguments must be a JSON object")
    return {
        "type": "tool_use",
        "id": tool_call.get("id"),
        "name": function.get("name"),
        "input": parsed,
    }


def openai_to_anthropic_tools(body: JsonObject) -> JsonObject:
    """``tools`` and ``tool_choice``; nothing when the request declares no tools."""
    tools = body.get("tools")
    if not tools:
        return {}
    translated = []
    for position, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise refuse(f"tools[{position}]", f"tools of type '{tool.get('type')}'")
        function = tool["function"]
        entry: JsonObject = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    choice = openai_to_anthropic_tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return {"tools": translated, "tool_choice": choice}


def openai_to_anthropic_tool_choice(choice: Any) -> JsonObject:
    """auto → auto, none → none, required → any, a named function → tool."""
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise refuse("tool_choice", f"the choice {choice!r}")


# Response: Anthropic → OpenAI.


def anthropic_stop_reason_to_openai(reason: Any) -> str:
    """OpenAI's ``finish_reason`` for Anthropic's ``stop_reason``."""
    return STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def anthropic_usage_to_openai(raw: Any) -> Usage | None:
    """Prompt tokens include cache reads and writes, which Anthropic counts apart from
    ``input_tokens``; reads are reported as cached so they are billed once, at the
    cached price (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching)."""
    return usage_with_cache_counts(
        raw, input_key="input_tokens", output_key="output_tokens",
        cache_read_key="cache_read_input_tokens", cache_write_key="cache_creation_input_tokens",
    )  # fmt: skip


def anthropic_tool_use_to_openai(block: JsonObject) -> JsonObject:
    """An OpenAI tool call for a ``tool_use`` block."""
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def anthropic_to_openai_completion(call: ChatCall, payload: JsonObject) -> JsonObject:
    """A ``chat.completion`` for a Messages API response."""
    blocks = [b for b in payload.get("content") or () if isinstance(b, dict)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    tool_calls = [anthropic_tool_use_to_openai(b) for b in blocks if b.get("type") == "tool_use"]

    message: JsonObject = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": anthropic_stop_reason_to_openai(payload.get("stop_reason")),
    }
    return {
        "id": payload.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model_id,
        "choices": [choice],
    }


class AnthropicStream:
    """Translates one stream's events; the state of a message spans events."""

    def __init__(self, call: ChatCall, error: Callable[[int, bytes], UpstreamError]) -> None:
        self._call = call
        self._error = error
        self._id = ""
        self._created = int(time.time())
        self._usage: JsonObject = {}
        # Anthropic numbers every content block; OpenAI numbers only tool calls.
        self._tool_index: dict[int, int] = {}
        # Tool-call blocks whose arguments have not begun yet.
        self._no_arguments: set[int] = set()

    def __call__(self, event: SseEvent) -> list[JsonObject]:
        """OpenAI chunks for one event; unknown event types are ignored, as Anthropic's
        versioning policy asks (https://docs.anthropic.com/en/api/versioning)."""
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamError("anthropic sent a malformed stream event") from None
        if not isinstance(data, dict):
            raise UpstreamError("anthropic sent a malformed stream event")
        handler = self._HANDLERS.get(str(data.get("type") or event.event))
        return handler(self, data) if handler else []

    def _chunk(self, delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._call.model_id,
            "choices": [choice],
        }

    def _message_start(self, data: JsonObject) -> list[JsonObject]:
        message = data.get("message") or {}
        self._id = str(message.get("id") or "")
        self._record_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JsonObject) -> list[JsonObject]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        index = len(self._tool_index)
        self._tool_index[int(data.get("index", -1))] = index
        self._no_arguments.add(index)
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: JsonObject) -> list[JsonObject]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        index = self._tool_index.get(int(data.get("index", -1)))
        if kind == "input_json_delta" and delta.get("partial_json") and index is not None:
            self._no_arguments.discard(index)
            piece = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [piece]})]
        return []

    def _block_stop(self, data: JsonObject) -> list[JsonObject]:
        """A tool call without input streams no JSON at all; OpenAI clients expect its
        arguments to be ``{}``, as in the whole answer."""
        index = self._tool_index.get(int(data.get("index", -1)))
        if index is None or index not in self._no_arguments:
            return []
        self._no_arguments.discard(index)
        piece = {"index": index, "function": {"arguments": "{}"}}
        return [self._chunk({"tool_calls": [piece]})]

    def _message_delta(self, data: JsonObject) -> list[JsonObject]:
        # message_delta usage counts are cumulative: they replace, never add.
        self._record_usage(data.get("usage"))
        reason = (data.get("delta") or {}).get("stop_reason")
        return [self._chunk({}, anthropic_stop_reason_to_openai(reason))]

    def _record_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _message_stop(self, _data: JsonObject) -> list[JsonObject]:
        usage = anthropic_usage_to_openai(self._usage)
        if usage is None:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage.as_openai()
        return [chunk]

    def _stream_error(self, data: JsonObject) -> list[JsonObject]:
        error = data.get("error") or {}
        status = ERROR_TYPE_STATUSES.get(str(error.get("type")), 500)
        raise self._error(status, orjson.dumps(data))

    _HANDLERS: Mapping[str, Callable[[AnthropicStream, JsonObject], list[JsonObject]]] = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "error": _stream_error,
    }


class AnthropicAdapter(HttpAdapter):
    """Chat over Anthropic's Messages API."""

    supports_n = False

    @functools.cached_property
    def _headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": API_VERSION,
        }
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        headers.update(self.config.headers)
        return headers

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Every set parameter that is neither translated nor checked is dropped."""
        return [
            name
            for name, value in body.items()
            if value is not None and value is not False
            and name not in SENT_PARAMS and name not in CHECKED_PARAMS
        ]  # fmt: skip

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """POST {base_url}/v1/messages."""
        base_url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        body = openai_to_anthropic_request(call, stream=stream)
        return UpstreamRequest(base_url + "/v1/messages", self._headers, body)

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """A ``chat.completion`` with usage, for a Messages API response."""
        if not isinstance(payload, dict) or payload.get("type") != "message":
            raise UpstreamError(f"{self.config.name} sent a malformed message")
        body = anthropic_to_openai_completion(call, payload)
        usage = anthropic_usage_to_openai(payload.get("usage"))
        if usage is not None:
            body["usage"] = usage.as_openai()
        return ChatResult(body=body, usage=usage)

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """A fresh stateful translator per stream."""
        return AnthropicStream(call, lambda status, raw: self.map_error(status, raw, {}))

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """By status, as https://docs.anthropic.com/en/api/errors lists them."""
        message, _ = error_message_from_body(raw)
        name = self.config.name
        if status in DEPLOYMENT_ERROR_STATUSES:
            return UpstreamError(
                f"{name} rejected the request for this deployment (HTTP {status})",
                status=502,
            )
        text = scrub_secret(f"{name}: {message}", self.config.api_key)
        if status in CLIENT_ERROR_STATUSES:
            return upstream_rejected(text)
        retry_after = headers.get("retry-after")
        extra = {"retry-after": retry_after} if retry_after else None
        if status == 429:
            return upstream_rate_limited(text, retry_after)
        if status == OVERLOADED_STATUS:
            return UpstreamError(text, status=503, code="upstream_overloaded", headers=extra)
        return UpstreamError(text, status=502 if status >= 500 else status)
