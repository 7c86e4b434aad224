"""Imagen's ``predict`` method as the fake Gemini and Vertex servers answer it.

The body is checked as Google documents it (``instances: [{prompt}]``, ``parameters`` with
``sampleCount`` 1-4, ``aspectRatio`` one of Imagen's five, ``personGeneration``,
``outputOptions.mimeType``, ``includeRaiReason``, ...; anything else is a 400 as the API's
strict JSON parsing gives). The model name, after ``imagen-`` and before any ``~tag``,
selects the answer:

- ``plain``: ``sampleCount`` PNG images (Vertex also returns the ``prompt`` it used).
- ``filtered-one``: the last image replaced by a ``raiFilteredReason`` entry.
- ``filtered-all``: every image filtered.
- ``jpeg``: JPEG bytes whatever was asked.
- ``error-<status>``: Google's error body with that status.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from vaultgate.providers.png import pattern_png

ASPECT_RATIOS = frozenset({"1:1", "3:4", "4:3", "9:16", "16:9"})
PERSON_GENERATION = frozenset({"dont_allow", "allow_adult", "allow_all"})
PARAMETERS = frozenset({
    "sampleCount", "aspectRatio", "personGeneration", "outputOptions", "includeRaiReason",
    "includeSafetyAttributes", "safetySetting", "sampleImageSize", "language", "seed",
    "negativePrompt", "addWatermark", "enhancePrompt", "guidanceScale", "storageUri",
})  # fmt: skip
# What the Gemini API refuses that Vertex takes (the SDK's Gemini API converter rejected them).
VERTEX_ONLY = frozenset({"seed", "negativePrompt", "addWatermark", "enhancePrompt", "storageUri"})
RAI_REASON = (
    "Your current safety filter threshold filtered out 1 generated images. "
    "You will not be charged for blocked images. Support codes: 58061214"
)
ENHANCED_PROMPT = "A watercolour lighthouse at dawn, soft light"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake"


def _invalid(message: str) -> str:
    return f"Invalid JSON payload received. {message}"


def check_predict_body(body: Any, *, vertex: bool) -> str | None:
    """What Google would reject in a ``predict`` body, or None."""
    instances = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(instances, list) or len(instances) != 1:
        return "instances must hold exactly one prompt"
    if not isinstance(instances[0], dict) or not instances[0].get("prompt"):
        return "instances[0].prompt is required"
    parameters = body.get("parameters") or {}
    allowed = PARAMETERS if vertex else PARAMETERS - VERTEX_ONLY
    unknown = set(parameters) - allowed
    if unknown:
        return _invalid(f"Unknown name \"{sorted(unknown)[0]}\" at 'parameters'")
    count = parameters.get("sampleCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return "sampleCount must be between 1 and 4"
    if parameters.get("aspectRatio", "1:1") not in ASPECT_RATIOS:
        return "Unsupported aspect ratio"
    # The reference spells the values in lower case; the SDK sends its enum names.
    person = str(parameters.get("personGeneration", "allow_adult")).lower()
    if person not in PERSON_GENERATION or (person == "allow_all" and not vertex):
        return "Unsupported personGeneration"
    mime = (parameters.get("outputOptions") or {}).get("mimeType", "image/png")
    if mime not in ("image/png", "image/jpeg"):
        return "Unsupported output mime type"
    return None


def predict_answer(behaviour: str, body: dict[str, Any], *, vertex: bool) -> dict[str, Any]:
    """The ``predict`` response for a behaviour (``imagen-`` already removed)."""
    parameters = body.get("parameters") or {}
    count = parameters.get("sampleCount", 1)
    png = pattern_png(4, 4, 7)
    image: dict[str, Any] = {
        "bytesBase64Encoded": base64.b64encode(png).decode(),
        "mimeType": "image/png",
    }
    if behaviour == "jpeg":
        image = {"bytesBase64Encoded": base64.b64encode(JPEG_BYTES).decode(),
                 "mimeType": "image/jpeg"}  # fmt: skip
    if vertex:
        image["prompt"] = ENHANCED_PROMPT
    filtered = {"raiFilteredReason": RAI_REASON}
    predictions = [dict(image) for _ in range(count)]
    if behaviour == "filtered-one":
        predictions[-1] = filtered
    if behaviour == "filtered-all":
        predictions = [filtered] if parameters.get("includeRaiReason") else []
    return {"predictions": predictions} if predictions else {}


def predict_response(
    behaviour: str, body: dict[str, Any], *, vertex: bool, error: Any
) -> web.Response:
    """The HTTP answer of the fake ``predict`` method; ``error(status, message)`` builds
    Google's error responses."""
    if behaviour.startswith("error-"):
        status = int(behaviour.split("-")[1])
        return error(status, f"fake imagen error {status}")  # type: ignore[no-any-return]
    problem = check_predict_body(body, vertex=vertex)
    if problem is not None:
        return error(400, problem)  # type: ignore[no-any-return]
    return web.json_response(predict_answer(behaviour, body, vertex=vertex))
