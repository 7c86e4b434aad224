"""Google's Gemini API (AI Studio, Generative Language API ``v1beta``).

Chat requests go to ``POST {base_url}/v1beta/models/{model}:generateContent``, streams to
``:streamGenerateContent?alt=sse`` (each SSE ``data:`` line one ``GenerateContentResponse``,
no ``[DONE]``); the key travels in ``x-goog-api-key``. Field names follow the REST reference
(https://ai.google.dev/api/generate-content) and the ``google-genai`` SDK's types.

How requests are translated, parameter by parameter, is told in ``gemini_request``.

Finish reasons: STOP is ``stop`` (``tool_calls`` when the candidate called functions),
MAX_TOKENS and CONTINUATION are ``length``; SAFETY, RECITATION, BLOCKLIST,
PROHIBITED_CONTENT, SPII, the IMAGE_* safety reasons, ESCALATION and PUP_LIMITED_DISABLED
are ``content_filter``; the rest (LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL,
UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, MISSING_THOUGHT_SIGNATURE, MALFORMED_RESPONSE,
NO_IMAGE, IMAGE_OTHER, unknown values) are ``stop``. A prompt blocked by
``promptFeedback.blockReason`` answers one empty choice with ``content_filter``.

Usage: ``promptTokenCount`` (plus ``toolUsePromptTokenCount``) is the prompt, with
``cachedContentTokenCount`` as its cached part; ``candidatesTokenCount`` plus
``thoughtsTokenCount`` is the completion, with the thoughts as reasoning tokens.
Thought parts (``thought: true``) are not returned as content.

Images: image parts (``inlineData``) of an answer, as Gemini image models give them, are
returned in the message's ``images`` list, each ``{"type": "image_url", "image_url":
{"url": "data:<type>;base64,<data>"}}``, and streamed the same way in ``delta.images``: the
extension OpenRouter uses for image output on chat completions, which clients that do not
know it ignore, and which keeps ``content`` plain text. Image generation on
``/v1/images/generations`` is in ``gemini_image`` (Gemini models) and ``imagen``.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    GeneratedImage,
    ImageCall,
    ImageResult,
    JsonObject,
    Usage,
)
from vaultgate.providers.gemini_image import (
    add_usages,
    gemini_answer_to_image,
    gemini_inline_image,
    openai_to_gemini_image_request,
)
from vaultgate.providers.gemini_request import TRANSLATED_PARAMS, openai_to_gemini_request
from vaultgate.providers.http import (
    HttpAdapter,
    UpstreamRequest,
    scrub_secret,
    upstream_rate_limited,
    upstream_rejected,
)
from vaultgate.providers.imagen import (
    imagen_response_to_openai,
    is_imagen_model,
    openai_to_imagen_request,
)
from vaultgate.providers.sse import SseEvent

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "ESCALATION": "content_filter",
    "PUP_LIMITED_DISABLED": "content_filter",
}
# Gemini's way of saying "your key is wrong" is a 400 with this ErrorInfo reason
# (https://cloud.google.com/apis/design/errors#error_info).
CREDENTIAL_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"})


# Responses: Gemini to OpenAI.


def gemini_finish_reason_to_openai(reason: Any, *, called_tools: bool) -> str:
    """OpenAI's ``finish_reason`` for a candidate's ``finishReason``."""
    mapped = FINISH_REASONS.get(str(reason), "stop")
    return "tool_calls" if mapped == "stop" and called_tools else mapped


def _count(metadata: Mapping[str, Any], key: str) -> int:
    value = metadata.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def gemini_usage_to_openai(metadata: Any) -> Usage | None:
    """Usage from ``usageMetadata``; None when absent."""
    if not isinstance(metadata, dict):
        return None
    thoughts = _count(metadata, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=_count(metadata, "promptTokenCount")
        + _count(metadata, "toolUsePromptTokenCount"),
        completion_tokens=_count(metadata, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(metadata, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _visible_parts(candidate: Any) -> list[JsonObject]:
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or () if isinstance(p, dict) and not p.get("thought")]


class ToolCallIds:
    """Tool call ids unique to one response: ``call_<response>_<n>``."""

    def __init__(self, response_id: Any) -> None:
        seed = str(response_id) if response_id else uuid.uuid4().hex
        self._prefix = f"call_{uuid.uuid5(uuid.NAMESPACE_URL, seed).hex[:12]}_"
        self._next = 0

    def new(self) -> str:
        """The next id."""
        self._next += 1
        return f"{self._prefix}{self._next - 1}"


def gemini_function_call_to_openai(part: JsonObject, call_id: str) -> JsonObject:
    """An OpenAI ``tool_calls`` entry for a ``functionCall`` part."""
    call = part["functionCall"]
    arguments = orjson.dumps(call.get("args") or {}).decode()
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": arguments},
    }


def gemini_images_to_openai(parts: list[JsonObject]) -> list[JsonObject]:
    """The ``images`` entries (data URLs) for a candidate's image parts."""
    images = []
    for part in parts:
        found = gemini_inline_image(part)
        if found is not None:
            url = f"data:{found[0]};base64,{found[1]}"
            images.append({"type": "image_url", "image_url": {"url": url}})
    return images


