"""The shared HTTP machinery of every adapter that talks to a provider over HTTP.

One pooled aiohttp session serves all providers (keep-alive, bounded pools). An adapter
supplies four translations — build the upstream request, parse a response, translate a
stream event, map an error — and ``HttpAdapter`` does the rest: sending, timeouts, reading
streams and turning transport failures into ``UpstreamError``. What a provider sends is read
within limits (``max_response_bytes`` for a body, ``max_event_bytes`` for one stream event),
so a hostile or broken upstream cannot exhaust the gateway's memory.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from vaultgate.errors import UpstreamError, UpstreamTimeout
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    ImageCall,
    ImageResult,
    JsonObject,
    ProviderConfig,
)
from vaultgate.providers.redaction import redact_secret
from vaultgate.providers.sse import DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser

log = logging.getLogger("vaultgate.providers")

MAX_ERROR_MESSAGE = 500
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
MAX_ERROR_SCAN_BYTES = 8 * 1024
# Markup in an error page that is not a JSON error (a proxy's HTML 502, say).
INVISIBLE_MARKUP = re.compile(rb"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(rb"<[^>]*>")


class StreamDecoder(Protocol):
    """Incremental decoder of a streamed response body."""

    def feed(self, chunk: bytes) -> list[Any]:
        """Consume bytes; return the events they completed."""
        ...

    def close(self) -> list[Any]:
        """Flush what is left at the end of the body."""
        ...


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """An HTTP request to a provider."""

    url: str
    headers: Mapping[str, str]
    json: JsonObject
    # Pre-serialised body, for formats that sign the exact bytes (AWS SigV4) or send a
    # multipart form.
    body: bytes | None = None
    # GET for polling a task and downloading its result; a GET sends no body.
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect, idle gap between body bytes, total and first-byte limits, in seconds."""

    connect: float
    read: float
    total: float
    first_byte: float | None = None


