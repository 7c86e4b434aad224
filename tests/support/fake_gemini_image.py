"""Gemini's native image output, as the fake Gemini and Vertex servers answer it.

Requests are checked as Google documents ``generationConfig``
(https://ai.google.dev/api/generate-content#generationconfig, the ``google-genai`` SDK's
``ImageConfig``): ``responseModalities`` values among TEXT, IMAGE and AUDIO,
``imageConfig.aspectRatio`` one of Google's ratios and ``imageConfig.imageSize`` 1K, 2K or
4K; anything else is Google's 400. Model names starting ``image-`` (before any ``~tag``)
answer with images:

- ``image-plain``: one PNG ``inlineData`` part, after a text part when the request allows
  TEXT (or names no modalities), STOP; the usage counts the image's tokens apart.
- ``image-drafts``: a thought image, then the final image, STOP.
- ``image-safety``: no content, finish reason IMAGE_SAFETY.
- ``image-blocked``: no candidates, ``promptFeedback.blockReason`` SAFETY.
- ``image-none``: text only, finish reason NO_IMAGE.
"""

from __future__ import annotations

import base64
from typing import Any

from vaultgate.providers.png import pattern_png

MODALITIES = frozenset({"TEXT", "IMAGE", "AUDIO"})
ASPECT_RATIOS = frozenset(
    {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
)
IMAGE_SIZES = frozenset({"1K", "2K", "4K"})
IMAGE_TOKENS = 1120
IMAGE_TEXT = "Here is your picture."
FINAL_PNG = pattern_png(4, 4, 7)
DRAFT_PNG = pattern_png(2, 2, 3)


def image_config_problem(body: dict[str, Any]) -> str | None:
    """What Google rejects in a request's image settings, or None."""
    config = body.get("generationConfig") or {}
    modalities = config.get("responseModalities")
    if modalities is not None and (
        not isinstance(modalities, list) or not set(modalities) <= MODALITIES
    ):
        return "Invalid value at 'generation_config.response_modalities'"
    image = config.get("imageConfig")
    if image is None:
        return None
    unknown = set(image) - {"aspectRatio", "imageSize"}
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"'
    if image.get("aspectRatio", "1:1") not in ASPECT_RATIOS:
        return "Unsupported aspect ratio"
    if image.get("imageSize", "1K") not in IMAGE_SIZES:
        return "Unsupported image size"
    return None


def _inline(png: bytes, *, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}
    }
    if thought:
        part["thought"] = True
    return part


def _usage(*, text_tokens: int, images: int) -> dict[str, Any]:
    details = [{"modality": "IMAGE", "tokenCount": IMAGE_TOKENS * images}]
    if text_tokens:
        details.insert(0, {"modality": "TEXT", "tokenCount": text_tokens})
    candidates = text_tokens + IMAGE_TOKENS * images
    return {
        "promptTokenCount": 7,
        "candidatesTokenCount": candidates,
        "totalTokenCount": 7 + candidates,
        "candidatesTokensDetails": details,
    }


def _response(candidate: dict[str, Any] | None, usage: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "candidates": [candidate] if candidate else [],
        "modelVersion": "gemini-fake-image-001",
        "responseId": "fake-image-response-1",
    }
    if usage:
        response["usageMetadata"] = usage
    return response


def _candidate(parts: list[Any] | None, finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def image_events(behaviour: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream events of an ``image-*`` behaviour; a whole answer is their merge."""
    modalities = (body.get("generationConfig") or {}).get("responseModalities")
    with_text = modalities is None or "TEXT" in modalities
    if behaviour == "image-safety":
        return [_response(_candidate(None, "IMAGE_SAFETY"), _usage(text_tokens=0, images=0))]
    if behaviour == "image-blocked":
        feedback = {"blockReason": "SAFETY"}
        return [{"promptFeedback": feedback, "usageMetadata": {"promptTokenCount": 7}}]
    if behaviour == "image-none":
        text = _candidate([{"text": "I cannot draw that."}], "NO_IMAGE")
        return [_response(text, _usage(text_tokens=5, images=0))]
    events = []
    if with_text:
        events.append(_response(_candidate([{"text": IMAGE_TEXT}])))
    images = 1
    if behaviour == "image-drafts":
        events.append(_response(_candidate([_inline(DRAFT_PNG, thought=True)])))
        images = 2
    final = _candidate([_inline(FINAL_PNG)], "STOP")
    events.append(_response(final, _usage(text_tokens=5 if with_text else 0, images=images)))
    return events
