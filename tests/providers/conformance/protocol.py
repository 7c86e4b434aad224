"""The contract between the shared conformance cases and one adapter's target.

A target tells the cases how to start the adapter's fake server, how to build the adapter
on it, what the fake answers (``Facts``) and how to read back what the provider received
(``Sent``), in terms every provider shares. See ``README.md`` in this folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient

# The scenario names every fake server answers to (as the upstream model name).
SCENARIOS = (
    "plain", "tool", "parallel-tools", "stop-sequence", "length", "json", "image-input",
    "error-400", "error-401", "error-429", "error-500", "stream-error", "content-filter",
)  # fmt: skip

# A 1x1 PNG and a 1x1 lossless WebP, for requests with an image.
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
WEBP_BASE64 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="
IMAGES = {"image/png": PNG_BASE64, "image/webp": WEBP_BASE64}


class FakeServer(Protocol):
    """A running fake provider."""

    def stop(self) -> None:
        """Stop serving."""
        ...


ServerT = TypeVar("ServerT", bound=FakeServer)


@dataclass(frozen=True)
class Turn:
    """One conversation turn as the provider received it: ``user``, ``assistant`` or
    ``tool`` (a turn of its own only where the provider has a tool role), and its texts."""

    role: str
    texts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageInput:
    """An image the provider received: inline (media type and base64 data) or a URL."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ToolUse:
    """A tool call, sent in the history or answered by the fake. ``id`` is None where the
    provider has no ids (the adapter then makes its own)."""

    id: str | None
    name: str
    arguments: JsonObject


@dataclass(frozen=True)
class ToolResult:
    """A tool result the provider received, with the id and/or name that ties it to its
    call (None where the provider ties results another way)."""

    id: str | None
    name: str | None
    content: str


@dataclass(frozen=True)
class Sent:
    """What one request carried, read back from the fake server.

    ``system`` is every system prompt as the provider holds it (joined where it has one
    field); ``tool_choice`` is ``auto``, ``none``, ``required`` or ``function:<name>``;
    ``json_output`` is ``object`` or ``schema``, with ``json_schema`` the schema as sent
    (in the provider's dialect, ``properties`` keyed by name).
    """

    stream: bool
    system: str = ""
    turns: list[Turn] = field(default_factory=list)
    images: list[ImageInput] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    tool_choice: str | None = None
    tool_uses: list[ToolUse] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    max_output_tokens: int | None = None
    json_output: str | None = None
    json_schema: JsonObject | None = None

    @property
    def texts(self) -> list[str]:
        """Every turn's texts, in order."""
        return [text for turn in self.turns for text in turn.texts]


@dataclass(frozen=True)
class Facts:
    """What the fake answers, and what the adapter is documented to do with some inputs."""

    # The text of ``plain`` and its usage; None when they depend on the conversation.
    reply: str | None
    usage: Usage | None
    # The calls ``tool`` and ``parallel-tools`` answer (ids None when the adapter makes them).
    tool_calls: tuple[ToolUse, ...] = ()
    parallel_tool_calls: tuple[ToolUse, ...] = ()
    # A scenario answering one call to ``get_time`` without arguments, if the fake has one.
    no_argument_call: str | None = None
    # What ``json`` answers, parsed.
    json_reply: JsonObject | None = None
    # A scenario whose usage reports cached and/or reasoning tokens, and that usage.
    detailed_usage: tuple[str, Usage] | None = None
    # The retry-after the adapter keeps from ``error-429``.
    retry_after: str | None = None
    # Whether the provider requires user and assistant turns to alternate.
    alternating_roles: bool = False
    # Whether http(s) image URLs are passed on (else refused with a 400).
    http_images: bool = True
    # Whether ``response_format`` json_object/json_schema is translated (else a 400).
    json_output: bool = True
    # The output limit sent when the client sets none, for a model whose catalog limit is
    # ``cases.MODEL_LIMIT``; None when nothing is sent.
    default_max_tokens: int | None = None


class Target(Protocol[ServerT]):
    """One adapter under the conformance cases. Subclass it to inherit the defaults."""

    name: str
    facts: Facts
    # Case name -> why it does not apply to this adapter (reported as a skip). A key
    # ``case[variant]`` skips only the variants whose test id holds ``variant``
    # (``tool-choice[none]``, ``upstream-errors[error-401]``).
    not_applicable: Mapping[str, str] = MappingProxyType({})

    def start(self) -> ServerT:
        """Start the fake server."""
        ...

    def config(self, server: ServerT) -> ProviderConfig:
        """The provider's configuration, pointed at the fake."""
        ...

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The adapter under test."""
        ...

    def upstream(self, scenario: str, tag: str) -> str:
        """The upstream model name for a scenario; ``tag`` makes it unique to one case, so
        ``received`` finds that case's request."""
        return f"{scenario}~{tag}"

    def received(self, server: ServerT, upstream: str) -> Sent:
        """The one request the fake recorded for ``upstream``."""
        ...

    def sdk_status(self, server: ServerT, scenario: str, *, stream: bool) -> int | None:
        """Run the provider's official SDK against the fake for a scenario (with an image
        for ``image-input``, a stop sequence for ``stop-sequence``); return the status of
        the error it raised (for an error inside a stream, whatever status the SDK gives
        it), or None when it accepted and parsed the whole answer."""
        ...


AnyTarget = Target[Any]
