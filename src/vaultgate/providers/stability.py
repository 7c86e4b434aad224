"""Stability AI's Stable Image API (format ``stability``).

``POST {base}/v2beta/stable-image/generate/{ultra|core|sd3}`` with a multipart form and
``accept: application/json`` answers ``{image, finish_reason, seed}``, the image in
base64. The upstream model is ``ultra``, ``core``, or an SD3 variant (``sd3.5-large``,
``sd3.5-large-turbo``, ``sd3.5-medium``...), sent to the ``sd3`` endpoint as ``model``.
Errors read ``{id, name, errors: [...]}``.
https://platform.stability.ai/docs/api-reference#tag/Generate

=====================  ===============================================================
OpenAI parameter       Stability
=====================  ===============================================================
size                   ``aspect_ratio`` (see image_sizes.py): 21:9, 16:9, 3:2, 5:4, 1:1,
                       4:5, 2:3, 9:16, 9:21; other sizes 400
n                      one request per image, sent at once
quality                standard/auto: nothing sent; others dropped with a warning
style                  dropped with a warning (``style_preset`` is Stability's own)
output_format          png, jpeg, webp as they are
response_format        honoured by the gateway
negative_prompt,       passed on
seed, style_preset,
cfg_scale
anything else          dropped with a warning
=====================  ===============================================================

``finish_reason: CONTENT_FILTERED`` and a 403 named ``content_moderation`` become
OpenAI's 400 ``content_policy_violation``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import GeneratedImage, ImageCall, ImageResult
from vaultgate.providers.http import UpstreamRequest, scrub_secret
from vaultgate.providers.image_sizes import size_to_aspect_ratio
from vaultgate.providers.image_support import (
    ImageHttpAdapter,
    content_filtered,
    fan_out,
    image_from_base64,
    map_image_error,
    neutral_quality_or_dropped,
    refuse,
    split_params,
)
from vaultgate.providers.multipart import encode_form

ENDPOINTS = frozenset({"ultra", "core"})
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
OUTPUT_FORMATS = frozenset({"png", "jpeg", "webp"})
PASSTHROUGH = ("negative_prompt", "seed", "style_preset", "cfg_scale")
HANDLED = ("style", "output_format")


def stability_endpoint(upstream: str) -> tuple[str, str | None]:
    """The endpoint of an upstream model, and the ``model`` field it needs (SD3 only)."""
    if upstream in ENDPOINTS:
        return upstream, None
    return "sd3", upstream


def openai_to_stability_form(call: ImageCall, provider: str) -> tuple[dict[str, str], list[str]]:
    """The form fields of one request, and the parameters dropped."""
    extras, dropped = split_params(call.body, PASSTHROUGH + HANDLED)
    neutral_quality_or_dropped(call, dropped)
    if extras.pop("style", None) is not None:
        dropped.append("style")
    output_format = extras.pop("output_format", None)
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise refuse(provider, "output_format", "makes only png, jpeg and webp images.")
    fields = {
        "prompt": call.prompt,
        "aspect_ratio": size_to_aspect_ratio(call.size, ASPECT_RATIOS, provider=provider),
    }
    _, model = stability_endpoint(call.upstream_model)
    if model is not None:
        fields["model"] = model
    if output_format is not None:
        fields["output_format"] = output_format
    fields.update({name: _form_value(value) for name, value in extras.items()})
    return fields, sorted(dropped)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stability_error_message(raw: bytes) -> tuple[str, str | None]:
    """The joined ``errors`` of a Stability error body, and its ``name``."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")[:200] or "no error message", None
    if not isinstance(payload, dict):
        return str(payload)[:200], None
    errors = payload.get("errors")
    name = payload.get("name") if isinstance(payload.get("name"), str) else None
    if isinstance(errors, list) and errors:
        return "; ".join(str(error) for error in errors), name
    return str(name or "unknown error"), name


class StabilityAdapter(ImageHttpAdapter):
    """Stable Image Ultra, Core and SD3 over Stability's REST API."""

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """A 403 named ``content_moderation`` is the safety filter; the rest by status."""
        message, name = stability_error_message(raw)
        if status == 403 and name == "content_moderation":
            return content_filtered(self.config.name, scrub_secret(message, self.config.api_key))
        return map_image_error(self.config, status, raw, headers, message)

    async def images(self, call: ImageCall) -> ImageResult:
        """One request per image; each answers its image in base64."""
        fields, dropped = openai_to_stability_form(call, self.config.name)
        endpoint, _ = stability_endpoint(call.upstream_model)
        url = f"{self.config.base_url.rstrip('/')}/v2beta/stable-image/generate/{endpoint}"

        async def one(_: int) -> list[GeneratedImage]:
            return [await self._generate(url, fields)]

        async with self._within_total_timeout():
            images = await fan_out(call.n, one)
        return ImageResult(images=images, created=int(time.time()), dropped=tuple(dropped))

    async def _generate(self, url: str, fields: dict[str, str]) -> GeneratedImage:
        # A fresh boundary per request.
        body, content_type = encode_form(fields)
        headers = {
            "authorization": f"Bearer {self.config.api_key or ''}",
            "accept": "application/json",
            "content-type": content_type,
            **dict(self.config.headers),
        }
        answer = await self._exchange_json(UpstreamRequest(url, headers, {}, body=body))
        if not isinstance(answer, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed image response")
        if answer.get("finish_reason") == "CONTENT_FILTERED":
            raise content_filtered(self.config.name, "the safety filter blocked the image")
        return image_from_base64(answer.get("image"), self.config.name)
