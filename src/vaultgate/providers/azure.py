"""Azure OpenAI: OpenAI's wire format behind Azure's URLs, credentials and content filter.

References: the REST reference (https://learn.microsoft.com/azure/ai-foundry/openai/reference),
the v1 API (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle) and
content filtering (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter).

The provider's ``base_url`` is the resource endpoint (``https://NAME.openai.azure.com``).
Options:

=============== ==========================================================================
Option          Meaning
=============== ==========================================================================
api_style       ``deployments`` (default): ``{endpoint}/openai/deployments/{deployment}/
                chat/completions?api-version={api_version}``, where the catalog's upstream
                name is the deployment name; ``v1``: ``{endpoint}/openai/v1/chat/
                completions`` with the upstream name as ``model`` in the body
api_version     the dated API version of the deployment style (default ``2024-10-21``, GA)
auth            ``api-key`` (default): the credential goes in the ``api-key`` header;
                ``entra``: it is a Microsoft Entra access token, sent as a bearer token
=============== ==========================================================================

Images use the same two styles (``.../images/generations``).

An Entra access token lasts about an hour, so a token in an environment variable serves a
short run only. TODO: obtain tokens from a managed identity or a client secret and refresh
them per request (the adapter's ``authorize`` hook), once VaultGate has a settings place for
Azure identities.

Content filtering. A prompt the filter blocks is answered with a 400 whose ``error.code`` is
``content_filter``; it becomes an OpenAI-shaped 400 with code ``content_filter`` that names
the categories that tripped, and is never retried elsewhere. A completion the filter cuts
keeps its ``finish_reason`` of ``content_filter``, as OpenAI spells it.

Azure's annotations (``prompt_filter_results`` and each choice's ``content_filter_results``)
are stripped: the same gateway model may be served by OpenAI or by Azure, and a client must
not see the answer's shape change with the deployment that served it; the verdict that
matters reaches the client as the finish reason or the error code. Stripping also disposes
of the chunks that carry nothing else: the first streamed chunk, with empty ``choices``
and the prompt's annotations, and the trailing annotation chunks of asynchronous filtering.
The first chunk the client then sees carries the assistant role, as OpenAI's does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from vaultgate.errors import ConfigError, UpstreamError
from vaultgate.providers.base import ChatCall, ChatResult, ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.http import (
    HttpClient,
    UpstreamRequest,
    error_message_from_body,
    scrub_secret,
)
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter
from vaultgate.providers.sse import SseEvent

DEFAULT_API_VERSION = "2024-10-21"
API_STYLES = ("deployments", "v1")
AUTH_MODES = ("api-key", "entra")
# ``contentFilter`` is how the image API spells the same verdict.
CONTENT_FILTER_CODES = frozenset({"content_filter", "contentFilter"})
RESPONSE_ANNOTATIONS = ("prompt_filter_results", "prompt_annotations")
CHOICE_ANNOTATIONS = ("content_filter_results", "content_filter_offsets")


def strip_azure_annotations(payload: JsonObject) -> JsonObject:
    """Remove Azure's content-filter annotations from a completion or a chunk, in place."""
    for name in RESPONSE_ANNOTATIONS:
        payload.pop(name, None)
    for choice in payload.get("choices") or ():
        if isinstance(choice, dict):
            for name in CHOICE_ANNOTATIONS:
                choice.pop(name, None)
    return payload


def _carries_payload(choice: Any) -> bool:
    """Whether a streamed choice says anything once its annotations are gone."""
    if not isinstance(choice, dict):
        return False
    return choice.get("finish_reason") is not None or bool(choice.get("delta"))


def _filtered_categories(error: JsonObject) -> list[str]:
    """The categories ``innererror.content_filter_result`` marks as filtered."""
    inner = error.get("innererror") or error.get("inner_error") or {}
    results = inner.get("content_filter_result") or inner.get("content_filter_results")
    if not isinstance(results, dict):
        return []
    return sorted(
        name
        for name, verdict in results.items()
        if isinstance(verdict, dict) and verdict.get("filtered") is True
    )


def _retry_after(headers: Mapping[str, str]) -> str | None:
    """``retry-after`` in seconds, else Azure's ``retry-after-ms`` rounded up."""
    if headers.get("retry-after"):
        return headers["retry-after"]
    millis = headers.get("retry-after-ms")
    try:
        return str(max(1, math.ceil(float(millis) / 1000))) if millis else None
    except ValueError:
        return None


