"""Cohere's v2 Chat API (``POST {base_url}/v2/chat``, bearer key), to and from OpenAI's shape.

References: https://docs.cohere.com/reference/chat (request and response),
https://docs.cohere.com/docs/streaming (stream events), https://docs.cohere.com/reference/errors
(error bodies: ``{"id", "message"}``), and the ``cohere`` SDK's v2 types. How requests are
translated, parameter by parameter, is told in ``cohere_request``.

Responses. Text content is the message content; ``thinking`` content (reasoning models) is
not returned. With tool calls, Cohere returns its text as ``tool_plan``: it becomes the
message content (in streams, ``tool-plan-delta`` events become content deltas), and a later
request turns it back into ``tool_plan``. Citations have no OpenAI equivalent and are left
out. Finish reasons map one to one:

=============== ====================================================================
Cohere          OpenAI
=============== ====================================================================
COMPLETE        ``stop``
STOP_SEQUENCE   ``stop``
MAX_TOKENS      ``length``
TOOL_CALL       ``tool_calls``
ERROR           an upstream error (502, retryable): the generation failed, and its
                partial text must not pass for a finished answer
TIMEOUT         an upstream timeout (504)
=============== ====================================================================

Cohere has no safety stop: nothing maps to ``content_filter``.

Usage. ``usage.billed_units`` is the billing truth: Cohere charges for those tokens, while
``usage.tokens`` also counts the prompt template and special tokens Cohere adds itself and
does not charge for (https://docs.cohere.com/docs/how-does-cohere-pricing-work). Billing
from ``tokens`` would overcharge. ``tokens`` is used only when ``billed_units`` is absent.
``cached_tokens`` is reported as the cached part of the prompt, at most the prompt.

Errors, by status: 400 and 422 are the client's (400, not retried); 401, 402, 403, 404 and
498 (invalid token) concern VaultGate's account or the deployment (502, another deployment
may work); 429 stays 429 with its ``retry-after``; 503 is 503 (overloaded, retryable);
504 is a timeout; 499 (request cancelled) and other 5xx are 502.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers.base import ChatCall, ChatResult, JsonObject, Usage
from vaultgate.providers.cohere_request import dropped_params, openai_to_cohere_request
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

DEFAULT_BASE_URL = "https://api.cohere.com"
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
# Cohere's own status for an invalid token: https://docs.cohere.com/reference/errors
INVALID_TOKEN_STATUS = 498
OVERLOADED_STATUS = 503
GATEWAY_TIMEOUT_STATUS = 504


def cohere_finish_reason_to_openai(reason: Any, name: str, error: Any = None) -> str:
    """OpenAI's ``finish_reason``; ERROR and TIMEOUT raise, as the module docstring says."""
    if reason == "ERROR":
        detail = f": {error}" if error else ""
        raise UpstreamError(f"{name} failed while generating{detail}")
    if reason == "TIMEOUT":
        raise UpstreamTimeout(f"{name} timed out while generating")
    return FINISH_REASONS.get(str(reason), "stop")


def _count(raw: Any, key: str) -> int | None:
    value = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(int(value), 0)


def cohere_usage_to_openai(raw: Any) -> Usage | None:
    """Usage from ``billed_units``, else ``tokens``; None when neither has counts."""
    if not isinstance(raw, dict):
        return None
    for source in (raw.get("billed_units"), raw.get("tokens")):
        prompt = _count(source, "input_tokens")
        completion = _count(source, "output_tokens")
        if prompt is not None or completion is not None:
            cached = min(_count(raw, "cached_tokens") or 0, prompt or 0)
            return Usage(
                prompt_tokens=prompt or 0, completion_tokens=completion or 0, cached_tokens=cached
            )
    return None


def cohere_message_to_openai(message: Any) -> JsonObject:
    """An OpenAI assistant message for Cohere's response message."""
    message = message if isinstance(message, dict) else {}
    items = [i for i in message.get("content") or () if isinstance(i, dict)]
    text = "".join(str(i.get("text") or "") for i in items if i.get("type") == "text")
    tool_calls = [cohere_tool_call_to_openai(c) for c in message.get("tool_calls") or ()]
    if tool_calls and not text:
        text = message.get("tool_plan") or ""
    translated: JsonObject = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        translated["tool_calls"] = tool_calls
    return translated


def cohere_tool_call_to_openai(call: Any) -> JsonObject:
    """An OpenAI tool call for a Cohere one (the same shape; ``arguments`` a JSON string)."""
    function = (call.get("function") if isinstance(call, dict) else None) or {}
    return {
        "id": call.get("id") if isinstance(call, dict) else None,
        "type": "function",
        "function": {
            "name": function.get("name") or "",
            "arguments": function.get("arguments") or "{}",
        },
    }


