"""Amazon Bedrock's Converse API, translated to and from OpenAI's chat-completions shape.

Chat requests go to ``POST {base_url}/model/{modelId}/converse``, streams to
``/model/{modelId}/converse-stream``, which answers in AWS's binary event stream
(``aws_eventstream``). References: the Converse and ConverseStream API reference
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html)
and botocore's ``bedrock-runtime`` service model. Request translation is in
``bedrock_request``.

Credentials, from the provider's config: with the option ``access_key_id``, each request
is signed with SigV4 for service ``bedrock`` in the option ``region`` (or the region named
in a ``bedrock-runtime.<region>.amazonaws.com`` base URL), with the option
``secret_access_key`` or else the provider's ``api_key`` as the secret, and the optional
``session_token`` of temporary credentials. Without an access key id, the ``api_key`` is a
Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``), sent as ``Authorization: Bearer``
(https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html). Credentials never
appear in errors or logs.

Responses: text blocks are the content, ``toolUse`` blocks the tool calls, reasoning blocks
are left out. Stop reasons: end_turn and stop_sequence are ``stop``, tool_use
``tool_calls``, max_tokens and model_context_window_exceeded ``length``,
guardrail_intervened and content_filtered ``content_filter``; malformed_model_output,
malformed_tool_use and unknown values ``stop``. Usage: ``inputTokens`` excludes cache reads
and writes, so the prompt is their sum, with ``cacheReadInputTokens`` as its cached part.

Errors are classified by AWS's error type (the ``x-amzn-ErrorType`` header, or an
exception event's ``:exception-type``), then by status: ValidationException 400 (not
retried); ThrottlingException and ServiceQuotaExceededException 429; credential and access
errors and ResourceNotFoundException (a model not enabled here) 502 for this deployment;
ModelTimeoutException 504; ModelNotReadyException, ServiceUnavailableException,
InternalServerException, ModelErrorException and modelStreamErrorException 502, retryable.
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import yarl

from vaultgate.errors import UpstreamError
from vaultgate.providers.aws_eventstream import EventMessage, EventStreamDecoder
from vaultgate.providers.aws_sigv4 import AwsCredentials, sign_request
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    JsonObject,
    Usage,
    usage_with_cache_counts,
)
from vaultgate.providers.bedrock_request import (
    TRANSLATED_PARAMS,
    openai_messages_have_tool_history,
    openai_to_converse_request,
)
from vaultgate.providers.http import (
    HttpAdapter,
    StreamDecoder,
    UpstreamRequest,
    upstream_rate_limited,
    upstream_rejected,
)

REGIONAL_BASE_URL = "https://bedrock-runtime.{region}.amazonaws.com"
SIGNING_SERVICE = "bedrock"
REGION_IN_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")

# Values that ask for what Converse does anyway: nothing to drop or warn about.
HARMLESS_PARAMS = (("parallel_tool_calls", True), ("logprobs", False))

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Error types, lower-cased (HTTP errors spell them ``ThrottlingException``, stream
# exceptions ``throttlingException``), by what the gateway should do about them.
ERROR_CATEGORIES = {
    "validationexception": "client",
    "throttlingexception": "rate",
    "servicequotaexceededexception": "rate",
    "accessdeniedexception": "deployment",
    "unrecognizedclientexception": "deployment",
    "invalidsignatureexception": "deployment",
    "incompletesignatureexception": "deployment",
    "expiredtokenexception": "deployment",
    "missingauthenticationtokenexception": "deployment",
    "resourcenotfoundexception": "deployment",
    "modeltimeoutexception": "timeout",
    "modelnotreadyexception": "server",
    "modelerrorexception": "server",
    "modelstreamerrorexception": "server",
    "serviceunavailableexception": "server",
    "internalserverexception": "server",
}


def _status_category(status: int) -> str:
    if status in (401, 403, 404):
        return "deployment"
    if status == 429:
        return "rate"
    if 400 <= status < 500:
        return "client"
    return "server"


# Responses: Converse to OpenAI.


def converse_stop_reason_to_openai(reason: Any) -> str:
    """OpenAI's ``finish_reason`` for a Converse ``stopReason``."""
    return STOP_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def converse_usage_to_openai(raw: Any) -> Usage | None:
    """Usage from a ``TokenUsage``; None when absent."""
    return usage_with_cache_counts(
        raw, input_key="inputTokens", output_key="outputTokens",
        cache_read_key="cacheReadInputTokens", cache_write_key="cacheWriteInputTokens",
    )  # fmt: skip


