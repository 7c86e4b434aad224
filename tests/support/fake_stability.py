"""A real HTTP server speaking Stability AI's Stable Image API, for adapter tests:
``POST /v2beta/stable-image/generate/{ultra|core|sd3}`` takes a ``multipart/form-data``
body (anything else is refused, as Stability does) and, with ``accept: application/json``,
answers ``{image, finish_reason, seed}``. Errors read ``{id, name, errors: [...]}``.

The ``model`` field of an ``sd3`` request selects the behaviour (ultra and core are plain):

- an SD3 model name: a PNG, or a JPEG when ``output_format`` is jpeg.
- ``content-filter``: 200 with ``finish_reason: CONTENT_FILTERED``.
- ``moderation``: 403 named ``content_moderation``.
- ``error-<status>``: that status (``retry-after`` on 429).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.support.sample_images import jpeg_image, png_image
from tests.support.threaded_server import ThreadedServer

STABILITY_KEY = "sk-stability-fake-0123456789"
ASPECT_RATIOS = {"21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21"}
SD3_MODELS = {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash"}
SHARED_FIELDS = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"}
FIELDS = {
    "ultra": SHARED_FIELDS,
    "core": SHARED_FIELDS | {"style_preset"},
    "sd3": SHARED_FIELDS | {"model", "mode", "cfg_scale"},
}
ERROR_NAMES = {400: "bad_request", 401: "unauthorized", 402: "payment_required",
               403: "forbidden", 429: "rate_limit_exceeded", 500: "internal_error"}  # fmt: skip


@dataclass
class Recorded:
    """One request the fake server received: the form fields it parsed."""

    path: str
    headers: dict[str, str]  # names in lower case
    form: dict[str, str]


def error(status: int, *messages: str, name: str | None = None) -> web.Response:
    """Stability's error body."""
    payload = {"id": "e0fake", "name": name or ERROR_NAMES.get(status, "error"),
               "errors": list(messages)}  # fmt: skip
    headers = {"retry-after": "7"} if status == 429 else None
    return web.json_response(payload, status=status, headers=headers)


def form_problem(endpoint: str, form: dict[str, str]) -> str | None:
    """What Stability would refuse in a form, or None."""
    if not 1 <= len(form.get("prompt", "")) <= 10000:
        return "prompt: is required"
    for name in form:
        if name not in FIELDS[endpoint]:
            return f"{name}: unknown field"
    if form.get("aspect_ratio", "1:1") not in ASPECT_RATIOS:
        return "aspect_ratio: must be one of the allowed ratios"
    if form.get("output_format", "png") not in ("png", "jpeg", "webp"):
        return "output_format: must be one of png, jpeg, webp"
    if endpoint == "sd3" and form.get("model", "sd3.5-large") not in SD3_MODELS:
        return "model: must be an SD3 model"
    return None


@dataclass
class FakeStability(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The API root: clients append ``/v2beta/...``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_post("/v2beta/stable-image/generate/{endpoint}", self._generate)

    async def _generate(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if not headers.get("content-type", "").startswith("multipart/form-data"):
            return error(400, "content-type: must be multipart/form-data")
        form = await _read_form(request)
        self.requests.append(Recorded(request.path, headers, form))
        endpoint = request.match_info["endpoint"]
        if headers.get("authorization") != f"Bearer {STABILITY_KEY}":
            return error(401, "authorization: invalid key")
        if headers.get("accept") not in ("application/json", "image/*"):
            return error(400, "accept: must be image/* or application/json")
        return self._answer(endpoint, form, headers["accept"])

    def _answer(self, endpoint: str, form: dict[str, str], accept: str) -> web.Response:
        scenario = form.get("model", "") if endpoint == "sd3" else ""
        if scenario.startswith("error-"):
            return error(int(scenario.split("-")[1]), f"fake Stability error {scenario}")
        if scenario == "moderation":
            return error(403, "Your request was flagged by moderation.", name="content_moderation")
        filtered = scenario == "content-filter"
        problem = None if filtered else form_problem(endpoint, form)
        if problem is not None or endpoint not in FIELDS:
            return error(400, problem or "unknown endpoint")
        image = sample_image(form.get("output_format", "png"))
        if accept == "image/*":
            return web.Response(body=image, content_type="image/png")
        return web.json_response({
            "image": base64.b64encode(image).decode(),
            "finish_reason": "CONTENT_FILTERED" if filtered else "SUCCESS",
            "seed": int(form.get("seed", "1234")),
        })  # fmt: skip


def sample_image(output_format: str) -> bytes:
    """The image the fake makes in a format."""
    return jpeg_image(16, 8) if output_format == "jpeg" else png_image(24, 16)


async def _read_form(request: web.Request) -> dict[str, Any]:
    """The text fields of a multipart body, parsed part by part."""
    reader = await request.multipart()
    fields: dict[str, Any] = {}
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name:
            fields[part.name] = await part.text()
    return fields
