"""The OpenAI wire format, for OpenAI itself and every server that imitates it.

Real servers differ from OpenAI in ways this adapter absorbs: streams without usage (the
gateway then counts tokens itself), SSE comment and keep-alive lines, error bodies that are
not in OpenAI's shape, and 5xx statuses for what the body says is a client error.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    ImageCall,
    ImageResult,
    JsonObject,
    ProviderConfig,
    usage_from_openai,
)
from vaultgate.providers.http import (
    HttpAdapter,
    HttpClient,
    UpstreamRequest,
    error_message_from_body,
    scrub_secret,
    upstream_rate_limited,
    upstream_rejected,
)
from vaultgate.providers.image_support import fan_out
from vaultgate.providers.openai_images import openai_images_result, plan_openai_images
from vaultgate.providers.sse import SseEvent

# Upstream statuses that mean the caller's request was wrong, and are never retried.
CLIENT_ERROR_STATUSES = frozenset({400, 413, 415, 422})
# Upstream statuses about VaultGate's own credentials or setup: another deployment may work.
DEPLOYMENT_ERROR_STATUSES = frozenset({401, 402, 403, 404})
# Two names of one output limit: a default for either is not added when the other is set.
OUTPUT_LIMIT_PARAMS = frozenset({"max_tokens", "max_completion_tokens"})


def _says_client_error(payload: JsonObject | None) -> bool:
    """Whether a 5xx body declares itself a client error (llama.cpp and vLLM do this)."""
    if not payload:
        return False
    error = payload.get("error")
    if not isinstance(error, dict):
        return False
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 500 and code != 429:
        return True
    return error.get("type") in ("invalid_request_error", "BadRequestError")


def _well_formed(choice: Any, part: str) -> bool:
    """Whether a choice holds a ``message`` (or a stream ``delta``) object whose content is
    text or null and whose tool calls are a list."""
    if not isinstance(choice, dict):
        return False
    inner = choice.get(part)
    if inner is None and part == "delta":
        return True
    if not isinstance(inner, dict):
        return False
    content, calls = inner.get("content"), inner.get("tool_calls")
    return (content is None or isinstance(content, str)) and (
        calls is None or isinstance(calls, list)
    )


def apply_param_rules(body: JsonObject, config: ProviderConfig) -> None:
    """Fill the provider's ``default_params`` the client left out and clamp numbers into its
    ``clamp_params`` ranges; both name parameters as the provider spells them."""
    for name, value in config.default_params:
        limits = OUTPUT_LIMIT_PARAMS if name in OUTPUT_LIMIT_PARAMS else {name}
        if all(body.get(other) is None for other in limits):
            body[name] = value
    for name, low, high in config.clamp_params:
        number = body.get(name)
        if isinstance(number, int | float) and not isinstance(number, bool):
            body[name] = min(max(number, low), high)


class OpenAICompatibleAdapter(HttpAdapter):
    """Chat and images over the OpenAI REST API at any base URL."""

    @functools.cached_property
    def _static_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        headers.update(self.config.headers)
        return headers

    def _headers(self) -> dict[str, str]:
        # Built once per provider; aiohttp copies what it is given.
        return self._static_headers

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def __init__(self, config: ProviderConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        # A server that rejects ``n`` answers one choice per request: the gateway fans out.
        self.supports_n = "n" not in config.drop_params

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Parameters this provider is known to reject (its ``drop_params``); ``n`` is not
        among them, since the gateway asks such a provider once per choice instead."""
        return [name for name in self.config.drop_params if name in body and name != "n"]

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """The client's body, with the upstream model name and usage reporting asked for;
        parameters the provider spells differently are renamed (``rename_params``), then its
        defaults and clamps applied (``default_params``, ``clamp_params``)."""
        body = dict(call.body)
        body["model"] = call.upstream_model
        if not self.supports_n:
            body.pop("n", None)
        for ours, theirs in self.config.rename_params:
            if ours in body and theirs not in body:
                body[theirs] = body.pop(ours)
        apply_param_rules(body, self.config)
        if stream:
            body["stream"] = True
            if self.config.stream_usage:
                options = dict(body.get("stream_options") or {})
                options["include_usage"] = True
                body["stream_options"] = options
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return UpstreamRequest(self._url("/chat/completions"), self._headers(), body)

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """OpenAI's own shape; only the model name is rewritten to the gateway's id. An
        answer without choices, or with one that is not a message, is an upstream failure
        rather than a success to relay."""
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices:
            raise UpstreamError(f"{self.config.name} sent a chat completion without choices")
        if not all(_well_formed(choice, "message") for choice in choices):
            raise UpstreamError(f"{self.config.name} sent a malformed chat completion")
        payload["model"] = call.model_id
        payload.setdefault("object", "chat.completion")
        payload.setdefault("created", int(time.time()))
        return ChatResult(body=payload, usage=usage_from_openai(payload.get("usage")))

    def translate_stream_event(self, call: ChatCall, event: SseEvent) -> list[JsonObject]:
        """Each ``data:`` event is already an OpenAI chunk; ``[DONE]`` ends nothing here."""
        data = event.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a malformed stream event") from None
        if not isinstance(chunk, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed stream event")
        if "error" in chunk or event.event == "error":
            message, _ = error_message_from_body(data.encode())
            raise UpstreamError(
                scrub_secret(f"{self.config.name}: {message}", self.config.api_key)
            )
        choices = chunk.setdefault("choices", [])
        if not isinstance(choices, list) or not all(_well_formed(c, "delta") for c in choices):
            raise UpstreamError(f"{self.config.name} sent a malformed stream chunk")
        chunk["model"] = call.model_id
        return [chunk]

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Classify by status and by the body's declared type, never by message wording."""
        message, payload = error_message_from_body(raw)
        name = self.config.name
        if status in DEPLOYMENT_ERROR_STATUSES:
            return UpstreamError(
                f"{name} rejected the request for this deployment (HTTP {status})",
                status=502,
            )
        text = scrub_secret(f"{name}: {message}", self.config.api_key)
        if status in CLIENT_ERROR_STATUSES or (status >= 500 and _says_client_error(payload)):
            return upstream_rejected(text)
        if status == 429:
            retry_after = headers.get("retry-after")
            return upstream_rate_limited(text, retry_after)
        return UpstreamError(text, status=502 if status >= 500 else status)

    def build_images_request(self, call: ImageCall) -> UpstreamRequest:
        """POST {base_url}/images/generations with the client's body and the upstream model."""
        body = dict(call.body)
        body["model"] = call.upstream_model
        return UpstreamRequest(self._url("/images/generations"), self._headers(), body)

    async def images(self, call: ImageCall) -> ImageResult:
        """Translate the request for the server's images dialect (openai_images.py), send it
        once or once per batch of images, and gather what comes back."""
        plan = plan_openai_images(call, self.config.option("images"), self.config.name)

        async def one(index: int) -> list[JsonObject]:
            return [await self._images_payload(replace(call, body=plan.bodies[index]))]

        payloads = await fan_out(len(plan.bodies), one)
        return openai_images_result(payloads, plan, self.config.name)

    async def _images_payload(self, call: ImageCall) -> JsonObject:
        request = await self.authorize(self.build_images_request(call))
        async with self._send(request) as response:
            raw = await self._read_body(response)
            if response.status >= 400:
                raise self.map_error(response.status, raw, response.headers)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise UpstreamError(f"{self.config.name} sent a malformed image response")
        return payload
