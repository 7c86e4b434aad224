"""A real HTTP server speaking Replicate's predictions API for official models, for adapter
and SDK tests: ``POST /v1/models/{owner}/{name}/predictions`` takes ``{"input": {...}}``
and answers a prediction object (finished at once under ``Prefer: wait`` unless the
scenario is slow), ``GET /v1/predictions/{id}`` answers its current state, and
``GET /delivery/{file}`` serves outputs. Errors are RFC 7807 bodies (``title``,
``detail``, ``status``); an input the model's schema refuses is a 422.

The model name (``{name}``) selects the behaviour:

- any other name: succeeded, ``output`` one URL of a PNG, or of a JPEG when
  ``output_format`` is jpg.
- ``list``: ``output`` a list of one URL; ``data-uri``: ``output`` a ``data:`` URI.
- ``slow-<n>``: ``starting`` when created, ``processing`` for n polls, then succeeded.
- ``failed``: failed with an error; ``canceled``: canceled.
- ``error-<status>``: that status (``retry-after`` on 429).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.sample_images import jpeg_image, png_image
from tests.support.threaded_server import ThreadedServer

REPLICATE_TOKEN = "r8_fake_token_0123456789"
INPUTS = {"prompt", "aspect_ratio", "output_format", "seed", "negative_prompt",
          "safety_tolerance", "prompt_upsampling", "output_quality"}  # fmt: skip
ASPECT_RATIOS = {"1:1", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "21:9", "9:21"}
CREATED_AT = "2026-12-04T10:00:00.000000Z"


@dataclass
class Recorded:
    """One request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class Prediction:
    """A prediction and how many polls it still answers ``processing``."""

    model: str
    input: dict[str, Any]
    pending: int
    polls: int = 0


def problem(status: int, detail: str) -> web.Response:
    """Replicate's RFC 7807 error body."""
    headers = {"retry-after": "7"} if status == 429 else None
    body = {"title": "Request failed", "detail": detail, "status": status}
    return web.json_response(body, status=status, headers=headers,
                             content_type="application/problem+json")  # fmt: skip


def input_problem(body: Any) -> str | None:
    """What the model's input schema would refuse, or None."""
    if not isinstance(body, dict) or set(body) - {"input", "webhook", "stream"}:
        return "the body takes input, webhook and stream"
    model_input = body.get("input")
    if not isinstance(model_input, dict) or not isinstance(model_input.get("prompt"), str):
        return "input.prompt is required"
    if set(model_input) - INPUTS:
        return f"input: unknown fields {sorted(set(model_input) - INPUTS)}"
    if model_input.get("aspect_ratio", "1:1") not in ASPECT_RATIOS:
        return "input.aspect_ratio must be one of the allowed ratios"
    if model_input.get("output_format", "webp") not in ("webp", "jpg", "png"):
        return "input.output_format must be webp, jpg or png"
    return None


@dataclass
class FakeReplicate(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)
    predictions: dict[str, Prediction] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        """The API root: clients append ``/v1/...``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_post("/v1/models/{owner}/{name}/predictions", self._create)
        app.router.add_get("/v1/predictions/{id}", self._get)
        app.router.add_get("/delivery/{file}", self._delivery)

    async def _record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.method, request.path, headers, body))
        return body

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {REPLICATE_TOKEN}"

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if not self._authorised(request):
            return problem(401, "You did not pass a valid authentication token")
        model = request.match_info["name"]
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            return problem(status, f"fake Replicate error {status}")
        issue = input_problem(body)
        if issue is not None:
            return problem(422, issue)
        prediction_id = f"pred{next(self._ids)}"
        pending = int(model.split("-")[1]) if model.startswith("slow-") else 0
        owner = request.match_info["owner"]
        prediction = Prediction(f"{owner}/{model}", body["input"], pending)
        self.predictions[prediction_id] = prediction
        status = "starting" if pending else self._outcome(prediction)
        return web.json_response(self.prediction_json(prediction_id, status), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._authorised(request):
            return problem(401, "You did not pass a valid authentication token")
        prediction_id = request.match_info["id"]
        prediction = self.predictions.get(prediction_id)
        if prediction is None:
            return problem(404, "Not found")
        prediction.polls += 1
        status = "processing" if prediction.polls <= prediction.pending else None
        return web.json_response(
            self.prediction_json(prediction_id, status or self._outcome(prediction))
        )

    @staticmethod
    def _outcome(prediction: Prediction) -> str:
        name = prediction.model.split("/")[1]
        return name if name in ("failed", "canceled") else "succeeded"

    def prediction_json(self, prediction_id: str, status: str) -> dict[str, Any]:
        """The prediction object as Replicate's API shows it."""
        prediction = self.predictions[prediction_id]
        done = status in ("succeeded", "failed", "canceled")
        return {
            "id": prediction_id,
            "model": prediction.model,
            "version": "hidden",
            "input": prediction.input,
            "logs": "",
            "output": self._output(prediction_id) if status == "succeeded" else None,
            "data_removed": False,
            "error": "the model raised an error" if status == "failed" else None,
            "status": status,
            "created_at": CREATED_AT,
            "started_at": CREATED_AT if status != "starting" else None,
            "completed_at": CREATED_AT if done else None,
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{prediction_id}",
                "cancel": f"{self.base_url}/v1/predictions/{prediction_id}/cancel",
                "web": f"https://replicate.com/p/{prediction_id}",
            },
            "metrics": {"image_count": 1, "predict_time": 0.5} if done else {},
        }

    def _output(self, prediction_id: str) -> Any:
        prediction = self.predictions[prediction_id]
        name = prediction.model.split("/")[1]
        image, extension = self.image(prediction)
        if name == "data-uri":
            return "data:image/png;base64," + base64.b64encode(image).decode()
        url = f"{self.base_url}/delivery/{prediction_id}.{extension}"
        return [url] if name == "list" else url

    @staticmethod
    def image(prediction: Prediction) -> tuple[bytes, str]:
        """The output image of a prediction and its file extension."""
        if prediction.input.get("output_format") == "jpg":
            return jpeg_image(16, 16), "jpg"
        return png_image(32, 24), "png"

    async def _delivery(self, request: web.Request) -> web.Response:
        await self._record(request)
        prediction = self.predictions.get(request.match_info["file"].partition(".")[0])
        if prediction is None:
            return web.Response(status=404)
        image, extension = self.image(prediction)
        media_type = "image/jpeg" if extension == "jpg" else "image/png"
        return web.Response(body=image, content_type=media_type)
