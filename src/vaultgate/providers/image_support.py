"""What image adapters share: downloading results, polling tasks, fanning out one request
per image, and the errors for what a provider cannot honour.

Generated images are downloaded (or decoded) into bytes, so the gateway stores and serves
them itself: providers' result links are signed and expire within minutes (BFL: 10).
Downloads never carry the provider's credential; results live on other hosts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn, TypeVar

import aiohttp
import orjson

from vaultgate.errors import ConfigError, UpstreamError, UpstreamTimeout
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    GeneratedImage,
    ImageCall,
    JsonObject,
    ProviderConfig,
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

T = TypeVar("T")

# Parameters every image adapter reads from the ImageCall rather than the body.
CALL_PARAMS = frozenset({"model", "prompt", "n", "size", "quality", "response_format"})
# Qualities that ask for nothing in particular: providers without a quality knob take them.
NEUTRAL_QUALITIES = frozenset({"standard", "auto"})
MAX_IMAGE_BYTES = 50 * 1024 * 1024
DOWNLOAD_HEADERS = {"Accept": "image/*", "User-Agent": "VaultGate"}
DEFAULT_POLL_INTERVAL_S = 0.5
IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def refuse(provider: str, param: str, message: str) -> UpstreamError:
    """The 400 for a parameter value the provider cannot honour."""
    return UpstreamError(
        f"{provider} {message}", status=400, error_type="invalid_request_error",
        code="unsupported_value", param=param, retryable=False,
    )  # fmt: skip


def content_filtered(provider: str, message: str) -> UpstreamError:
    """A safety system refused the prompt or the image: OpenAI's 400, never retried."""
    return UpstreamError(
        f"{provider}: {message}", status=400, error_type="invalid_request_error",
        code="content_policy_violation", retryable=False,
    )  # fmt: skip


def split_params(body: JsonObject, passthrough: Iterable[str]) -> tuple[JsonObject, list[str]]:
    """The body's provider-specific parameters this provider takes, and the names of the
    others it cannot honour (for ``x-vaultgate-warning``)."""
    allowed = set(passthrough)
    extras = {k: v for k, v in body.items() if k in allowed and v is not None}
    dropped = sorted(k for k in body if k not in allowed and k not in CALL_PARAMS)
    return extras, dropped


def neutral_quality_or_dropped(call: ImageCall, dropped: list[str]) -> None:
    """Providers without a quality setting: a specific quality is dropped with a warning."""
    if "quality" in call.body and call.quality not in NEUTRAL_QUALITIES:
        dropped.append("quality")


def media_type_of(data: bytes) -> str | None:
    """The image type of ``data`` by its signature, or None when it is not an image."""
    for signature, media_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_from_bytes(data: bytes, provider: str) -> GeneratedImage:
    """A GeneratedImage of downloaded or decoded bytes, typed by their signature."""
    media_type = media_type_of(data)
    if media_type is None:
        raise UpstreamError(f"{provider} sent something that is not an image")
    if len(data) > MAX_IMAGE_BYTES:
        raise UpstreamError(f"{provider} sent an image larger than {MAX_IMAGE_BYTES} bytes")
    return GeneratedImage(png=data, media_type=media_type)


