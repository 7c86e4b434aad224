"""A real HTTP server speaking three dialects of ``POST .../images/generations``, each as
strictly as its reference documents it, for the OpenAI-compatible adapter's image tests:

- ``/v1/images/generations``: OpenAI. ``dall-e-2`` (256, 512, 1024 squares; quality
  standard), ``dall-e-3`` (n=1 only; 1024x1024, 1792x1024, 1024x1792; standard or hd;
  vivid or natural) answer ``url`` or ``b64_json`` as asked; ``gpt-image-*`` refuse
  ``response_format`` and ``style``, take low/medium/high/auto quality, and answer base64
  with ``usage``, ``background``, ``output_format``, ``quality`` and ``size``. A model
  ``error-<status>`` answers that status.
- ``/recraft/v1/images/generations``: Recraft. n 1-6, sizes from its list, ``style`` and
  ``substyle`` its own, no ``quality``; answers ``url`` (default) or ``b64_json``.
- ``/together/v1/images/generations``: Together. ``width``/``height``, n 1-4,
  ``response_format`` base64 or url, ``output_format`` jpeg (default) or png; answers
  ``{id, model, object: list, data: [{index, b64_json, type}]}``.

Every flavour refuses parameters it does not know, with an OpenAI-shaped 400.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.sample_images import jpeg_image, png_image
from tests.support.threaded_server import ThreadedServer

IMAGES_KEY = "sk-images-fake-0123456789"
COMMON = {"model", "prompt", "n", "size", "response_format", "user"}
DALL_E = {
    "dall-e-2": {"sizes": {"256x256", "512x512", "1024x1024"}, "qualities": {"standard"},
                 "fields": COMMON | {"quality"}},
    "dall-e-3": {"sizes": {"1024x1024", "1792x1024", "1024x1792"},
                 "qualities": {"standard", "hd"}, "fields": COMMON | {"quality", "style"}},
}  # fmt: skip
GPT_FIELDS = {"model", "prompt", "n", "size", "quality", "background", "moderation",
              "output_format", "output_compression", "user"}  # fmt: skip
GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
RECRAFT_FIELDS = COMMON | {"style", "substyle", "style_id", "negative_prompt", "controls"}
RECRAFT_SIZES = {"1024x1024", "1365x1024", "1024x1365", "1536x1024", "1024x1536",
                 "1820x1024", "1024x1820", "1280x1024", "1024x1280"}  # fmt: skip
TOGETHER_FIELDS = {
    "model", "prompt", "n", "width", "height", "steps", "seed", "negative_prompt",
    "response_format", "output_format", "guidance_scale",
}  # fmt: skip
GPT_USAGE = {"input_tokens": 12, "output_tokens": 272, "total_tokens": 284,
             "input_tokens_details": {"image_tokens": 0, "text_tokens": 12}}  # fmt: skip


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


def bad_request(message: str, param: str | None = None) -> web.Response:
    """OpenAI's 400."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return web.json_response({"error": error}, status=400)


def _unknown(body: dict[str, Any], allowed: set[str]) -> web.Response | None:
    for name in body:
        if name not in allowed:
            return bad_request(f"Unknown parameter: '{name}'.", name)
    return None


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode()


