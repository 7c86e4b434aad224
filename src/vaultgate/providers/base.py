"""The interface every provider implements, and the values that cross it.

Requests and responses cross the interface in OpenAI's chat-completions shape: the gateway
validates an OpenAI request, a provider answers with OpenAI-shaped bodies and stream chunks,
and each adapter translates to and from its own wire format on its side of the seam.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

JsonObject = dict[str, Any]
# A scalar a provider table may give as a parameter default.
ParamValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One configured provider: where it is and how to authenticate."""

    name: str
    wire_format: str
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    stream_usage: bool = True
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None
    total_timeout_s: float | None = None
    first_byte_timeout_s: float | None = None
    display_name: str = ""
    drop_params: tuple[str, ...] = ()
    rename_params: tuple[tuple[str, str], ...] = ()
    # Values sent when the client leaves a parameter out, and ranges a number is clamped to.
    default_params: tuple[tuple[str, ParamValue], ...] = ()
    clamp_params: tuple[tuple[str, float, float], ...] = ()
    # Format-specific settings (a region, an API version, a project), ``${VAR}`` filled in.
    options: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def option(self, name: str, default: str | None = None) -> str | None:
        """One format-specific setting, or ``default`` when not set."""
        for key, value in self.options:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer; ``estimated`` when counted locally, not by the provider."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> JsonObject:
        """The ``usage`` object of an OpenAI response."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


def _count(value: Any) -> int | None:
    """A token count: a non-negative integer (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _detail(raw: dict[str, Any], group: str, name: str) -> int:
    """An optional count inside a ``*_details`` object; 0 when absent or invalid."""
    details = raw.get(group)
    if not isinstance(details, dict):
        return 0
    return _count(details.get(name)) or 0


def usage_from_openai(raw: Any, *, estimated: bool = False) -> Usage | None:
    """Read an OpenAI ``usage`` object; None when absent, or when a count is negative or
    not an integer (no provider counted that: the gateway counts locally instead)."""
    if not isinstance(raw, dict):
        return None
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=min(_detail(raw, "prompt_tokens_details", "cached_tokens"), prompt),
        reasoning_tokens=_detail(raw, "completion_tokens_details", "reasoning_tokens"),
        estimated=estimated,
    )


def usage_with_cache_counts(
    raw: Any, *, input_key: str, output_key: str, cache_read_key: str, cache_write_key: str
) -> Usage | None:
    """Usage from a format that counts cache reads and writes apart from plain input
    (Anthropic, Bedrock): all three are prompt tokens, reads are reported as cached so they
    are billed once, at the cached price. None without an integer output count."""
    if not isinstance(raw, dict) or not isinstance(raw.get(output_key), int):
        return None

    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    cache_read = count(cache_read_key)
    return Usage(
        prompt_tokens=count(input_key) + cache_read + count(cache_write_key),
        completion_tokens=count(output_key),
        cached_tokens=cache_read,
    )


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One chat request as a provider receives it."""

    model_id: str
    upstream_model: str
    body: JsonObject
    provider: ProviderConfig
    # The model's output limit from the catalog, for formats that require one (Anthropic).
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A complete (non-streamed) answer in OpenAI's ``chat.completion`` shape."""

    body: JsonObject
    usage: Usage | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ImageCall:
    """One image-generation request as a provider receives it."""

    model_id: str
    upstream_model: str
    prompt: str
    n: int
    size: str
    quality: str
    response_format: str
    body: JsonObject
    provider: ProviderConfig


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image: bytes made here or downloaded from the provider (``png``, of type
    ``media_type``), or the link or base64 the provider returned."""

    png: bytes | None = None
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None
    media_type: str = "image/png"


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The images of one request, the parameters the provider could not honour
    (``dropped``), token usage where the provider reports it, and response fields
    relayed to the client as they came (OpenAI's ``usage``, ``output_format``...)."""

    images: list[GeneratedImage]
    created: int
    dropped: tuple[str, ...] = ()
    usage: Usage | None = None
    extra: JsonObject = field(default_factory=dict)


class Provider(Protocol):
    """What the gateway asks of every provider."""

    config: ProviderConfig
    # Whether one upstream call can answer ``n`` > 1 choices; when not, the gateway makes
    # ``n`` calls and merges them (``vaultgate.providers.fanout``).
    supports_n: bool

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Parameters in ``body`` this provider cannot honour; the gateway drops them."""
        ...

    async def chat(self, call: ChatCall) -> ChatResult:
        """Answer a chat request in one piece."""
        ...

    def chat_stream(self, call: ChatCall) -> AsyncIterator[JsonObject]:
        """Answer a chat request as OpenAI ``chat.completion.chunk`` objects.

        A chunk with a ``usage`` member and empty ``choices`` reports usage, as OpenAI's
        final chunk does; the gateway decides whether the client sees it.
        """
        ...

    async def images(self, call: ImageCall) -> ImageResult:
        """Generate images for a prompt."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds."""
        ...
