"""A real HTTP server speaking Black Forest Labs' FLUX task API, for adapter and end-to-end
tests: ``POST /v1/{model}`` answers ``{id, polling_url, cost, input_mp, output_mp}``,
``GET /v1/get_result?id=`` answers the task's status, and ``GET /delivery/{file}`` serves
the finished image (a signed link: it takes no key). Requests without the right ``x-key``
get 403, bodies break BFL's documented rules get 422 with a FastAPI ``detail`` list.

The model (the path) selects the behaviour:

- any other name: a task ready at the first poll. FLUX.1 names take width and height
  (256-1440, multiples of 32); ``flux-pro-1.1-ultra`` and ``flux-kontext-*`` an aspect ratio.
- ``slow-<n>``: ``Pending`` for n polls, then ready.
- ``content-filter``: ``Content Moderated``; ``request-moderated``: ``Request Moderated``.
- ``task-error``: ``Error``; ``task-not-found``: ``Task not found``.
- ``error-<status>``: that status with ``{"detail": ...}`` (``retry-after`` on 429).

Images are PNG when ``output_format`` is png, else JPEG (BFL's default).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.sample_images import jpeg_image, png_image
from tests.support.threaded_server import ThreadedServer

BFL_KEY = "bfl-fake-key-0123456789"
COMMON_FIELDS = {
    "prompt", "seed", "safety_tolerance", "output_format", "prompt_upsampling",
    "webhook_url", "webhook_secret",
}  # fmt: skip
SIZED_FIELDS = COMMON_FIELDS | {"width", "height", "steps", "guidance", "image_prompt"}
RATIO_FIELDS = COMMON_FIELDS | {"aspect_ratio", "raw", "input_image", "image_prompt"}
# Small stand-ins for the images of an aspect ratio (the real ones are megapixels).
RATIO_SIZES = {"1:1": (64, 64), "16:9": (112, 64), "9:16": (64, 112), "3:2": (96, 64),
               "2:3": (64, 96)}  # fmt: skip
STATUSES = {
    "content-filter": "Content Moderated",
    "request-moderated": "Request Moderated",
    "task-error": "Error",
    "task-not-found": "Task not found",
}


@dataclass
class Recorded:
    """One request the fake server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class Task:
    """A submitted task and how many polls it still answers Pending."""

    model: str
    body: dict[str, Any]
    pending: int
    polls: int = 0


def takes_aspect_ratio(model: str) -> bool:
    """Whether BFL sizes this model by aspect ratio."""
    return model.startswith(("flux-pro-1.1-ultra", "flux-kontext-"))


def _problem(loc: str, message: str, kind: str) -> web.Response:
    detail = [{"loc": ["body", loc], "msg": message, "type": kind}]
    return web.json_response({"detail": detail}, status=422)


def validation_problem(model: str, body: Any) -> web.Response | None:
    """BFL's 422 for a body its schema refuses, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return _problem("prompt", "Field required", "missing")
    allowed = RATIO_FIELDS if takes_aspect_ratio(model) else SIZED_FIELDS
    for name in body:
        if name not in allowed:
            return _problem(name, "Extra inputs are not permitted", "extra_forbidden")
    for name in ("width", "height"):
        value = body.get(name, 1024)
        if not isinstance(value, int) or not 256 <= value <= 1440 or value % 32:
            return _problem(name, "Must be a multiple of 32 from 256 to 1440", "value_error")
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        return _problem("output_format", "Input should be 'jpeg' or 'png'", "enum")
    return None


@dataclass
class FakeBfl(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        """The API root: clients append ``/v1/{model}``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_get("/v1/get_result", self._get_result)
        app.router.add_post("/v1/{model}", self._submit)
        app.router.add_get("/delivery/{name}", self._delivery)

    async def _record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), headers, body)
        )
        return body

    async def _submit(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        model = request.match_info["model"]
        if request.headers.get("x-key") != BFL_KEY:
            return web.json_response({"detail": "Not authenticated"}, status=403)
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            headers = {"retry-after": "7"} if status == 429 else None
            return web.json_response({"detail": f"fake BFL error {status}"}, status=status,
                                     headers=headers)  # fmt: skip
        problem = validation_problem(model, body)
        if problem is not None:
            return problem
        task_id = f"task-{next(self._ids)}"
        pending = int(model.split("-")[1]) if model.startswith("slow-") else 0
        self.tasks[task_id] = Task(model, body, pending)
        polling_url = f"{self.base_url}/v1/get_result?id={task_id}"
        return web.json_response(
            {"id": task_id, "polling_url": polling_url, "cost": 4.0, "input_mp": 0.0,
             "output_mp": 1.05}
        )  # fmt: skip

    async def _get_result(self, request: web.Request) -> web.Response:
        await self._record(request)
        if request.headers.get("x-key") != BFL_KEY:
            return web.json_response({"detail": "Not authenticated"}, status=403)
        task_id = request.query.get("id", "")
        task = self.tasks.get(task_id)
        if task is None:
            return web.json_response({"id": task_id, "status": "Task not found", "result": None})
        task.polls += 1
        if task.polls <= task.pending:
            return web.json_response(
                {"id": task_id, "status": "Pending", "result": None, "progress": 0.5}
            )
        failure = STATUSES.get(task.model)
        if failure is not None:
            return web.json_response(
                {"id": task_id, "status": failure, "result": None, "details": {}}
            )
        extension = "png" if task.body.get("output_format") == "png" else "jpg"
        sample = f"{self.base_url}/delivery/{task_id}.{extension}?se=fake&sig=signed"
        result = {"sample": sample, "prompt": task.body["prompt"], "seed": 42}
        return web.json_response({"id": task_id, "status": "Ready", "result": result})

    async def _delivery(self, request: web.Request) -> web.Response:
        await self._record(request)
        task_id, _, extension = request.match_info["name"].partition(".")
        task = self.tasks.get(task_id)
        if task is None:
            return web.Response(status=404)
        width, height = self.image_size(task)
        if extension == "png":
            return web.Response(body=png_image(width, height), content_type="image/png")
        return web.Response(body=jpeg_image(width, height), content_type="image/jpeg")

    @staticmethod
    def image_size(task: Task) -> tuple[int, int]:
        """The size of the image a task makes."""
        if takes_aspect_ratio(task.model):
            return RATIO_SIZES[task.body.get("aspect_ratio", "16:9")]
        return task.body.get("width", 1024), task.body.get("height", 768)
