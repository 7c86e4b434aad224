"""Black Forest Labs' FLUX API (format ``bfl``): submit a task, poll it, download the image.

``POST {base}/v1/{model}`` with the ``x-key`` header answers ``{id, polling_url}``;
``GET polling_url`` (with the key) answers ``{id, status, result}`` until ``status`` is
``Ready`` with ``result.sample``, a signed URL valid for ten minutes, or a failure status.
https://docs.bfl.ai/api_integration/errors, https://docs.bfl.ai/flux_models/flux_1_1_pro

=============================  ==========================================================
OpenAI parameter               BFL
=============================  ==========================================================
size                           ``width``/``height`` (FLUX.1: 256-1440, multiples of 32;
                               FLUX.2: multiples of 16, up to 4 MP), or ``aspect_ratio``
                               for Ultra and Kontext (see image_sizes.py); else 400
n                              one task per image, submitted at once
quality                        standard/auto: nothing sent; others dropped with a warning
style                          dropped with a warning
output_format                  png, jpeg as they are; webp refused with 400
response_format                honoured by the gateway (it stores the downloaded image)
seed, safety_tolerance,        passed on
prompt_upsampling, raw,
steps, guidance
anything else                  dropped with a warning
=============================  ==========================================================

Statuses ``Request Moderated`` and ``Content Moderated`` become OpenAI's 400
``content_policy_violation``; ``Error`` and ``Task not found`` a retryable 502. Polling
waits ``options.poll_interval_s`` (default 0.5 s) between checks, all within the
provider's total timeout.
"""

from __future__ import annotations

import time
from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import GeneratedImage, ImageCall, ImageResult, JsonObject
from vaultgate.providers.http import UpstreamRequest
from vaultgate.providers.image_sizes import (
    DimensionLimits,
    size_to_aspect_ratio,
    size_to_dimensions,
)
from vaultgate.providers.image_support import (
    ImageHttpAdapter,
    content_filtered,
    fan_out,
    neutral_quality_or_dropped,
    refuse,
    split_params,
)

PASSTHROUGH = ("seed", "safety_tolerance", "prompt_upsampling", "raw", "steps", "guidance")
HANDLED = ("style", "output_format")
OUTPUT_FORMATS = frozenset({"png", "jpeg"})
# Models sized by an aspect ratio rather than a width and a height.
ASPECT_RATIO_MODELS = ("flux-pro-1.1-ultra", "flux-kontext-")
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
FLUX1_LIMITS = DimensionLimits(low=256, high=1440, multiple=32)
FLUX2_LIMITS = DimensionLimits(low=64, high=4096, multiple=16, max_pixels=4 * 1024 * 1024)
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
FAILED = frozenset({"Error", "Task not found"})


def openai_size_to_bfl(model: str, size: str, provider: str) -> JsonObject:
    """The size fields of a task for ``model``."""
    if model.startswith(ASPECT_RATIO_MODELS):
        return {"aspect_ratio": size_to_aspect_ratio(size, ASPECT_RATIOS, provider=provider)}
    limits = FLUX2_LIMITS if model.startswith("flux-2-") else FLUX1_LIMITS
    width, height = size_to_dimensions(size, limits, provider=provider)
    return {"width": width, "height": height}


def openai_to_bfl_task(call: ImageCall, provider: str) -> tuple[JsonObject, list[str]]:
    """One task's body for an OpenAI image request, and the parameters dropped."""
    extras, dropped = split_params(call.body, PASSTHROUGH + HANDLED)
    neutral_quality_or_dropped(call, dropped)
    if extras.pop("style", None) is not None:
        dropped.append("style")
    task: JsonObject = {"prompt": call.prompt}
    task.update(openai_size_to_bfl(call.upstream_model, call.size, provider))
    output_format = extras.pop("output_format", None)
    if output_format is not None:
        if output_format not in OUTPUT_FORMATS:
            raise refuse(provider, "output_format", "makes only png and jpeg images.")
        task["output_format"] = output_format
    task.update(extras)
    return task, sorted(dropped)


class BflAdapter(ImageHttpAdapter):
    """FLUX image generation over Black Forest Labs' task API."""

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "x-key": self.config.api_key or ""}
        headers.update(self.config.headers)
        return headers

    async def images(self, call: ImageCall) -> ImageResult:
        """Submit one task per image, poll each until ready, download the results."""
        task, dropped = openai_to_bfl_task(call, self.config.name)
        url = f"{self.config.base_url.rstrip('/')}/v1/{call.upstream_model}"
        headers = {**self._headers(), "Content-Type": "application/json"}
        submit = UpstreamRequest(url, headers, task)

        async def one(_: int) -> list[GeneratedImage]:
            return [await self._generate(submit)]

        async with self._within_total_timeout():
            images = await fan_out(call.n, one)
        return ImageResult(images=images, created=int(time.time()), dropped=tuple(dropped))

    async def _generate(self, submit: UpstreamRequest) -> GeneratedImage:
        accepted = await self._exchange_json(submit)
        polling_url = accepted.get("polling_url") if isinstance(accepted, dict) else None
        if not isinstance(polling_url, str) or not polling_url.startswith("http"):
            raise UpstreamError(f"{self.config.name} accepted a task without a polling URL")
        poll = UpstreamRequest(polling_url, self._headers(), {}, method="GET")
        sample = await self._poll(lambda: self._check(poll))
        return await self._download(sample)

    async def _check(self, poll: UpstreamRequest) -> Any:
        """The result URL once the task is ready, None while it runs; raises on failure."""
        answer = await self._exchange_json(poll)
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "Ready":
            result = answer.get("result")
            sample = result.get("sample") if isinstance(result, dict) else None
            if sample is None:
                raise UpstreamError(f"{self.config.name} reported a task ready without an image")
            return sample
        if status in MODERATED:
            raise content_filtered(self.config.name, f"{status}: the safety filter refused it")
        if status in FAILED:
            raise UpstreamError(f"{self.config.name}: the task ended with status {status!r}")
        return None
