"""A real HTTP server speaking Claude's wire format on Vertex AI, with the fake Vertex
server's token endpoint and Gemini routes in front of it.

``POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:
rawPredict`` (and ``:streamRawPredict``, answered as SSE) takes Anthropic's Messages API
body with Vertex's two differences
(https://docs.anthropic.com/en/api/claude-on-vertex-ai): no ``model`` member (the URL names
it) and ``anthropic_version`` set to ``vertex-2023-10-16`` in the body. It answers only a
bearer token the fake issued (or one of ``static_tokens``), else Vertex's 401
UNAUTHENTICATED; a project or location other than the expected one is a 403
PERMISSION_DENIED. The body is then checked as ``fake_anthropic`` checks it and answered by
the same scenario names, with Vertex's own error shapes where Vertex answers instead of the
model: ``error-401``, ``error-403`` and ``error-404`` carry ``google.rpc.Status``, and
``error-429`` Vertex's quota error, framed in a JSON array and without ``retry-after``.
The other ``error-<status>`` scenarios carry Anthropic's error body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_anthropic import (
    _has_image,
    _message,
    error_body,
    request_problem,
    script_for,
    stream_events,
)
from tests.support.fake_gemini import STATUS_NAMES, _error
from tests.support.fake_vertex import LOCATION, PROJECT, UNAUTHENTICATED, FakeVertex

VERTEX_VERSION = "vertex-2023-10-16"
QUOTA_MESSAGE = (
    "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model "
    "with base model: anthropic-claude. Please submit a quota increase request."
)
# Errors Vertex answers itself, in Google's shape, before the model sees the request.
VERTEX_STATUSES = frozenset({401, 403, 404, 429})


@dataclass
class ClaudeRequest:
    """One request to a Claude model: the model and method from the URL, the headers (names
    in lower case) and the body."""

    model: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any]


def vertex_body_problem(body: dict[str, Any]) -> str | None:
    """What Vertex rejects in a Claude body, or None: Anthropic's rules, with the model in
    the URL instead of the body and the Vertex version in the body."""
    if "model" in body:
        return "model: Extra inputs are not permitted"
    if body.get("anthropic_version") != VERTEX_VERSION:
        return f"anthropic_version: Input should be '{VERTEX_VERSION}'"
    rest = {k: v for k, v in body.items() if k != "anthropic_version"}
    return request_problem({**rest, "model": "from-url"})


def _vertex_error(status: int) -> web.Response:
    if status != 429:
        return _error(status, f"fake vertex error {status}")
    error = {"code": 429, "message": QUOTA_MESSAGE, "status": STATUS_NAMES[429]}
    return web.json_response([{"error": error}], status=429)


@dataclass
class FakeVertexAnthropic(FakeVertex):
    """The fake Vertex server, plus Claude's ``rawPredict`` methods."""

    claude_requests: list[ClaudeRequest] = field(default_factory=list)

    def claude_received(self, model: str) -> ClaudeRequest:
        """The one Claude request made for the (tagged) model name."""
        matches = [r for r in self.claude_requests if r.model == model]
        assert len(matches) == 1, f"{len(matches)} requests for {model}"
        return matches[0]

    def add_routes(self, app: web.Application) -> None:
        """Vertex's routes and the token endpoint, plus Claude's."""
        super().add_routes(app)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{target}",
            self._claude,
        )

    async def _claude(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued | self.static_tokens:
            return _error(401, UNAUTHENTICATED)
        if (request.match_info["project"], request.match_info["location"]) != (
            PROJECT,
            LOCATION,
        ):
            return _error(403, "Permission 'aiplatform.endpoints.predict' denied")
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.claude_requests.append(ClaudeRequest(model, method, headers, body))
        return await self._answer_claude(request, model, method, body)

    async def _answer_claude(
        self, request: web.Request, model: str, method: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        behaviour = model.split("~")[0]
        if behaviour.startswith("error-"):
            status = int(behaviour.split("-")[1])
            if status in VERTEX_STATUSES:
                return _vertex_error(status)
            failure = error_body(status, f"fake Claude error {status}")
            return web.json_response(failure, status=status)
        if method not in ("rawPredict", "streamRawPredict"):
            return _error(404, f"method {method} not found")
        problem = vertex_body_problem(body)
        if behaviour == "image-input" and not _has_image(body):
            problem = "image-input expects an image content block"
        if problem is not None:
            return web.json_response(error_body(400, problem), status=400)
        script = script_for(behaviour, body)
        if method == "rawPredict":
            return web.json_response(_message(model, script))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for name, payload in stream_events(model, script):
            await response.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
        await response.write_eof()
        return response