def gemini_candidate_to_openai(
    candidate: JsonObject, position: int, ids: ToolCallIds
) -> JsonObject:
    """One OpenAI choice for a Gemini candidate."""
    parts = _visible_parts(candidate)
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    calls = [
        gemini_function_call_to_openai(p, ids.new())
        for p in parts
        if isinstance(p.get("functionCall"), dict)
    ]
    message: JsonObject = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    images = gemini_images_to_openai(parts)
    if images:
        message["images"] = images
    reason = candidate.get("finishReason")
    return {
        "index": candidate.get("index", position),
        "message": message,
        "logprobs": None,
        "finish_reason": gemini_finish_reason_to_openai(reason, called_tools=bool(calls)),
    }


def _blocked_choice() -> JsonObject:
    message = {"role": "assistant", "content": ""}
    return {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}


def gemini_response_to_openai(payload: JsonObject, model_id: str) -> ChatResult:
    """A ``chat.completion`` for a ``GenerateContentResponse``."""
    candidates = payload.get("candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise UpstreamError("Gemini sent a malformed response")
    ids = ToolCallIds(payload.get("responseId"))
    choices = [gemini_candidate_to_openai(c, i, ids) for i, c in enumerate(candidates or ())]
    if not choices:
        choices = [_blocked_choice()]
    usage = gemini_usage_to_openai(payload.get("usageMetadata"))
    body: JsonObject = {
        "id": f"chatcmpl-{payload.get('responseId') or uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage.as_openai()
    return ChatResult(body=body, usage=usage)


class GeminiStreamTranslator:
    """Turns one stream's ``GenerateContentResponse`` events into OpenAI chunks.

    Each candidate gets its role chunk first, then text and tool-call deltas (one index per
    call), then its finish chunk. Once a candidate has finished, every ``usageMetadata`` is
    also sent as a usage chunk; the gateway keeps the last.
    """

    def __init__(self, adapter: GeminiAdapter, call: ChatCall) -> None:
        self._adapter = adapter
        self._model = call.model_id
        self._id = ""
        self._created = int(time.time())
        self._ids: ToolCallIds | None = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished = False

    def __call__(self, event: SseEvent) -> list[JsonObject]:
        """The chunks for one event."""
        if not event.data.strip():
            return []
        payload = self._adapter.decode_event(event)
        if not self._id:
            response_id = payload.get("responseId")
            self._id = f"chatcmpl-{response_id or uuid.uuid4().hex}"
            self._ids = ToolCallIds(response_id)
        chunks: list[JsonObject] = []
        candidates = payload.get("candidates") or []
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, dict):
                chunks += self._candidate(candidate, candidate.get("index", position))
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            chunks += self._start(0)
            chunks.append(self._chunk(0, {}, "content_filter"))
            self._finished = True
        usage = gemini_usage_to_openai(payload.get("usageMetadata"))
        if usage is not None and self._finished:
            chunks.append({**self._frame(), "choices": [], "usage": usage.as_openai()})
        return chunks

    def _frame(self) -> JsonObject:
        return {
            "id": self._id, "object": "chat.completion.chunk",
            "created": self._created, "model": self._model,
        }  # fmt: skip

    def _chunk(self, index: int, delta: JsonObject, finish: str | None = None) -> JsonObject:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._frame(), "choices": [choice]}

    def _start(self, index: int) -> list[JsonObject]:
        if index in self._started:
            return []
        self._started.add(index)
        return [self._chunk(index, {"role": "assistant", "content": ""})]

    def _candidate(self, candidate: JsonObject, index: int) -> list[JsonObject]:
        assert self._ids is not None
        chunks = self._start(index)
        parts = _visible_parts(candidate)
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        if text:
            chunks.append(self._chunk(index, {"content": text}))
        images = gemini_images_to_openai(parts)
        if images:
            chunks.append(self._chunk(index, {"images": images}))
        for part in parts:
            if isinstance(part.get("functionCall"), dict):
                position = self._calls.get(index, 0)
                self._calls[index] = position + 1
                call = {"index": position, **gemini_function_call_to_openai(part, self._ids.new())}
                chunks.append(self._chunk(index, {"tool_calls": [call]}))
        reason = candidate.get("finishReason")
        if reason:
            called = self._calls.get(index, 0) > 0
            finish = gemini_finish_reason_to_openai(reason, called_tools=called)
            chunks.append(self._chunk(index, {}, finish))
            self._finished = True
        return chunks


# Errors.


def _google_error(payload: Any) -> JsonObject:
    if isinstance(payload, list) and payload:
        payload = payload[0]  # the JSON-array framing some errors arrive in
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _detail_reasons(error: JsonObject) -> set[str]:
    details = error.get("details")
    return {str(d.get("reason")) for d in details or () if isinstance(d, dict) and d.get("reason")}