def converse_tool_use_to_openai(block: JsonObject) -> JsonObject:
    """An OpenAI tool call for a ``toolUse`` block."""
    return {
        "id": block.get("toolUseId"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def converse_to_openai_completion(call: ChatCall, payload: JsonObject) -> JsonObject:
    """A ``chat.completion`` for a Converse response (which carries no id of its own)."""
    message = (payload.get("output") or {}).get("message") or {}
    blocks = [b for b in message.get("content") or () if isinstance(b, dict)]
    text = "".join(str(b["text"]) for b in blocks if isinstance(b.get("text"), str))
    calls = [converse_tool_use_to_openai(b["toolUse"]) for b in blocks if "toolUse" in b]

    reply: JsonObject = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    choice = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": converse_stop_reason_to_openai(payload.get("stopReason")),
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model_id,
        "choices": [choice],
    }


class ConverseStream:
    """Translates one ConverseStream's events; tool-call indexes span events."""

    def __init__(self, call: ChatCall, adapter: BedrockAdapter) -> None:
        self._model = call.model_id
        self._adapter = adapter
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        # Converse numbers every content block; OpenAI numbers only tool calls.
        self._tool_index: dict[int, int] = {}

    def __call__(self, message: EventMessage) -> list[JsonObject]:
        """OpenAI chunks for one message; unknown event types are ignored."""
        kind = message.header(":message-type")
        if kind == "exception":
            raise self._adapter.stream_exception(message)
        if kind == "error":
            code = message.header(":error-code") or "InternalServerException"
            text = message.header(":error-message") or "no error message"
            raise self._adapter.classify(500, code, text)
        handler = self._HANDLERS.get(message.header(":event-type") or "")
        return handler(self, self._payload(message)) if handler else []

    def _payload(self, message: EventMessage) -> JsonObject:
        try:
            payload = orjson.loads(message.payload or b"{}")
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise UpstreamError(f"{self._adapter.config.name} sent a malformed stream event")
        return payload

    def _chunk(self, delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created,
            "model": self._model, "choices": [choice],
        }  # fmt: skip

    def _message_start(self, _data: JsonObject) -> list[JsonObject]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JsonObject) -> list[JsonObject]:
        tool = (data.get("start") or {}).get("toolUse")
        if not isinstance(tool, dict):
            return []
        index = len(self._tool_index)
        self._tool_index[int(data.get("contentBlockIndex", -1))] = index
        call = {
            "index": index,
            "id": tool.get("toolUseId"),
            "type": "function",
            "function": {"name": tool.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: JsonObject) -> list[JsonObject]:
        delta = data.get("delta") or {}
        if isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        piece = (delta.get("toolUse") or {}).get("input")
        index = self._tool_index.get(int(data.get("contentBlockIndex", -1)))
        if isinstance(piece, str) and piece and index is not None:
            return [self._chunk({"tool_calls": [
                {"index": index, "function": {"arguments": piece}}]})]  # fmt: skip
        return []

    def _message_stop(self, data: JsonObject) -> list[JsonObject]:
        return [self._chunk({}, converse_stop_reason_to_openai(data.get("stopReason")))]

    def _metadata(self, data: JsonObject) -> list[JsonObject]:
        usage = converse_usage_to_openai(data.get("usage"))
        if usage is None:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage.as_openai()
        return [chunk]

    _HANDLERS: Mapping[str, Callable[[ConverseStream, JsonObject], list[JsonObject]]] = {
        "messageStart": _message_start,
        "contentBlockStart": _block_start,
        "contentBlockDelta": _block_delta,
        "messageStop": _message_stop,
        "metadata": _metadata,
    }


# The adapter.


def _error_type(value: str | None) -> str:
    """``ThrottlingException`` from ``ThrottlingException:http://internal...`` or
    ``aws.protocols#ThrottlingException``."""
    return (value or "").split(":", 1)[0].rsplit("#", 1)[-1].strip()


class BedrockAdapter(HttpAdapter):
    """Chat over Bedrock's Converse and ConverseStream operations."""

    # Converse answers one choice per request; the gateway fans ``n`` out (``fanout``).
    supports_n = False

    @functools.cached_property
    def _credentials(self) -> AwsCredentials | None:
        key_id = self.config.option("access_key_id")
        secret = self.config.option("secret_access_key") or self.config.api_key
        if not key_id or not secret:
            return None
        return AwsCredentials(key_id, secret, self.config.option("session_token") or None)

    @functools.cached_property
    def _secrets(self) -> tuple[str, ...]:
        names = ("access_key_id", "secret_access_key", "session_token")
        values = [self.config.api_key, *(self.config.option(name) for name in names)]
        return tuple(value for value in values if value and len(value) >= 4)

    @functools.cached_property
    def _region(self) -> str | None:
        match = REGION_IN_HOST.match(urlsplit(self.config.base_url).hostname or "")
        return self.config.option("region") or (match.group(1) if match else None)

    @functools.cached_property
    def _base_url(self) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        if self._region is None:
            raise self._misconfigured()
        return REGIONAL_BASE_URL.format(region=self._region)

    def _misconfigured(self) -> UpstreamError:
        return UpstreamError(
            f"{self.config.name} needs a Bedrock API key, or an access key, secret and "
            "region", status=502, code="provider_misconfigured",
        )  # fmt: skip

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Everything without a Converse equivalent (see ``bedrock_request``)."""
        dropped = [
            name
            for name, value in body.items()
            if value is not None and name not in TRANSLATED_PARAMS
            and (name, value) not in HARMLESS_PARAMS
        ]  # fmt: skip
        if body.get("tool_choice") == "none" and openai_messages_have_tool_history(
            body.get("messages")
        ):
            dropped.append("tool_choice")
        return dropped

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """POST the Converse body to the model's ``converse`` or ``converse-stream`` URL."""
        body = openai_to_converse_request(call.body)
        raw = orjson.dumps(body)
        url = self._url(call.upstream_model, stream=stream)
        headers = {"content-type": "application/json"}
        headers.update({name.lower(): value for name, value in self.config.headers})
        return UpstreamRequest(url, self._authorize(url, headers, raw), body, body=raw)

    def _url(self, model_id: str, *, stream: bool) -> str:
        """The model id percent-encoded as AWS's SDKs do (``:`` and ``/`` of ARNs
        included), then normalised the way the HTTP client sends it, so the signature
        covers the path on the wire."""
        operation = "converse-stream" if stream else "converse"
        url = f"{self._base_url}/model/{quote(model_id, safe='-._~')}/{operation}"
        return str(yarl.URL(url))

    def _authorize(self, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        if self.config.api_key and not self.config.option("access_key_id"):
            return {**headers, "authorization": f"Bearer {self.config.api_key}"}
        credentials, region = self._credentials, self._region
        if credentials is None or region is None:
            raise self._misconfigured()
        return sign_request(
            "POST", url, headers, body=body, credentials=credentials, region=region,
            service=SIGNING_SERVICE, now=datetime.now(UTC),
        )  # fmt: skip

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """A ``chat.completion`` with usage, for a Converse response."""
        if not isinstance(payload, dict) or not isinstance(payload.get("output"), dict):
            raise UpstreamError(f"{self.config.name} sent a malformed Converse response")
        body = converse_to_openai_completion(call, payload)
        usage = converse_usage_to_openai(payload.get("usage"))
        if usage is not None:
            body["usage"] = usage.as_openai()
        return ChatResult(body=body, usage=usage)

    def stream_decoder(self) -> StreamDecoder:
        """ConverseStream answers in AWS's binary event stream."""
        return EventStreamDecoder()

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """A fresh translator per stream: it remembers tool-call indexes."""
        return ConverseStream(call, self)

    def stream_exception(self, message: EventMessage) -> UpstreamError:
        """The UpstreamError for an exception event inside a stream."""
        text = "no error message"
        try:
            payload = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            text = str(payload.get("message") or payload.get("Message") or text)
        return self.classify(500, message.header(":exception-type"), text)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """AWS's ``{"message"}`` body, classified by ``x-amzn-ErrorType``, then status."""
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        payload = payload if isinstance(payload, dict) else {}
        error_type = headers.get("x-amzn-errortype") or payload.get("__type")
        text = payload.get("message") or payload.get("Message")
        if not isinstance(text, str) or not text:
            text = raw.decode("utf-8", errors="replace").strip() or "no error message"
        return self.classify(status, error_type, text, headers=headers)

    def classify(
        self,
        status: int,
        error_type: str | None,
        text: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamError:
        """One UpstreamError for an AWS error type (or, when unknown, its HTTP status)."""
        name, kind = self.config.name, _error_type(error_type)
        category = ERROR_CATEGORIES.get(kind.lower()) or _status_category(status)
        if category == "deployment":
            return UpstreamError(
                f"{name} rejected the request for this deployment ({kind or status})",
                status=502,
            )
        message = self._scrub(f"{name} ({kind or status}): {text}")
        if category == "client":
            return upstream_rejected(message)
        if category == "rate":
            retry_after = (headers or {}).get("retry-after")
            return upstream_rate_limited(message, retry_after)
        if category == "timeout":
            return UpstreamError(message, status=504, error_type="timeout",
                                 code="upstream_timeout")  # fmt: skip
        return UpstreamError(message, status=502)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:500]
