"""Google's Gemini models on Vertex AI (format ``vertex``).

Vertex AI speaks the Gemini ``generateContent`` wire format, so requests, responses, streams
and errors are translated by ``gemini`` and ``gemini_request``; this module adds what Vertex
does differently (https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest):

- URLs: ``{base}/v1/projects/{project}/locations/{location}/publishers/google/models/
  {model}:generateContent`` and ``:streamGenerateContent?alt=sse``; Imagen models use
  ``:predict`` (see ``imagen``). The base is ``https://{location}-aiplatform.googleapis.com``,
  or ``https://aiplatform.googleapis.com`` for the ``global`` location
  (https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations#global-endpoint),
  or ``https://aiplatform.{us,eu}.rep.googleapis.com`` for the ``us`` and ``eu``
  multi-regions (as Google's ``google-genai`` and Anthropic's Vertex SDKs build it);
  a ``base_url`` naming any other host (a proxy, a test server) is used as given.
- Options: ``project`` (required), ``location`` (default ``global``), ``person_generation``
  for Imagen, and the credentials below.
- Auth: an OAuth2 bearer token, never an API key. The credential is, in order: option
  ``access_token`` (sent as is, never refreshed: it expires within the hour), option
  ``credentials`` (a service-account key, inline JSON or the path of its file), or the
  provider's ``api_key_env`` variable, read as a service-account key unless option ``auth``
  is ``access_token``. Service-account tokens are minted and cached by ``google_auth``.
- Roles: every turn carries ``user`` or ``model``, which Vertex requires for multi-turn
  requests; the system instruction is sent without a role.
- ``labels``: OpenAI ``metadata`` becomes the request's billing ``labels`` when every key
  and value is a valid label (keys 1 to 63 lowercase ASCII letters, digits, ``_`` or ``-``,
  starting with a letter; values up to 63 of the same); otherwise ``metadata`` is dropped
  with a warning. Vertex allows international letters too; those are dropped here.
- Errors: the ``google.rpc.Status`` body (``{"error": {code, message, status, details}}``)
  is read as for the Gemini API. A 401 (a rejected token) also drops the cached token so the
  next request fetches a new one; 401, 403 and 404 are deployment errors (502, retried on
  another deployment); 429 RESOURCE_EXHAUSTED keeps a RetryInfo delay as ``retry-after``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import ChatCall, JsonObject, ProviderConfig
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.gemini_request import openai_to_gemini_request
from vaultgate.providers.google_auth import ServiceAccountTokens, StaticToken
from vaultgate.providers.http import HttpClient, UpstreamRequest, scrub_secret

DEFAULT_BASE_URL = "https://aiplatform.googleapis.com"
GLOBAL_HOST = "aiplatform.googleapis.com"
DEFAULT_LOCATION = "global"
LOCATION = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
MULTI_REGIONS = frozenset({"us", "eu"})
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


class TokenSource(Protocol):
    """Where bearer tokens come from."""

    @property
    def current(self) -> str | None:
        """The token last handed out, if any."""
        ...

    async def token(self) -> str:
        """A valid token."""
        ...

    def invalidate(self) -> None:
        """Forget a token Google rejected."""
        ...


def _misconfigured(config: ProviderConfig, reason: str) -> UpstreamError:
    return UpstreamError(f"{config.name} is misconfigured: {reason}", status=502)


def token_source_for(config: ProviderConfig, http: HttpClient) -> TokenSource | None:
    """The credential the module docstring describes, or None when none is configured."""
    static = config.option("access_token")
    if static:
        return StaticToken(static)
    key = config.option("credentials")
    if key:
        return ServiceAccountTokens(key, http, provider=config.name)
    if not config.api_key:
        return None
    if config.option("auth") == "access_token":
        return StaticToken(config.api_key)
    return ServiceAccountTokens(config.api_key, http, provider=config.name)


def vertex_location_url(config: ProviderConfig) -> str:
    """``{base}/v1/projects/{project}/locations/{location}``, the root of every model's URL;
    502 when the project is missing or the location is not a location name."""
    project = config.option("project")
    location = config.option("location") or DEFAULT_LOCATION
    if not project:
        raise _misconfigured(config, "option 'project' is not set")
    if not LOCATION.match(location):
        raise _misconfigured(config, f"option 'location' {location!r} is not valid")
    parts = urlsplit((config.base_url or DEFAULT_BASE_URL).rstrip("/"))
    if parts.hostname == GLOBAL_HOST and location in MULTI_REGIONS:
        parts = parts._replace(netloc=f"aiplatform.{location}.rep.googleapis.com")
    elif parts.hostname == GLOBAL_HOST and location != DEFAULT_LOCATION:
        parts = parts._replace(netloc=f"{location}-{GLOBAL_HOST}")
    path = f"/v1/projects/{quote(project, safe='')}/locations/{location}"
    return urlunsplit(parts._replace(path=parts.path + path))


async def with_bearer_token(
    config: ProviderConfig, tokens: TokenSource | None, request: UpstreamRequest
) -> UpstreamRequest:
    """The request with ``Authorization: Bearer <token>``."""
    if tokens is None:
        raise _misconfigured(config, "no credentials are configured")
    token = await tokens.token()
    headers = {**request.headers, "Authorization": f"Bearer {token}"}
    return UpstreamRequest(request.url, headers, request.json, request.body, request.method)


def openai_metadata_to_vertex_labels(metadata: Any) -> dict[str, str] | None:
    """``metadata`` as Vertex ``labels``; None when any pair is not a valid label."""
    if not isinstance(metadata, dict):
        return None
    for key, value in metadata.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            return None
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            return None
    return dict(metadata)


class VertexAdapter(GeminiAdapter):
    """Gemini (and Imagen) models served by Vertex AI."""

    def __init__(
        self, config: ProviderConfig, http: HttpClient, tokens: TokenSource | None = None
    ) -> None:
        super().__init__(config, http)
        self.tokens = tokens if tokens is not None else token_source_for(config, http)

    @functools.cached_property
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.config.headers)
        return headers

    @functools.cached_property
    def _model_root(self) -> str:
        """``{base}/v1/projects/{project}/locations/{location}/publishers/google/models``."""
        return vertex_location_url(self.config) + "/publishers/google/models"

    def _method_url(self, upstream_model: str, method: str) -> str:
        model = upstream_model.removeprefix("publishers/google/models/")
        return f"{self._model_root}/{quote(model, safe='-._~@')}:{method}"

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """As for the Gemini API, except ``metadata`` that fits Vertex's label rules."""
        dropped = super().unsupported_params(body)
        if "metadata" in dropped and openai_metadata_to_vertex_labels(body["metadata"]):
            dropped.remove("metadata")
        return dropped

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """The ``GenerateContentRequest``, with ``labels`` from valid ``metadata``."""
        body = openai_to_gemini_request(call.body, call.upstream_model)
        labels = openai_metadata_to_vertex_labels(call.body.get("metadata"))
        if labels:
            body["labels"] = labels
        return UpstreamRequest(self._url(call.upstream_model, stream=stream), self._headers, body)

    async def authorize(self, request: UpstreamRequest) -> UpstreamRequest:
        """The request with ``Authorization: Bearer <token>``."""
        return await with_bearer_token(self.config, self.tokens, request)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """As for the Gemini API; a 401 also drops the cached token."""
        error = super().map_error(status, raw, headers)
        if status == 401 and self.tokens is not None:
            self.tokens.invalidate()  # after mapping, so the message is scrubbed of it
        return error

    def _scrub(self, text: str) -> str:
        current = self.tokens.current if self.tokens is not None else None
        return scrub_secret(scrub_secret(text, current), self.config.api_key)
