"""A real HTTP server speaking the Gemini API's ``generateContent`` wire format.

It checks what the API rejects (roles other than ``user``/``model``, function responses
that do not match the function calls of the turn before) with Google's 400 error body, and
answers ``POST /v1beta/models/{model}:generateContent`` with a ``GenerateContentResponse``
and ``:streamGenerateContent?alt=sse`` with SSE events of the same shape, field names as in
https://ai.google.dev/api/generate-content. The model name selects the behaviour; anything
after a ``~`` is ignored, so tests can tag requests (``plain~<uuid>``):

- ``plain``: text in three stream events, the last with STOP and usage; one candidate per
  ``generationConfig.candidateCount``.
- ``tool``: one function call, STOP.
- ``tools``, ``parallel-tools``: two parallel function calls (one per stream event), STOP.
- ``tool-no-args``: one function call without ``args``, STOP.
- ``stop-sequence``: text that stopped before the request's stop sequence, STOP.
- ``length``: text cut by MAX_TOKENS.
- ``json``: a JSON object as text.
- ``image-input``: answers only when an ``inlineData`` or ``fileData`` part arrived.
- ``safety``, ``content-filter``: a candidate stopped by SAFETY, without content.
- ``blocked``: no candidates, ``promptFeedback.blockReason`` SAFETY.
- ``thinking``: a thought part, text, and usage with cached and thoughts tokens.
- ``two``: two candidates (as for ``candidateCount: 2``).
- ``error-<status>``: Google's error body with that status (429 carries RetryInfo).
- ``key-invalid``: the 400 Google sends for a bad key (ErrorInfo API_KEY_INVALID).
- ``echo-key``: a 500 whose message repeats the ``x-goog-api-key`` header.
- ``stream-error``: one text event, then an ``error`` object in the stream.
- ``image-*``: image answers, as ``fake_gemini_image`` describes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_gemini_image import image_config_problem, image_events
from tests.support.threaded_server import ThreadedServer

REPLY = ["Hello", " from", " Gemini."]
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
}  # fmt: skip
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14}
THINKING_USAGE = {
    "promptTokenCount": 120,
    "cachedContentTokenCount": 100,
    "candidatesTokenCount": 7,
    "thoughtsTokenCount": 30,
    "totalTokenCount": 157,
}
JSON_REPLY = {"answer": "Paris"}
CALLS = [
    {"name": "get_weather", "args": {"city": "Paris"}},
    {"name": "get_time", "args": {"city": "Paris", "utc": True}},
]


@dataclass
class Recorded:
    """One request the fake server received."""

    model: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeGemini(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The base URL (without ``/v1beta``) VaultGate and the SDK point at."""
        return f"http://127.0.0.1:{self.port}"

    def received(self, model: str) -> Recorded:
        """The one request made for the (tagged) model name."""
        matches = [r for r in self.requests if r.model == model]
        assert len(matches) == 1, f"{len(matches)} requests for {model}"
        return matches[0]

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_post("/v1beta/models/{target}", self._generate)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        headers = dict(request.headers)
        self.requests.append(Recorded(model, method, dict(request.query), headers, body))
        behaviour = model.split("~")[0]
        early = _error_answer(behaviour, headers.get("x-goog-api-key", ""))
        if early is not None:
            return early
        problem = request_problem(body, behaviour) or image_config_problem(body)
        if problem is not None:
            return _error(400, problem)
        count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        if behaviour.startswith("image-"):
            events = image_events(behaviour, body)
        else:
            events = _events(behaviour, count)
        if method == "generateContent":
            return web.json_response(_merge(events))
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return _error(404, f"method {method} not found")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
        if behaviour == "stream-error":
            failure = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
            await response.write(f"data: {json.dumps(failure)}\r\n\r\n".encode())
        return response


def _error(status: int, message: str, details: list[Any] | None = None) -> web.Response:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


def _error_answer(behaviour: str, key: str) -> web.Response | None:
    if behaviour.startswith("error-"):
        status = int(behaviour.split("-")[1])
        details = None
        if status == 429:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]
        return _error(status, f"fake gemini error {status}", details)
    if behaviour == "key-invalid":
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
        return _error(400, "API key not valid. Please pass a valid API key.", [info])
    if behaviour == "echo-key":
        return _error(500, f"internal error for key {key}")
    return None


