"""Gemini's native image generation: OpenAI image requests as ``generateContent`` calls.

Gemini image models (https://ai.google.dev/gemini-api/docs/image-generation) answer
``generateContent`` with ``inlineData`` image parts when ``generationConfig.
responseModalities`` asks for ``IMAGE``. The Gemini API and Vertex AI take the same body;
field names follow the REST reference and the ``google-genai`` SDK's ``ImageConfig``.

=================  =================================================================
OpenAI             Gemini
=================  =================================================================
prompt             ``contents[0].parts[0].text`` of a ``user`` turn
n                  one call per image, made concurrently: Google documents no
                   ``candidateCount`` for image models, and one answer may hold
                   several images (drafts before the final one)
size               ``generationConfig.imageConfig`` by ``SIZE_TO_IMAGE_CONFIG``:
                   1024x1024 1:1, 1536x1024 3:2, 1024x1536 2:3, 1792x1024 16:9,
                   1024x1792 9:16 (each at the model's default 1K size), and
                   2048x2048 / 4096x4096 1:1 with ``imageSize`` 2K / 4K; the image
                   comes back at Google's pixel size for that ratio and size; any
                   other size is refused with 400
quality, style,    not sent: the price table distinguishes sizes only
user, ...
response_format    the gateway's: the image bytes are stored or sent as base64
=================  =================================================================

Always sent: ``responseModalities: ["IMAGE"]``. Of each answer the last image part that is
not a thought is kept (Google marks the final image as the last one), so a request for
``n`` images returns ``n`` images. An answer without an image fails: with 400
``content_policy_violation`` when Google's safety filters stopped it (a blocked prompt, or
a finish reason that maps to ``content_filter``), else with a 502 that another deployment
may retry. The usage of every call is added up and reported for the request log.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import GeneratedImage, ImageCall, JsonObject, Usage

SIZE_TO_IMAGE_CONFIG: dict[str, JsonObject] = {
    "1024x1024": {"aspectRatio": "1:1"},
    "1536x1024": {"aspectRatio": "3:2"},
    "1024x1536": {"aspectRatio": "2:3"},
    # 1.75 sits nearest 16:9 (1.78) among Google's ratios.
    "1792x1024": {"aspectRatio": "16:9"},
    "1024x1792": {"aspectRatio": "9:16"},
    "2048x2048": {"aspectRatio": "1:1", "imageSize": "2K"},
    "4096x4096": {"aspectRatio": "1:1", "imageSize": "4K"},
}
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
# Finish reasons Google's safety filters give (gemini.FINISH_REASONS maps them to
# content_filter).
FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})  # fmt: skip


def _refuse(message: str, param: str) -> UpstreamError:
    return UpstreamError(
        message, status=400, error_type="invalid_request_error",
        code="unsupported_by_provider", param=param, retryable=False,
    )  # fmt: skip


def openai_size_to_gemini_image_config(size: str) -> JsonObject:
    """``imageConfig`` for an OpenAI ``size``; 400 for a size Gemini cannot make."""
    config = SIZE_TO_IMAGE_CONFIG.get(size)
    if config is None:
        offered = ", ".join(SIZE_TO_IMAGE_CONFIG)
        raise _refuse(f"Gemini cannot make images of size {size}; it makes {offered}", "size")
    return dict(config)


def openai_to_gemini_image_request(call: ImageCall) -> JsonObject:
    """The ``GenerateContentRequest`` for one image of an OpenAI image request."""
    config = {
        "responseModalities": ["IMAGE"],
        "imageConfig": openai_size_to_gemini_image_config(call.size),
    }
    prompt = {"role": "user", "parts": [{"text": call.prompt}]}
    return {"contents": [prompt], "generationConfig": config}


def gemini_inline_image(part: JsonObject) -> tuple[str, str] | None:
    """``(media type, base64 data)`` of an image part that is not a thought, else None."""
    inline = part.get("inlineData")
    if part.get("thought") or not isinstance(inline, dict):
        return None
    mime, data = inline.get("mimeType"), inline.get("data")
    if not isinstance(mime, str) or not mime.startswith("image/") or not isinstance(data, str):
        return None
    return mime, data


def _filtered(reason: str) -> UpstreamError:
    return UpstreamError(
        f"Google's safety filters stopped the image: {reason}", status=400,
        error_type="invalid_request_error", code="content_policy_violation",
        param="prompt", retryable=False,
    )  # fmt: skip


def _candidate_parts(candidate: Any) -> list[JsonObject]:
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or () if isinstance(p, dict)]


def gemini_answer_to_image(payload: Any, provider: str) -> GeneratedImage:
    """The image of one ``generateContent`` answer (see the module docstring)."""
    if not isinstance(payload, dict):
        raise UpstreamError(f"{provider} sent a malformed response")
    blocked = (payload.get("promptFeedback") or {}).get("blockReason")
    candidates = payload.get("candidates") or []
    first = candidates[0] if isinstance(candidates, list) and candidates else {}
    images = [i for p in _candidate_parts(first) if (i := gemini_inline_image(p))]
    if not images:
        reason = blocked or (first.get("finishReason") if isinstance(first, dict) else None)
        if blocked or reason in FILTERED:
            raise _filtered(str(reason))
        raise UpstreamError(f"{provider} sent no image (finish reason {reason or 'none'})")
    mime, data = images[-1]
    if mime not in IMAGE_MEDIA_TYPES:
        raise UpstreamError(f"{provider} sent an image of type {mime}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(f"{provider} sent an image that is not valid base64") from None
    return GeneratedImage(png=raw, media_type=mime)


def add_usages(usages: list[Usage | None]) -> Usage | None:
    """The sum of the calls' usage; None when no call reported any."""
    known = [u for u in usages if u is not None]
    if not known:
        return None
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in known),
        completion_tokens=sum(u.completion_tokens for u in known),
        cached_tokens=sum(u.cached_tokens for u in known),
        reasoning_tokens=sum(u.reasoning_tokens for u in known),
    )
