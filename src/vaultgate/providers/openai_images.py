"""Image requests over OpenAI's ``/images/generations``, for OpenAI's own models and for
servers that imitate the endpoint: each dialect is a table of what it sends, maps, drops
with a warning, or refuses with 400.

The dialect is the provider's ``options.images`` (``recraft``, ``together``); without one,
OpenAI's model family by the upstream name (``dall-e-2``, ``dall-e-3``, ``gpt-image-*``),
and for other models the client's body goes as it is.
https://platform.openai.com/docs/api-reference/images/create,
https://www.recraft.ai/docs/api-reference/endpoints,
https://docs.together.ai/reference/post-images-generations

============  ==========================  ============================  ================
dialect       size                        quality                       style
============  ==========================  ============================  ================
dall-e-2      256, 512, 1024 squares      standard, auto                dropped, warning
dall-e-3      1024x1024, 1792x1024,       standard, hd, auto            vivid, natural
              1024x1792; n > 1 fans out
gpt-image-1*  1024x1024, 1536x1024,       low, medium, high, auto;      dropped, warning
              1024x1536, auto             hd sent as high; standard
                                          dropped with a warning
gpt-image-*   as asked                    as gpt-image-1                dropped, warning
recraft       as asked; 1792x1024 sent    dropped with a warning        vivid, natural
              as 1820x1024, 1024x1792                                   dropped, warning;
              as 1024x1820; n by 6                                      others sent
together      ``width`` and ``height``;   dropped with a warning        dropped, warning
              n by 4
============  ==========================  ============================  ================

A quality a dialect does not list is refused with 400 for OpenAI's families. GPT image
models always answer base64 (``response_format`` is not sent; the gateway honours it by
storing the image), and report token usage, relayed with ``background``, ``output_format``,
``quality`` and ``size``. Together is always asked for ``base64``, as its links need a
download with a user agent. Parameters only GPT image models take (``background``,
``moderation``, ``output_format``, ``output_compression``) are dropped with a warning for
the others; Together keeps ``output_format``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import GeneratedImage, ImageCall, ImageResult, JsonObject, Usage
from vaultgate.providers.image_sizes import parse_size, unsupported_size
from vaultgate.providers.image_support import NEUTRAL_QUALITIES, image_from_base64, refuse

GPT_IMAGE_ONLY = frozenset(
    {"background", "moderation", "output_format", "output_compression", "partial_images"}
)
OPENAI_STYLES = frozenset({"vivid", "natural"})
GPT_QUALITIES = {"low": "low", "medium": "medium", "high": "high", "auto": "auto", "hd": "high"}


@dataclass(frozen=True, slots=True)
class ImageDialect:
    """What one server family makes of OpenAI's image parameters.

    ``sizes`` maps OpenAI sizes to the server's (others go as they are, or are refused when
    ``sizes_only``); ``qualities`` maps the qualities it takes, and ``other_qualities``
    says what becomes of the rest: ``drop`` (with a warning, but standard and auto quietly),
    ``refuse`` or ``send``; ``style`` is ``openai`` (vivid and natural sent), ``own``
    (OpenAI's dropped, the server's own sent), ``send`` or ``none`` (dropped);
    ``response_format`` is ``send``, ``omit`` (base64 always) or ``base64`` (asked as that).
    """

    name: str
    sizes: Mapping[str, str] = field(default_factory=dict)
    sizes_only: bool = False
    size_as_dimensions: bool = False
    qualities: Mapping[str, str] = field(default_factory=dict)
    other_qualities: str = "drop"
    style: str = "none"
    response_format: str = "send"
    max_n: int = 10
    drop: frozenset[str] = frozenset()
    relay: tuple[str, ...] = ()

    @property
    def decodes(self) -> bool:
        """Whether the server answers base64 that the gateway stores as an image."""
        return self.response_format != "send"


def _same(*sizes: str) -> dict[str, str]:
    return {size: size for size in sizes}


DIALECTS = {
    "dall-e-2": ImageDialect(
        "dall-e-2", sizes=_same("256x256", "512x512", "1024x1024"), sizes_only=True,
        qualities={"standard": "standard", "auto": "auto"}, other_qualities="refuse",
        drop=GPT_IMAGE_ONLY,
    ),
    "dall-e-3": ImageDialect(
        "dall-e-3", sizes=_same("1024x1024", "1792x1024", "1024x1792"), sizes_only=True,
        qualities={"standard": "standard", "hd": "hd", "auto": "auto"},
        other_qualities="refuse", style="openai", max_n=1, drop=GPT_IMAGE_ONLY,
    ),
    "gpt-image-1": ImageDialect(
        "gpt-image-1", sizes=_same("1024x1024", "1536x1024", "1024x1536", "auto"),
        sizes_only=True, qualities=GPT_QUALITIES, response_format="omit",
        relay=("background", "output_format", "quality", "size", "usage"),
    ),
    "gpt-image": ImageDialect(
        "gpt-image", qualities=GPT_QUALITIES, response_format="omit",
        relay=("background", "output_format", "quality", "size", "usage"),
    ),
    "recraft": ImageDialect(
        "recraft", sizes={"1792x1024": "1820x1024", "1024x1792": "1024x1820"},
        style="own", max_n=6, drop=GPT_IMAGE_ONLY,
    ),
    "together": ImageDialect(
        "together", size_as_dimensions=True, response_format="base64", max_n=4,
        drop=GPT_IMAGE_ONLY - {"output_format"},
    ),
}  # fmt: skip
# A server of unknown dialect gets the client's body as it is.
PASSTHROUGH = ImageDialect("passthrough", other_qualities="send", style="send")


def choose_dialect(option: str | None, upstream_model: str) -> ImageDialect:
    """The dialect named by the provider's option, else OpenAI's family of the model."""
    if option is not None:
        dialect = DIALECTS.get(option)
        if dialect is None:
            raise UpstreamError(f"the provider names an unknown images dialect {option!r}")
        return dialect
    for prefix in ("gpt-image-1", "dall-e-2", "dall-e-3"):
        if upstream_model.startswith(prefix):
            return DIALECTS[prefix]
    if upstream_model.startswith(("gpt-image-", "chatgpt-image")):
        return DIALECTS["gpt-image"]
    return PASSTHROUGH


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """The upstream requests for one client request, and the parameters dropped."""

    dialect: ImageDialect
    bodies: list[JsonObject]
    dropped: tuple[str, ...]


def plan_openai_images(call: ImageCall, option: str | None, provider: str) -> ImagePlan:
    """Translate an image request for the server's dialect."""
    dialect = choose_dialect(option, call.upstream_model)
    body = dict(call.body)
    body["model"] = call.upstream_model
    dropped = sorted(name for name in dialect.drop if name in body)
    for name in dropped:
        del body[name]
    _translate_quality(body, dialect, dropped, provider)
    _translate_style(body, dialect, dropped, provider)
    _translate_size(body, call.size, dialect, provider)
    if dialect.response_format == "omit":
        body.pop("response_format", None)
    elif dialect.response_format == "base64":
        body["response_format"] = "base64"
    bodies = _split_count(body, call.n, dialect.max_n)
    return ImagePlan(dialect, bodies, tuple(sorted(dropped)))


