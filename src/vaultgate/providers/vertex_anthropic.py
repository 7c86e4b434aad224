"""Anthropic's Claude models on Vertex AI (format ``vertex-anthropic``).

Vertex serves Claude with Anthropic's own Messages API, so requests, responses, streams and
stream errors are translated by ``anthropic``; the credentials, the project and the location
are the ``vertex`` provider's. What differs from Anthropic's API
(https://docs.anthropic.com/en/api/claude-on-vertex-ai,
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude):

- URLs: ``{base}/v1/projects/{project}/locations/{location}/publishers/anthropic/models/
  {model}:rawPredict``, and ``:streamRawPredict`` for streams (SSE framed as Anthropic's).
  The host follows the location as for ``vertex``: ``global`` on
  ``aiplatform.googleapis.com``, a region on ``{region}-aiplatform.googleapis.com``, the
  ``us`` and ``eu`` multi-regions on ``aiplatform.{us,eu}.rep.googleapis.com``.
- Body: no ``model`` (the URL names it), and ``anthropic_version: "vertex-2023-10-16"`` in
  the body instead of the ``anthropic-version`` header.
- Auth: an OAuth2 bearer token from the same credentials as ``vertex`` (options
  ``access_token`` or ``credentials``, or the ``api_key_env`` variable); no ``x-api-key``.
- Errors: the model's errors keep Anthropic's body (``{"type": "error", "error": {...}}``);
  Vertex's own (a rejected token, a denied project, an exhausted quota) come as
  ``google.rpc.Status``, sometimes framed in a JSON array. Both are read by their
  ``error.message`` and classified by status as for Anthropic; a 401 also drops the cached
  token. Vertex's 429 carries no ``retry-after``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from urllib.parse import quote

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.anthropic import AnthropicAdapter, openai_to_anthropic_request
from vaultgate.providers.base import ChatCall, ProviderConfig
from vaultgate.providers.http import HttpClient, UpstreamRequest
from vaultgate.providers.vertex import (
    TokenSource,
    token_source_for,
    vertex_location_url,
    with_bearer_token,
)

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def _unframed(raw: bytes) -> bytes:
    """An error body without the JSON-array framing some Google errors arrive in."""
    if not raw.lstrip().startswith(b"["):
        return raw
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    return orjson.dumps(payload[0]) if isinstance(payload, list) and payload else raw


class VertexAnthropicAdapter(AnthropicAdapter):
    """Claude over Vertex AI's ``rawPredict`` methods."""

    def __init__(
        self, config: ProviderConfig, http: HttpClient, tokens: TokenSource | None = None
    ) -> None:
        super().__init__(config, http)
        self.tokens = tokens if tokens is not None else token_source_for(config, http)

    @functools.cached_property
    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(self.config.headers)
        return headers

    @functools.cached_property
    def _model_root(self) -> str:
        return vertex_location_url(self.config) + "/publishers/anthropic/models"

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """The Messages API body, its model moved into the URL."""
        body = openai_to_anthropic_request(call, stream=stream)
        del body["model"]
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        method = "streamRawPredict" if stream else "rawPredict"
        model = quote(call.upstream_model.removeprefix("publishers/anthropic/models/"), "-._~@")
        return UpstreamRequest(f"{self._model_root}/{model}:{method}", self._headers, body)

    async def authorize(self, request: UpstreamRequest) -> UpstreamRequest:
        """The request with ``Authorization: Bearer <token>``."""
        return await with_bearer_token(self.config, self.tokens, request)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """As for Anthropic, the token scrubbed; a 401 also drops the cached token."""
        token = self.tokens.current if self.tokens is not None else None
        raw = _unframed(raw)
        if token and len(token) >= 4:
            raw = raw.replace(token.encode(), b"***")
        error = super().map_error(status, raw, headers)
        if status == 401 and self.tokens is not None:
            self.tokens.invalidate()
        return error
