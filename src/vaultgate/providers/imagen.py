"""Google's Imagen image models: OpenAI image requests as ``predict`` calls, and back.

The same body serves the Gemini API (``POST /v1beta/models/{model}:predict``, key in
``x-goog-api-key``) and Vertex AI (``.../publishers/google/models/{model}:predict``, OAuth2
bearer); the adapters in ``gemini`` and ``vertex`` send it for upstream models named
``imagen-*``. Field names follow Vertex AI's Imagen reference
(https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/imagen-api) and the
``google-genai`` SDK's ``generate_images`` converters:

=================  =================================================================
OpenAI             Imagen
=================  =================================================================
prompt             ``instances[0].prompt``
n                  ``parameters.sampleCount`` (1 to 4; more is refused with 400)
size               ``parameters.aspectRatio``: 1024x1024 1:1, 1792x1024 16:9,
                   1024x1792 9:16, 1536x1024 4:3, 1024x1536 3:4 (the nearest of
                   Imagen's ratios; the image comes back at Imagen's own pixel size
                   for that ratio); any other size is refused with 400
quality            not sent: Imagen has one quality per model (prices are per size)
response_format    the gateway's: Imagen always answers base64 PNG here
style, user, ...   not sent
=================  =================================================================

Always sent: ``parameters.outputOptions.mimeType: image/png`` (so ``url`` downloads are
PNG files) and ``includeRaiReason: true``. The provider option ``person_generation``
(``dont_allow``, ``allow_adult``, ``allow_all``) is sent as ``personGeneration`` when set.

The answer is ``predictions[]``, each ``{bytesBase64Encoded, mimeType}`` or, for an image
Google's safety filters removed, ``{raiFilteredReason}``. Filtered images are left out: the
caller gets (and pays for) fewer images than asked. When every image was filtered the
request fails with 400 ``content_policy_violation``, as OpenAI's image API does, carrying
Google's reason. A Vertex ``prompt`` member (the rewritten prompt) becomes
``revised_prompt``.

Google lists every ``imagen-*`` model as discontinued (migrate before 2026-06-30, per
https://cloud.google.com/vertex-ai/generative-ai/docs/models/imagen/4-0-generate), so no
Imagen model is shipped in the catalog; an operator with access can still declare one.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import GeneratedImage, ImageCall, ImageResult, JsonObject

IMAGEN_MODEL = re.compile(r"^(?:models/|publishers/google/models/)?imagen-")
MAX_SAMPLES = 4
SIZE_TO_ASPECT_RATIO = {
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
    # 3:2 sits nearer 4:3 (1.33) than 16:9 (1.78).
    "1536x1024": "4:3",
    "1024x1536": "3:4",
}
PERSON_GENERATION = frozenset({"dont_allow", "allow_adult", "allow_all"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_imagen_model(upstream_model: str) -> bool:
    """Whether an upstream model name is an Imagen model (served by ``predict``)."""
    return IMAGEN_MODEL.match(upstream_model) is not None


def _refuse(message: str, param: str) -> UpstreamError:
    return UpstreamError(
        message, status=400, error_type="invalid_request_error",
        code="unsupported_by_provider", param=param, retryable=False,
    )  # fmt: skip


def openai_size_to_imagen_aspect_ratio(size: str) -> str:
    """Imagen's ``aspectRatio`` for an OpenAI ``size``; 400 for a size it cannot make."""
    ratio = SIZE_TO_ASPECT_RATIO.get(size)
    if ratio is None:
        offered = ", ".join(SIZE_TO_ASPECT_RATIO)
        raise _refuse(f"Imagen cannot make images of size {size}; it makes {offered}", "size")
    return ratio


def openai_to_imagen_request(call: ImageCall, *, person_generation: str | None) -> JsonObject:
    """The ``predict`` body for an OpenAI image request."""
    if not 1 <= call.n <= MAX_SAMPLES:
        raise _refuse(f"Imagen makes at most {MAX_SAMPLES} images per request", "n")
    parameters: JsonObject = {
        "sampleCount": call.n,
        "aspectRatio": openai_size_to_imagen_aspect_ratio(call.size),
        "includeRaiReason": True,
        "outputOptions": {"mimeType": "image/png"},
    }
    if person_generation:
        if person_generation not in PERSON_GENERATION:
            raise UpstreamError(
                f"{call.provider.name}: option person_generation must be one of "
                f"{sorted(PERSON_GENERATION)}",
                status=502,
            )
        parameters["personGeneration"] = person_generation
    return {"instances": [{"prompt": call.prompt}], "parameters": parameters}


def _decode_png(prediction: JsonObject, provider: str) -> bytes:
    mime = prediction.get("mimeType", "image/png")
    try:
        png = base64.b64decode(str(prediction["bytesBase64Encoded"]), validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(f"{provider} sent an image that is not valid base64") from None
    if mime != "image/png" or not png.startswith(PNG_SIGNATURE):
        raise UpstreamError(f"{provider} sent a {mime} image where PNG was asked for")
    return png


def _filtered(reasons: list[str]) -> UpstreamError:
    detail = "; ".join(reasons) if reasons else "no reason given"
    return UpstreamError(
        f"Google's safety filters removed every image: {detail}", status=400,
        error_type="invalid_request_error", code="content_policy_violation",
        param="prompt", retryable=False,
    )  # fmt: skip


def imagen_response_to_openai(payload: Any, provider: str) -> ImageResult:
    """The images of a ``predict`` answer; filtered ones left out (see the module docstring)."""
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if predictions is not None and not isinstance(predictions, list):
        raise UpstreamError(f"{provider} sent a malformed response")
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    for prediction in predictions or ():
        if not isinstance(prediction, dict):
            continue
        if prediction.get("bytesBase64Encoded"):
            revised = prediction.get("prompt")
            png = _decode_png(prediction, provider)
            revised = revised if isinstance(revised, str) and revised else None
            images.append(GeneratedImage(png=png, revised_prompt=revised))
        elif isinstance(prediction.get("raiFilteredReason"), str):
            reasons.append(prediction["raiFilteredReason"])
    if not images:
        raise _filtered(reasons)
    return ImageResult(images=images, created=int(time.time()))