def _choice(config: ProviderConfig, option: str, allowed: tuple[str, ...]) -> str:
    """An option that must be one of ``allowed``; the first is the default."""
    value = config.option(option, allowed[0]) or allowed[0]
    if value not in allowed:
        raise ConfigError(f"provider {config.name!r}: option {option!r} must be one of {allowed}")
    return value


class AzureStream:
    """Cleans one stream's chunks: annotations out, empty chunks dropped, role first."""

    def __init__(self, adapter: AzureOpenAIAdapter, call: ChatCall) -> None:
        self._adapter = adapter
        self._call = call
        self._role_sent = False

    def __call__(self, event: SseEvent) -> list[JsonObject]:
        """The OpenAI chunks for one event (none for an annotation-only chunk)."""
        cleaned = []
        for chunk in self._adapter.translate_stream_event(self._call, event):
            strip_azure_annotations(chunk)
            choices = [c for c in chunk.get("choices") or () if _carries_payload(c)]
            if not choices and chunk.get("usage") is None:
                continue
            chunk["choices"] = choices
            if choices and not self._role_sent:
                delta = choices[0].setdefault("delta", {})
                delta.setdefault("role", "assistant")
                self._role_sent = True
            cleaned.append(chunk)
        return cleaned


class AzureOpenAIAdapter(OpenAICompatibleAdapter):
    """Chat and images on an Azure OpenAI resource (see the module docstring)."""

    def __init__(self, config: ProviderConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        self._style = _choice(config, "api_style", API_STYLES)
        self._auth = _choice(config, "auth", AUTH_MODES)
        self._api_version = config.option("api_version") or DEFAULT_API_VERSION

    @functools.cached_property
    def _static_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key and self._auth == "entra":
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        elif self.config.api_key:
            headers["api-key"] = self.config.api_key
        headers.update(self.config.headers)
        return headers

    def endpoint_url(self, deployment: str, operation: str) -> str:
        """The URL of ``operation`` (``chat/completions``) for a deployment, in the
        configured style."""
        endpoint = self.config.base_url.rstrip("/")
        if self._style == "v1":
            return f"{endpoint}/openai/v1/{operation}"
        name = quote(deployment, safe="")
        return f"{endpoint}/openai/deployments/{name}/{operation}?api-version={self._api_version}"

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """OpenAI's body (the deployment name as ``model``) at the Azure URL."""
        request = super().build_chat_request(call, stream=stream)
        url = self.endpoint_url(call.upstream_model, "chat/completions")
        return dataclasses.replace(request, url=url)

    def build_images_request(self, call: ImageCall) -> UpstreamRequest:
        """OpenAI's images body at the Azure URL."""
        request = super().build_images_request(call)
        url = self.endpoint_url(call.upstream_model, "images/generations")
        return dataclasses.replace(request, url=url)

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """OpenAI's completion without Azure's filter annotations."""
        if isinstance(payload, dict):
            strip_azure_annotations(payload)
        return super().parse_chat_response(call, payload)

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """A fresh cleaner per stream: it remembers whether the role was sent."""
        return AzureStream(self, call)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """A blocked prompt is the client's 400 ``content_filter``; the rest as OpenAI's."""
        message, payload = error_message_from_body(raw)
        error = (payload or {}).get("error")
        if status == 400 and isinstance(error, dict) and error.get("code") in CONTENT_FILTER_CODES:
            return self._content_filter_error(message, error)
        mapped = super().map_error(status, raw, headers)
        if status == 429 and "retry-after" not in mapped.headers:
            retry_after = _retry_after(headers)
            if retry_after:
                mapped.headers["retry-after"] = retry_after
        return mapped

    def _content_filter_error(self, message: str, error: JsonObject) -> UpstreamError:
        categories = _filtered_categories(error)
        detail = f" (filtered: {', '.join(categories)})" if categories else ""
        text = scrub_secret(f"{self.config.name}: {message}{detail}", self.config.api_key)
        return UpstreamError(
            text, status=400, error_type="invalid_request_error", code="content_filter",
            param="prompt", retryable=False,
        )  # fmt: skip