class HttpClient:
    """Owns the pooled session; created by the app at start-up, closed at shutdown."""

    def __init__(
        self,
        *,
        pool_size: int,
        pool_per_host: int,
        timeouts: Timeouts,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.default_timeouts = timeouts
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes
        self._pool_size = pool_size
        self._pool_per_host = pool_per_host
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, made on first use inside the running event loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                limit_per_host=self._pool_per_host,
                keepalive_timeout=30,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def scrub_secret(text: str, secret: str | None) -> str:
    """Remove a credential, and echoes of it (another letter case, its first or last
    characters, a masked form), from text that came back from a provider."""
    # Only the kept characters matter, plus room for a key that starts among them.
    kept = text[: MAX_ERROR_MESSAGE + len(secret or "")]
    return redact_secret(kept, secret)[:MAX_ERROR_MESSAGE]


def plain_text(raw: bytes) -> str:
    """Readable text of a body that is not JSON: markup (an HTML error page) reduced to its
    words, whitespace collapsed, cut to ``MAX_ERROR_MESSAGE`` characters. Only the start of
    the body is read, which keeps the cost of the markup patterns bounded."""
    raw = raw[:MAX_ERROR_SCAN_BYTES]
    if b"<" in raw:
        raw = TAG.sub(b" ", INVISIBLE_MARKUP.sub(b" ", raw))
    text = " ".join(html.unescape(raw.decode("utf-8", errors="replace")).split())
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def error_message_from_body(raw: bytes) -> tuple[str, JsonObject | None]:
    """The most useful message in an error body of any shape, and the body as JSON."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return plain_text(raw) or "no error message", None
    if not isinstance(payload, dict):
        return str(payload), None
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"], payload
    for candidate in (error, payload.get("detail"), payload.get("message")):
        if isinstance(candidate, str) and candidate:
            return candidate, payload
    return orjson.dumps(payload).decode(), payload


def upstream_rejected(message: str) -> UpstreamError:
    """The provider called the request invalid: a 400 for the client, never retried."""
    return UpstreamError(
        message, status=400, error_type="invalid_request_error",
        code="upstream_rejected_request", retryable=False,
    )  # fmt: skip


def upstream_rate_limited(message: str, retry_after: str | None) -> UpstreamError:
    """The provider rate-limited the request: a 429 keeping its ``retry-after``."""
    return UpstreamError(
        message, status=429, error_type="rate_limit_error", code="upstream_rate_limited",
        headers={"retry-after": retry_after} if retry_after else None,
    )  # fmt: skip


class HttpAdapter:
    """Base of HTTP adapters: subclasses provide the four translation methods."""

    # Formats that answer one choice per request set this to False (see ``fanout``).
    supports_n: bool = True

    def __init__(self, config: ProviderConfig, http: HttpClient) -> None:
        self.config = config
        self._http = http
        defaults = http.default_timeouts
        self._timeout = aiohttp.ClientTimeout(
            total=config.total_timeout_s or defaults.total,
            connect=config.connect_timeout_s or defaults.connect,
            sock_read=config.read_timeout_s or defaults.read,
        )
        self._first_byte_timeout = (
            config.first_byte_timeout_s or defaults.first_byte or self._timeout.total
        )

    # The four translations an adapter supplies.

    def build_chat_request(self, call: ChatCall, *, stream: bool) -> UpstreamRequest:
        """The provider request for an OpenAI-shaped chat call."""
        raise NotImplementedError

    def parse_chat_response(self, call: ChatCall, payload: Any) -> ChatResult:
        """An OpenAI ``chat.completion`` from the provider's response body."""
        raise NotImplementedError

    def translate_stream_event(self, call: ChatCall, event: SseEvent) -> list[JsonObject]:
        """OpenAI chunks for one upstream stream event (raise UpstreamError for errors)."""
        raise NotImplementedError

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """An UpstreamError for a provider's error response."""
        raise NotImplementedError

    # Shared behaviour.

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """By default every parameter is passed on."""
        return []

    async def authorize(self, request: UpstreamRequest) -> UpstreamRequest:
        """The request as sent: formats whose credentials are fetched asynchronously (an
        OAuth2 access token) add them here; by default the request is sent as built."""
        return request

    async def chat(self, call: ChatCall) -> ChatResult:
        """Send the request and parse the whole answer."""
        request = await self.authorize(self.build_chat_request(call, stream=False))
        async with self._send(request) as response:
            raw = await self._read_body(response)
            if response.status >= 400:
                raise self.map_error(response.status, raw, response.headers)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a response that is not JSON") from None
        return self.parse_chat_response(call, payload)

    def stream_decoder(self) -> StreamDecoder:
        """What turns the body's bytes into events: SSE unless the format says otherwise
        (AWS's binary event stream, say)."""
        return SseParser(max_event_bytes=self._http.max_event_bytes)

    def stream_translator(self, call: ChatCall) -> Callable[[Any], list[JsonObject]]:
        """Turns each decoded event into OpenAI chunks. Formats whose streams carry state
        across events (a message id, which tool call an index is) return a bound method of
        a fresh per-stream object here."""
        return lambda event: self.translate_stream_event(call, event)

    async def chat_stream(self, call: ChatCall) -> AsyncIterator[JsonObject]:
        """Send the request and translate the event stream as it arrives."""
        request = await self.authorize(self.build_chat_request(call, stream=True))
        async with self._send(request) as response:
            if response.status >= 400:
                raise self.map_error(
                    response.status, await self._read_body(response), response.headers
                )
            decoder = self.stream_decoder()
            translate = self.stream_translator(call)
            try:
                async for data in response.content.iter_any():
                    for event in decoder.feed(data):
                        for chunk in translate(event):
                            yield chunk
            except TimeoutError:
                raise UpstreamTimeout(f"{self.config.name} stream stalled") from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    f"{self.config.name} stream broke: {type(exc).__name__}"
                ) from None
            for event in decoder.close():
                for chunk in translate(event):
                    yield chunk

    async def images(self, call: ImageCall) -> ImageResult:
        """Providers without an image API refuse."""
        raise UpstreamError(
            f"{self.config.name} does not generate images", status=400, retryable=False
        )

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, or an UpstreamError past ``max_response_bytes`` (the connection
        is then closed, not read to its end)."""
        limit = self._http.max_response_bytes
        too_large = UpstreamError(
            f"{self.config.name} sent a response body larger than {limit} bytes "
            "(the upstream_max_body_bytes setting)"
        )
        if (response.content_length or 0) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError:
            raise UpstreamTimeout(f"{self.config.name} timed out sending its body") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"{self.config.name} connection broke: {type(exc).__name__}"
            ) from None

    def _send(self, request: UpstreamRequest) -> _Exchange:
        return _Exchange(self, request)

    async def aclose(self) -> None:
        """The session belongs to the app; nothing to release here."""


def _body_bytes(request: UpstreamRequest) -> bytes | None:
    if request.method == "GET":
        return None
    return request.body if request.body is not None else orjson.dumps(request.json)


class _Exchange:
    """Async context manager around one request, mapping transport failures."""

    def __init__(self, adapter: HttpAdapter, request: UpstreamRequest) -> None:
        self._adapter = adapter
        self._request = request
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        adapter, request = self._adapter, self._request
        name = adapter.config.name
        try:
            async with asyncio.timeout(adapter._first_byte_timeout):
                self._response = await adapter._http.session.request(
                    request.method,
                    request.url,
                    data=_body_bytes(request),
                    headers=request.headers,
                    timeout=adapter._timeout,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"{name} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"could not reach {name}: {type(exc).__name__}") from None
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            # Closing (not releasing) drops a half-read stream's connection at once, so an
            # abandoned or failed stream stops the upstream generation too.
            if exc_info[0] is not None:
                self._response.close()
            else:
                self._response.release()