def image_from_base64(text: Any, provider: str) -> GeneratedImage:
    """A GeneratedImage of a base64 string, checked to be an image."""
    if not isinstance(text, str):
        raise UpstreamError(f"{provider} sent an image that is not base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(f"{provider} sent an image that is not base64") from None
    return image_from_bytes(data, provider)


def option_seconds(config: ProviderConfig, name: str, default: float) -> float:
    """A positive number of seconds from the provider's options."""
    raw = config.option(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise ConfigError(f"provider {config.name!r}: option {name!r} must be seconds > 0")
    return value


async def fan_out(count: int, make: Callable[[int], Awaitable[list[T]]]) -> list[T]:
    """``make(0)`` ... ``make(count - 1)`` at once, results in order; the first failure
    cancels the others (for providers that make one image per request)."""
    if count == 1:
        return await make(0)
    tasks = [asyncio.ensure_future(make(index)) for index in range(count)]
    try:
        parts = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return [item for part in parts for item in part]


def map_image_error(
    config: ProviderConfig,
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    message: str | None = None,
) -> UpstreamError:
    """Classify an image API's HTTP error by status: the caller's mistakes are 400 and never
    retried, credential and account problems are 502 (another deployment may work), rate
    limits keep their ``retry-after``. ``message`` is the body's, for formats whose error
    bodies ``error_message_from_body`` does not know."""
    if message is None:
        message, _ = error_message_from_body(raw)
    text = scrub_secret(f"{config.name}: {message}", config.api_key)
    if status in (401, 402, 403, 404):
        return UpstreamError(
            f"{config.name} rejected the request for this deployment (HTTP {status})",
            status=502,
        )
    if status in (400, 413, 415, 422):
        return upstream_rejected(text)
    if status == 429:
        retry_after = headers.get("retry-after")
        return upstream_rate_limited(text, retry_after)
    return UpstreamError(text, status=502)


class ImageHttpAdapter(HttpAdapter):
    """Base of adapters for image-only APIs: JSON requests, polling within the provider's
    total timeout, and downloads. They serve no chat."""

    def __init__(self, config: ProviderConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        self.poll_interval_s = option_seconds(config, "poll_interval_s", DEFAULT_POLL_INTERVAL_S)

    def _refuse_chat(self) -> NoReturn:
        raise UpstreamError(
            f"{self.config.name} generates images only", status=400, retryable=False
        )

    async def chat(self, call: ChatCall) -> ChatResult:
        """Image-only providers refuse chat."""
        self._refuse_chat()

    async def chat_stream(self, call: ChatCall) -> AsyncIterator[JsonObject]:
        """Image-only providers refuse chat."""
        self._refuse_chat()
        yield {}  # pragma: no cover - makes this an async generator, like the interface

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Errors classified by status (``map_image_error``)."""
        return map_image_error(self.config, status, raw, headers)

    @contextlib.asynccontextmanager
    async def _within_total_timeout(self) -> AsyncIterator[None]:
        """The whole generation — submit, every poll, every download — within the
        provider's total timeout."""
        try:
            async with asyncio.timeout(self._timeout.total):
                yield
        except TimeoutError:
            raise UpstreamTimeout(f"{self.config.name} did not finish in time") from None

    async def _exchange_json(self, request: UpstreamRequest) -> Any:
        """Send a request; its JSON answer, or the mapped error."""
        async with self._send(request) as response:
            raw = await self._read_body(response)
            if response.status >= 400:
                raise self.map_error(response.status, raw, response.headers)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name} sent a response that is not JSON") from None

    async def _poll(self, check: Callable[[], Awaitable[T | None]]) -> T:
        """Call ``check`` every ``poll_interval_s`` until it returns a result; bounded by
        ``_within_total_timeout`` around the caller."""
        while True:
            result = await check()
            if result is not None:
                return result
            await asyncio.sleep(self.poll_interval_s)

    async def _download(self, url: Any) -> GeneratedImage:
        """The image at a result URL (``https:`` or a ``data:`` URI), without credentials."""
        name = self.config.name
        if isinstance(url, str) and url.startswith("data:"):
            _, _, payload = url.partition(",")
            return image_from_base64(payload, name)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise UpstreamError(f"{name} sent a result that is not an image URL")
        request = UpstreamRequest(url, DOWNLOAD_HEADERS, {}, method="GET")
        async with self._send(request) as response:
            if response.status >= 400:
                raise UpstreamError(f"{name}: downloading the image failed ({response.status})")
            if (response.content_length or 0) > MAX_IMAGE_BYTES:
                raise UpstreamError(f"{name} offered an image larger than {MAX_IMAGE_BYTES}")
            data = await self._read_limited(response)
        return image_from_bytes(data, name)

    async def _read_limited(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise UpstreamError(f"{self.config.name} sent an image that is too large")
                chunks.append(chunk)
        except TimeoutError:
            raise UpstreamTimeout(f"{self.config.name} timed out sending an image") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"{self.config.name} connection broke: {type(exc).__name__}"
            ) from None
        return b"".join(chunks)