def _retry_delay(error: JsonObject) -> str | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"20s"``), if any."""
    for detail in error.get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(max(1, round(float(delay[:-1]))))
            except ValueError:
                return None
    return None


class GeminiAdapter(HttpAdapter):
    """Chat over the Gemini API's ``generateContent`` methods."""

    @functools.cached_property
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["x-goog-api-key"] = self.config.api_key
        headers.update(self.config.headers)
        return headers

    def _url(self, upstream_model: str, *, stream: bool) -> str:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return self._method_url(upstream_model, method)

    def _method_url(self, upstream_model: str, method: str) -> str:
        """The URL of one of the model's methods (``generateContent``, ``predict``)."""
        base = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        model = quote(upstream_model.removeprefix("models/"), safe="-._~")
        return f"{base}/v1beta/models/{model}:{method}"

    def _scrub(self, text: str) -> str:
        """Error text with the credential removed."""
        return scrub_secret(text, self.config.api_key)

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Everything without a Gemini equivalent (see the module docstring)."""
        dropped = []
        for name, value in body.items():
            if name in TRANSLATED_PARAMS or value is None:
                continue
            if (name, value) in (("parallel_tool_calls", True), ("logprobs", False)):
                continue
            dropped.append(name)
        return dropped

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """The ``GenerateContentRequest`` for the call."""
        body = openai_to_gemini_request(call.body, call.upstream_model)
        return UpstreamRequest(self._url(call.upstream_model, stream=stream), self._headers, body)

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """The ``chat.completion`` for a ``GenerateContentResponse``."""
        if not isinstance(payload, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed response")
        return gemini_response_to_openai(payload, call.model_id)

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """A fresh translator per stream: it remembers roles sent and tool-call indexes."""
        return GeminiStreamTranslator(self, call)

    async def images(self, call: ImageCall) -> ImageResult:
        """Imagen models generate images through ``predict`` (see ``imagen``); every other
        model through ``generateContent``, one call per image (see ``gemini_image``)."""
        if is_imagen_model(call.upstream_model):
            person_generation = self.config.option("person_generation")
            body = openai_to_imagen_request(call, person_generation=person_generation)
            payload = await self._post(self._method_url(call.upstream_model, "predict"), body)
            return imagen_response_to_openai(payload, self.config.name)
        body = openai_to_gemini_image_request(call)
        answers = await asyncio.gather(*(self._generated_image(call, body) for _ in range(call.n)))
        usage = add_usages([answer_usage for _, answer_usage in answers])
        images = [image for image, _ in answers]
        return ImageResult(images=images, created=int(time.time()), usage=usage)

    async def _generated_image(
        self, call: ImageCall, body: JsonObject
    ) -> tuple[GeneratedImage, Usage | None]:
        payload = await self._post(self._method_url(call.upstream_model, "generateContent"), body)
        image = gemini_answer_to_image(payload, self.config.name)
        return image, gemini_usage_to_openai(payload.get("usageMetadata"))

    async def _post(self, url: str, body: JsonObject) -> Any:
        """The JSON answer of one non-streamed call."""
        request = await self.authorize(UpstreamRequest(url, self._headers, body))
        async with self._send(request) as response:
            raw = await self._read_body(response)
            if response.status >= 400:
                raise self.map_error(response.status, raw, response.headers)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a response that is not JSON") from None

    def decode_event(self, event: SseEvent) -> JsonObject:
        """One stream event's JSON; an ``error`` object raises as a mapped UpstreamError."""
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a malformed stream event") from None
        if not isinstance(payload, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed stream event")
        if "error" in payload:
            error = _google_error(payload)
            code = error.get("code")
            raise self._classify(code if isinstance(code, int) else 500, error, {})
        return payload

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Google's ``{"error": {"code", "message", "status"}}``, classified by status."""
        try:
            error = _google_error(orjson.loads(raw))
        except orjson.JSONDecodeError:
            error = {"message": raw.decode("utf-8", errors="replace").strip()}
        return self._classify(status, error, headers)

    def _classify(
        self, status: int, error: JsonObject, headers: Mapping[str, str]
    ) -> UpstreamError:
        name = self.config.name
        if status in (401, 403, 404) or _detail_reasons(error) & CREDENTIAL_REASONS:
            return UpstreamError(
                f"{name} rejected the request for this deployment (HTTP {status})", status=502
            )
        label = f" ({error['status']})" if isinstance(error.get("status"), str) else ""
        message = str(error.get("message") or "no error message")
        text = self._scrub(f"{name}{label}: {message}")
        if status in (400, 413, 415, 422):
            return upstream_rejected(text)
        if status == 429:
            retry_after = headers.get("retry-after") or _retry_delay(error)
            return upstream_rate_limited(text, retry_after)
        return UpstreamError(text, status=502 if status >= 500 else status)