@dataclass
class FakeImagesApi(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The root; OpenAI at ``/v1``, Recraft at ``/recraft/v1``, Together at
        ``/together/v1``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The three dialects' endpoints."""
        app.router.add_post("/v1/images/generations", self._openai)
        app.router.add_post("/recraft/v1/images/generations", self._recraft)
        app.router.add_post("/together/v1/images/generations", self._together)

    async def _record(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, body))
        if headers.get("authorization") != f"Bearer {IMAGES_KEY}":
            return body, web.json_response({"error": {"message": "bad key"}}, status=401)
        return body, None

    async def _openai(self, request: web.Request) -> web.Response:
        body, refused = await self._record(request)
        model = str(body.get("model"))
        if refused is not None:
            return refused
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            error = {"message": f"fake error {status}", "type": "server_error"}
            return web.json_response({"error": error}, status=status)
        if model.startswith("gpt-image"):
            return _gpt_image(body)
        return _dall_e(body, model)

    async def _recraft(self, request: web.Request) -> web.Response:
        body, refused = await self._record(request)
        problem = refused or _unknown(body, RECRAFT_FIELDS)
        if problem is not None:
            return problem
        if not 1 <= body.get("n", 1) <= 6:
            return bad_request("n must be between 1 and 6", "n")
        if body.get("size", "1024x1024") not in RECRAFT_SIZES:
            return bad_request("unsupported size", "size")
        if body.get("style") in ("vivid", "natural"):
            return bad_request("unknown style", "style")
        image = png_image(16, 16)
        item: dict[str, Any] = {"image_id": "img-1"}
        if body.get("response_format") == "b64_json":
            item["b64_json"] = _b64(image)
        else:
            item["url"] = "https://img.recraft.example.invalid/img-1.png"
        return web.json_response({"created": 1765000000, "data": [item] * body.get("n", 1)})

    async def _together(self, request: web.Request) -> web.Response:
        body, refused = await self._record(request)
        problem = refused or _unknown(body, TOGETHER_FIELDS)
        if problem is not None:
            return problem
        if not 1 <= body.get("n", 1) <= 4:
            return bad_request("n must be between 1 and 4", "n")
        if body.get("response_format", "url") not in ("base64", "url"):
            return bad_request("response_format must be base64 or url", "response_format")
        if not isinstance(body.get("width", 1024), int) or body.get("width", 1024) % 8:
            return bad_request("width must be a multiple of 8", "width")
        png = body.get("output_format", "jpeg") == "png"
        image = png_image(16, 16) if png else jpeg_image(16, 16)
        data = [
            {"index": index, "b64_json": _b64(image), "type": "b64_json"}
            for index in range(body.get("n", 1))
        ]
        return web.json_response(
            {"id": "tg-1", "model": body["model"], "object": "list", "data": data}
        )


def _gpt_image(body: dict[str, Any]) -> web.Response:
    problem = _unknown(body, GPT_FIELDS)
    if problem is not None:
        return problem
    if body.get("quality", "auto") not in ("low", "medium", "high", "auto"):
        return bad_request("Invalid value for 'quality'.", "quality")
    if body.get("size", "auto") not in GPT_SIZES:
        return bad_request("Invalid value for 'size'.", "size")
    output_format = body.get("output_format", "png")
    image = jpeg_image(8, 8) if output_format == "jpeg" else png_image(8, 8)
    count = body.get("n", 1)
    return web.json_response({
        "created": 1765000000,
        "background": body.get("background", "opaque"),
        "data": [{"b64_json": _b64(image)}] * count,
        "output_format": output_format,
        "quality": "high" if body.get("quality", "auto") == "auto" else body["quality"],
        "size": body.get("size", "1024x1024"),
        "usage": GPT_USAGE,
    })  # fmt: skip


def _dall_e(body: dict[str, Any], model: str) -> web.Response:
    rules = DALL_E.get(model)
    if rules is None:
        return bad_request(f"The model '{model}' does not exist.", "model")
    problem = _unknown(body, rules["fields"])
    if problem is not None:
        return problem
    if model == "dall-e-3" and body.get("n", 1) != 1:
        return bad_request("You must provide n=1 for this model.", "n")
    if body.get("size", "1024x1024") not in rules["sizes"]:
        return bad_request("Invalid value for 'size'.", "size")
    if body.get("quality", "standard") not in rules["qualities"]:
        return bad_request("Invalid value for 'quality'.", "quality")
    if body.get("style", "vivid") not in ("vivid", "natural"):
        return bad_request("Invalid value for 'style'.", "style")
    if body.get("response_format") == "b64_json":
        item: dict[str, Any] = {"b64_json": _b64(png_image(8, 8))}
    else:
        item = {"url": "https://oaidalle.example.invalid/img.png"}
    if model == "dall-e-3":
        item["revised_prompt"] = "revised: " + body["prompt"]
    return web.json_response({"created": int(time.time()), "data": [item] * body.get("n", 1)})