class CohereStream:
    """Translates one stream's events; a message's id and its tool-call indexes span events."""

    def __init__(self, adapter: CohereAdapter, call: ChatCall) -> None:
        self._adapter = adapter
        self._model = call.model_id
        self._id = ""
        self._created = int(time.time())
        self._thinking: set[int] = set()
        self._tool_index: dict[int, int] = {}

    def __call__(self, event: SseEvent) -> list[JsonObject]:
        """OpenAI chunks for one event; unknown event types are ignored."""
        data = event.data.strip()
        if not data or data == "[DONE]":
            return []
        payload = self._adapter.decode_event(data)
        handler = self._HANDLERS.get(str(payload.get("type") or event.event))
        return handler(self, payload) if handler else []

    def _chunk(self, delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created,
            "model": self._model, "choices": [choice],
        }  # fmt: skip

    @staticmethod
    def _message(payload: JsonObject) -> JsonObject:
        message = (payload.get("delta") or {}).get("message")
        return message if isinstance(message, dict) else {}

    def _message_start(self, payload: JsonObject) -> list[JsonObject]:
        self._id = str(payload.get("id") or "")
        return [self._chunk({"role": "assistant", "content": ""})]

    def _content_start(self, payload: JsonObject) -> list[JsonObject]:
        content = self._message(payload).get("content") or {}
        if content.get("type") == "thinking":
            self._thinking.add(int(payload.get("index") or 0))
            return []
        text = content.get("text")
        return [self._chunk({"content": text})] if text else []

    def _content_delta(self, payload: JsonObject) -> list[JsonObject]:
        if int(payload.get("index") or 0) in self._thinking:
            return []
        text = (self._message(payload).get("content") or {}).get("text")
        return [self._chunk({"content": text})] if text else []

    def _tool_plan_delta(self, payload: JsonObject) -> list[JsonObject]:
        plan = self._message(payload).get("tool_plan")
        return [self._chunk({"content": plan})] if plan else []

    def _tool_call_start(self, payload: JsonObject) -> list[JsonObject]:
        call = self._message(payload).get("tool_calls") or {}
        index = len(self._tool_index)
        self._tool_index[int(payload.get("index") or 0)] = index
        translated = cohere_tool_call_to_openai(call)
        arguments = (call.get("function") or {}).get("arguments") or ""
        translated["function"]["arguments"] = arguments
        return [self._chunk({"tool_calls": [{"index": index, **translated}]})]

    def _tool_call_delta(self, payload: JsonObject) -> list[JsonObject]:
        call = self._message(payload).get("tool_calls") or {}
        arguments = (call.get("function") or {}).get("arguments")
        index = self._tool_index.get(int(payload.get("index") or 0))
        if not arguments or index is None:
            return []
        return [
            self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
        ]

    def _message_end(self, payload: JsonObject) -> list[JsonObject]:
        delta = payload.get("delta") or {}
        name = self._adapter.config.name
        finish = cohere_finish_reason_to_openai(
            delta.get("finish_reason"), name, delta.get("error")
        )
        chunks = [self._chunk({}, finish)]
        usage = cohere_usage_to_openai(delta.get("usage"))
        if usage is not None:
            chunks.append({**self._chunk({}), "choices": [], "usage": usage.as_openai()})
        return chunks

    _HANDLERS: Mapping[str, Callable[[CohereStream, JsonObject], list[JsonObject]]] = {
        "message-start": _message_start,
        "content-start": _content_start,
        "content-delta": _content_delta,
        "tool-plan-delta": _tool_plan_delta,
        "tool-call-start": _tool_call_start,
        "tool-call-delta": _tool_call_delta,
        "message-end": _message_end,
    }


class CohereAdapter(HttpAdapter):
    """Chat over Cohere's v2 Chat API."""

    # Cohere answers one choice per request: the gateway fans ``n`` out (see ``fanout``).
    supports_n = False

    @functools.cached_property
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        headers.update(self.config.headers)
        return headers

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Every set parameter without a Cohere equivalent (see ``cohere_request``)."""
        return dropped_params(body)

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """POST {base_url}/v2/chat."""
        base_url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        body = openai_to_cohere_request(call.body, call.upstream_model, stream=stream)
        if stream:
            headers = {**self._headers, "Accept": "text/event-stream"}
            return UpstreamRequest(base_url + "/v2/chat", headers, body)
        return UpstreamRequest(base_url + "/v2/chat", self._headers, body)

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """A ``chat.completion`` with usage, for a v2 chat response."""
        if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
            raise UpstreamError(f"{self.config.name} sent a malformed chat response")
        finish = cohere_finish_reason_to_openai(payload.get("finish_reason"), self.config.name)
        choice = {
            "index": 0, "message": cohere_message_to_openai(payload["message"]),
            "logprobs": None, "finish_reason": finish,
        }  # fmt: skip
        body: JsonObject = {
            "id": str(payload.get("id") or ""),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model_id,
            "choices": [choice],
        }
        usage = cohere_usage_to_openai(payload.get("usage"))
        if usage is not None:
            body["usage"] = usage.as_openai()
        return ChatResult(body=body, usage=usage)

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """A fresh stateful translator per stream."""
        return CohereStream(self, call)

    def decode_event(self, data: str) -> JsonObject:
        """One stream event's JSON; an error body raises as a mapped UpstreamError."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a malformed stream event") from None
        if not isinstance(payload, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed stream event")
        if "type" not in payload and "message" in payload:
            raise self.map_error(500, data.encode(), {})
        return payload

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """By status, as https://docs.cohere.com/reference/errors lists them."""
        message, _ = error_message_from_body(raw)
        name = self.config.name
        if status in DEPLOYMENT_ERROR_STATUSES or status == INVALID_TOKEN_STATUS:
            return UpstreamError(
                f"{name} rejected the request for this deployment (HTTP {status})", status=502
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
        if status == GATEWAY_TIMEOUT_STATUS:
            return UpstreamTimeout(text)
        return UpstreamError(text, status=502)
