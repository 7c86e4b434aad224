"""Replicate's predictions API for official models (format ``replicate``).

``POST {base}/v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}`` and
``Prefer: wait`` holds the connection until the prediction finishes (up to 60 s) and
answers the prediction; one still ``starting`` or ``processing`` is polled at
``urls.get`` until ``succeeded``, ``failed`` or ``canceled``. ``output`` is a URL or a list
of URLs (``data:`` URIs too), downloaded here. The upstream model is ``owner/name``.
https://replicate.com/docs/reference/http#models.predictions.create,
https://replicate.com/changelog/2025-01-29-official-models

=====================  ===============================================================
OpenAI parameter       Replicate input
=====================  ===============================================================
size                   ``aspect_ratio`` (see image_sizes.py): 1:1, 16:9, 9:16, 3:2, 2:3,
                       4:5, 5:4, 3:4, 4:3, 21:9, 9:21; other sizes 400
n                      one prediction per image, created at once
quality                standard/auto: nothing sent; others dropped with a warning
style                  dropped with a warning
output_format          png, webp as they are, jpeg as ``jpg``
response_format        honoured by the gateway
seed, negative_prompt, passed on
safety_tolerance,
prompt_upsampling,
output_quality
anything else          dropped with a warning
=====================  ===============================================================

A ``failed`` prediction is a 502 that is not retried (the model rejected this input);
``canceled`` is a retryable 502. Errors are RFC 7807 bodies (``title``, ``detail``).
"""

from __future__ import annotations

import time
from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import (
    GeneratedImage,
    ImageCall,
    ImageResult,
    JsonObject,
    ProviderConfig,
)
from vaultgate.providers.http import HttpClient, UpstreamRequest, scrub_secret
from vaultgate.providers.image_sizes import size_to_aspect_ratio
from vaultgate.providers.image_support import (
    ImageHttpAdapter,
    fan_out,
    neutral_quality_or_dropped,
    option_seconds,
    refuse,
    split_params,
)

ASPECT_RATIOS = ("1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "21:9", "9:21")
OUTPUT_FORMATS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
PASSTHROUGH = (
    "seed", "negative_prompt", "safety_tolerance", "prompt_upsampling", "output_quality",
)  # fmt: skip
HANDLED = ("style", "output_format")
FINISHED = frozenset({"succeeded", "failed", "canceled"})
MAX_WAIT_S = 60


def openai_to_replicate_input(call: ImageCall, provider: str) -> tuple[JsonObject, list[str]]:
    """The prediction's ``input`` for an OpenAI image request, and the parameters dropped."""
    extras, dropped = split_params(call.body, PASSTHROUGH + HANDLED)
    neutral_quality_or_dropped(call, dropped)
    if extras.pop("style", None) is not None:
        dropped.append("style")
    model_input: JsonObject = {
        "prompt": call.prompt,
        "aspect_ratio": size_to_aspect_ratio(call.size, ASPECT_RATIOS, provider=provider),
    }
    output_format = extras.pop("output_format", None)
    if output_format is not None:
        if output_format not in OUTPUT_FORMATS:
            raise refuse(provider, "output_format", "makes only png, jpeg and webp images.")
        model_input["output_format"] = OUTPUT_FORMATS[output_format]
    model_input.update(extras)
    return model_input, sorted(dropped)


def replicate_outputs(prediction: JsonObject) -> list[Any]:
    """The output URLs of a succeeded prediction (one URL or a list)."""
    output = prediction.get("output")
    return output if isinstance(output, list) else [output]


class ReplicateAdapter(ImageHttpAdapter):
    """Image models on Replicate, one prediction per image."""

    def __init__(self, config: ProviderConfig, http: HttpClient) -> None:
        super().__init__(config, http)
        # How long Replicate holds the request before answering an unfinished prediction.
        wait = config.option("wait_s")
        seconds = option_seconds(config, "wait_s", MAX_WAIT_S)
        self._prefer = "wait" if wait is None else f"wait={max(1, min(int(seconds), MAX_WAIT_S))}"

    def _auth_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.config.api_key or ''}"}
        headers.update(self.config.headers)
        return headers

    async def images(self, call: ImageCall) -> ImageResult:
        """Create one prediction per image, wait for each, download the outputs."""
        model_input, dropped = openai_to_replicate_input(call, self.config.name)
        url = f"{self.config.base_url.rstrip('/')}/v1/models/{call.upstream_model}/predictions"
        headers = {
            **self._auth_headers(), "Content-Type": "application/json", "Prefer": self._prefer,
        }  # fmt: skip
        create = UpstreamRequest(url, headers, {"input": model_input})

        async def one(_: int) -> list[GeneratedImage]:
            prediction = await self._finished(create)
            return [await self._download(url) for url in replicate_outputs(prediction)]

        async with self._within_total_timeout():
            images = await fan_out(call.n, one)
        return ImageResult(
            images=images[: call.n], created=int(time.time()), dropped=tuple(dropped)
        )

    async def _finished(self, create: UpstreamRequest) -> JsonObject:
        """The prediction once it has succeeded; raises when it failed or was canceled."""
        prediction = await self._exchange_json(create)
        if not isinstance(prediction, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed prediction")
        if prediction.get("status") not in FINISHED:
            poll_url = (prediction.get("urls") or {}).get("get")
            if not isinstance(poll_url, str) or not poll_url.startswith("http"):
                raise UpstreamError(f"{self.config.name} sent a prediction without a get URL")
            poll = UpstreamRequest(poll_url, self._auth_headers(), {}, method="GET")
            prediction = await self._poll(lambda: self._check(poll))
        return self._succeeded(prediction)

    async def _check(self, poll: UpstreamRequest) -> JsonObject | None:
        prediction = await self._exchange_json(poll)
        if not isinstance(prediction, dict):
            raise UpstreamError(f"{self.config.name} sent a malformed prediction")
        return prediction if prediction.get("status") in FINISHED else None

    def _succeeded(self, prediction: JsonObject) -> JsonObject:
        status = prediction.get("status")
        if status == "succeeded":
            return prediction
        reason = scrub_secret(str(prediction.get("error") or status), self.config.api_key)
        raise UpstreamError(
            f"{self.config.name}: the prediction {status}: {reason}",
            code="upstream_prediction_failed",
            retryable=status == "canceled",
        )