def _translate_quality(
    body: JsonObject, dialect: ImageDialect, dropped: list[str], provider: str
) -> None:
    quality = body.get("quality")
    if quality is None or dialect.other_qualities == "send":
        return
    if quality in dialect.qualities:
        body["quality"] = dialect.qualities[quality]
        return
    del body["quality"]
    if dialect.other_qualities == "drop":
        if quality not in NEUTRAL_QUALITIES or dialect.qualities:
            dropped.append("quality")
        return
    offered = ", ".join(dialect.qualities)
    raise refuse(provider, "quality", f"offers qualities {offered} for {dialect.name}.")


def _translate_style(
    body: JsonObject, dialect: ImageDialect, dropped: list[str], provider: str
) -> None:
    style = body.get("style")
    if style is None or dialect.style == "send":
        return
    if dialect.style == "own" and style not in OPENAI_STYLES:
        return
    if dialect.style == "openai" and style in OPENAI_STYLES:
        return
    if dialect.style == "openai":
        raise refuse(provider, "style", "offers styles vivid and natural.")
    del body["style"]
    dropped.append("style")


def _translate_size(body: JsonObject, size: str, dialect: ImageDialect, provider: str) -> None:
    if "size" not in body:
        return
    if dialect.sizes_only and size not in dialect.sizes:
        raise unsupported_size(provider, size, ", ".join(dialect.sizes))
    if dialect.size_as_dimensions:
        del body["size"]
        body["width"], body["height"] = parse_size(size)
        return
    body["size"] = dialect.sizes.get(size, size)


def _split_count(body: JsonObject, count: int, max_n: int) -> list[JsonObject]:
    """One body per upstream request: ``n`` split into batches the server accepts."""
    if count <= max_n:
        return [body]
    batches = [max_n] * (count // max_n) + ([count % max_n] if count % max_n else [])
    return [{**body, "n": size} for size in batches]


def image_usage_from_openai(raw: Any) -> Usage | None:
    """Token usage of a GPT image response (``input_tokens``, ``output_tokens``)."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("input_tokens"), raw.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=max(prompt, 0), completion_tokens=max(completion, 0))


def _image(item: Any, dialect: ImageDialect, provider: str) -> GeneratedImage:
    if not isinstance(item, dict):
        raise UpstreamError(f"{provider} sent a malformed image response")
    revised = item.get("revised_prompt")
    if dialect.decodes and item.get("b64_json") is not None:
        image = image_from_base64(item["b64_json"], provider)
        return replace(image, revised_prompt=revised)
    url, b64 = item.get("url"), item.get("b64_json")
    return GeneratedImage(url=url, b64_json=b64, revised_prompt=revised)


def openai_images_result(
    payloads: list[JsonObject], plan: ImagePlan, provider: str
) -> ImageResult:
    """The images of every upstream answer, their summed usage, and relayed fields."""
    images = [_image(item, plan.dialect, provider) for p in payloads for item in p["data"]]
    usages = [image_usage_from_openai(p.get("usage")) for p in payloads]
    counted = [usage for usage in usages if usage is not None]
    usage = None
    if counted and len(counted) == len(payloads):
        usage = Usage(
            prompt_tokens=sum(u.prompt_tokens for u in counted),
            completion_tokens=sum(u.completion_tokens for u in counted),
        )
    first = payloads[0]
    extra = {name: first[name] for name in plan.dialect.relay if first.get(name) is not None}
    if usage is not None and "usage" in extra and len(payloads) > 1:
        extra["usage"] = {
            "input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }  # fmt: skip
    created = first.get("created")
    return ImageResult(
        images=images,
        created=created if isinstance(created, int) else int(time.time()),
        dropped=plan.dropped,
        usage=usage,
        extra=extra,
    )