def _parts(content: Any) -> list[Any]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def request_problem(body: dict[str, Any], behaviour: str) -> str | None:
    """What the Gemini API would reject in a request body, or None."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model (contents[{index}])"
        responses = [p for p in _parts(content) if "functionResponse" in p]
        if not responses:
            continue
        previous = _parts(contents[index - 1]) if index else []
        calls = [p["functionCall"].get("name") for p in previous if "functionCall" in p]
        names = [p["functionResponse"].get("name") for p in responses]
        if sorted(names) != sorted(calls):
            return (
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
    media = [p for c in contents for p in _parts(c) if "inlineData" in p or "fileData" in p]
    if behaviour == "image-input" and not media:
        return "image-input expects an inlineData or fileData part"
    return None


def _candidate(parts: list[Any] | None, finish: str | None = None, index: int = 0) -> Any:
    candidate: dict[str, Any] = {"index": index}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def _response(*candidates: Any, usage: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "candidates": list(candidates),
        "modelVersion": "gemini-fake-001",
        "responseId": "fake-response-1",
    }
    if usage:
        response["usageMetadata"] = usage
    return response


def _events(behaviour: str, count: int = 1) -> list[dict[str, Any]]:
    """The stream events of a behaviour; a plain answer is their merge."""
    text = [_response(_candidate([{"text": word}])) for word in REPLY[:-1]]
    last = {"text": REPLY[-1]}
    if behaviour == "tool":
        return [_response(_candidate([{"functionCall": CALLS[0]}], "STOP"), usage=USAGE)]
    if behaviour == "tool-no-args":
        call = {"functionCall": {"name": "get_time"}}
        return [_response(_candidate([call], "STOP"), usage=USAGE)]
    if behaviour in ("tools", "parallel-tools"):
        first = _response(_candidate([{"functionCall": CALLS[0]}]))
        return [first, _response(_candidate([{"functionCall": CALLS[1]}], "STOP"), usage=USAGE)]
    if behaviour == "length":
        return [*text, _response(_candidate([last], "MAX_TOKENS"), usage=USAGE)]
    if behaviour == "stop-sequence":
        return [_response(_candidate([{"text": "Hello"}], "STOP"), usage=USAGE)]
    if behaviour == "json":
        answer = [{"text": json.dumps(JSON_REPLY)}]
        return [_response(_candidate(answer, "STOP"), usage=USAGE)]
    if behaviour in ("safety", "content-filter"):
        return [_response(_candidate(None, "SAFETY"), usage=USAGE)]
    if behaviour == "blocked":
        feedback = {"blockReason": "SAFETY", "safetyRatings": []}
        usage = {"promptTokenCount": 9, "totalTokenCount": 9}
        return [{"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": "x"}]
    if behaviour == "thinking":
        thought = _response(_candidate([{"text": "Let me think.", "thought": True}]))
        return [thought, *text, _response(_candidate([last], "STOP"), usage=THINKING_USAGE)]
    if behaviour == "two":
        first = _candidate([{"text": "First."}], "STOP", 0)
        return [_response(first, _candidate([{"text": "Second."}], "STOP", 1), usage=USAGE)]
    if behaviour == "stream-error":
        return text[:1]
    if count > 1:
        return _several(count)
    return [*text, _response(_candidate([last], "STOP"), usage=USAGE)]


def _several(count: int) -> list[dict[str, Any]]:
    """The plain answer for ``candidateCount`` above 1: each event carries every candidate."""
    events = [
        _response(*(_candidate([{"text": word}], index=i) for i in range(count)))
        for word in REPLY[:-1]
    ]
    last = [_candidate([{"text": REPLY[-1]}], "STOP", i) for i in range(count)]
    usage = {**USAGE, "candidatesTokenCount": USAGE["candidatesTokenCount"] * count}
    usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
    return [*events, _response(*last, usage=usage)]


def _merge(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``GenerateContentResponse`` holding everything the events hold."""
    merged: dict[str, Any] = {k: v for k, v in events[-1].items() if k != "candidates"}
    candidates: dict[int, dict[str, Any]] = {}
    for event in events:
        for candidate in event.get("candidates") or ():
            into = candidates.setdefault(candidate["index"], {"index": candidate["index"]})
            parts = (candidate.get("content") or {}).get("parts")
            if parts:
                content = into.setdefault("content", {"role": "model", "parts": []})
                content["parts"] = _join_text(content["parts"] + parts)
            if candidate.get("finishReason"):
                into["finishReason"] = candidate["finishReason"]
    if candidates:
        merged["candidates"] = [candidates[i] for i in sorted(candidates)]
    return merged


def _join_text(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    joined: list[dict[str, Any]] = []
    for part in parts:
        plain = set(part) == {"text"}
        if plain and joined and set(joined[-1]) == {"text"}:
            joined[-1] = {"text": joined[-1]["text"] + part["text"]}
        else:
            joined.append(dict(part))
    return joined
