"""A real HTTP server speaking Azure OpenAI's wire format, for adapter and SDK tests.

It serves both URL styles Azure documents: ``/openai/deployments/{deployment}/...`` with a
required ``api-version`` query (404 ``Resource not found`` without it, as Azure answers) and
the v1 API ``/openai/v1/...`` with the deployment as ``model``. It accepts the key in the
``api-key`` header, or as a bearer token (an Entra token, or a key on the v1 API), and answers
401 with Azure's body otherwise. Answers carry Azure's content-filter annotations; streams
start with Azure's chunk of empty ``choices`` carrying ``prompt_filter_results``
(https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter).

The deployment (or v1 ``model``) selects the answer:

- ``plain``: text, ``stop``.
- ``tool`` / ``parallel-tools``: one / two tool calls, ``tool_calls``.
- ``stop-sequence``: stops on the request's stop sequence, ``stop``.
- ``length``: cut by the token limit.
- ``json``: JSON text.
- ``image-input``: answers only when an ``image_url`` part arrived (400 otherwise).
- ``content-filter``: a completion cut by the filter, ``content_filter``.
- ``prompt-filter``: a prompt blocked by the filter (400, code ``content_filter``).
- ``async-filter``: plain, streamed with trailing annotation-only chunks (asynchronous
  filtering).
- ``error-<status>``: that status with Azure's body (429 with ``retry-after``,
  ``retry-after-ms`` and ``x-ratelimit-remaining-*``).
- ``stream-error``: streams some text, then an ``error`` event.

A ``~suffix`` on the name is ignored, so each test can tag its own requests; ``n`` choices
are answered, as Azure does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

REPLY_WORDS = ["Hello", " from", " the", " fake", " Azure", "."]
JSON_REPLY = {"city": "Paris", "temperature": 18}
TOOL_CALLS = [
    ("call_azure_1", "get_weather", {"city": "Paris"}),
    ("call_azure_2", "get_weather", {"city": "Tokyo"}),
]
PROMPT_TOKENS, COMPLETION_TOKENS = 13, 6
USAGE = {
    "prompt_tokens": PROMPT_TOKENS,
    "completion_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
SAFE = {"filtered": False, "severity": "safe"}
CATEGORIES = ("hate", "self_harm", "sexual", "violence")
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
PROMPT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content "
    "management policy. Please modify your prompt and retry."
)
ERROR_MESSAGES = {
    400: "Invalid request: fake Azure error 400",
    401: (
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource."
    ),
    404: "Resource not found",
    429: (
        "Requests to the ChatCompletions_Create Operation have exceeded token rate limit of "
        "your current pricing tier. Please retry after 7 seconds."
    ),
    500: "The server had an error while processing your request: fake Azure error 500",
}


def filter_results(*, filtered: str | None = None) -> dict[str, Any]:
    """A ``content_filter_results`` object; ``filtered`` names a category that tripped."""
    results: dict[str, Any] = {name: dict(SAFE) for name in CATEGORIES}
    if filtered:
        results[filtered] = {"filtered": True, "severity": "high"}
    return results


def prompt_filter_results() -> list[dict[str, Any]]:
    """The ``prompt_filter_results`` annotation of one prompt."""
    return [{"prompt_index": 0, "content_filter_results": filter_results()}]


def error_response(http_status: int, message: str, **extra: Any) -> web.Response:
    """Azure's error body: ``{"error": {"code", "message", ...}}``."""
    code = extra.pop("code", str(http_status))
    headers = extra.pop("headers", None)
    error = {"code": code, "message": message, **extra}
    return web.json_response({"error": error}, status=http_status, headers=headers)


def prompt_filter_error() -> web.Response:
    """The 400 of a prompt blocked by the content filter."""
    inner = {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": filter_results(filtered="violence"),
    }
    return error_response(
        400, PROMPT_FILTER_MESSAGE, code="content_filter", type=None, param="prompt",
        status=400, innererror=inner,
    )  # fmt: skip


def scenario_error(scenario: str) -> web.Response | None:
    """The error a scenario answers with, if it is an error scenario."""
    if scenario == "prompt-filter":
        return prompt_filter_error()
    if not scenario.startswith("error-"):
        return None
    status = int(scenario.removeprefix("error-"))
    headers = None
    if status == 429:
        headers = {
            "retry-after": "7", "retry-after-ms": "7000",
            "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "0",
        }  # fmt: skip
    message = ERROR_MESSAGES.get(status, f"fake Azure error {status}")
    return error_response(status, message, headers=headers)


@dataclass
class Answer:
    """One choice's content, finish reason and tool calls."""

    words: list[str]
    finish_reason: str = "stop"
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def content(self) -> str | None:
        """The whole text; null when the answer is only tool calls."""
        return "".join(self.words) if self.words or not self.tool_calls else None


def answer_for(scenario: str) -> Answer:
    """The answer a scenario gives."""
    if scenario == "tool":
        return Answer([], "tool_calls", TOOL_CALLS[:1])
    if scenario == "parallel-tools":
        return Answer([], "tool_calls", list(TOOL_CALLS))
    if scenario == "stop-sequence":
        return Answer(["Hello"])
    if scenario == "length":
        return Answer(["Hello", " from"], "length")
    if scenario == "json":
        return Answer([json.dumps(JSON_REPLY)])
    if scenario == "content-filter":
        return Answer(["Hello"], "content_filter")
    return Answer(list(REPLY_WORDS))


def _has_image(messages: list[Any]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "image_url"
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
    )


def request_problem(body: dict[str, Any], scenario: str) -> str | None:
    """What Azure OpenAI would reject in a chat body, or None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is a required property"
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return f"Invalid value for 'messages[{index}].role': {role!r}"
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    if scenario == "image-input" and not _has_image(messages):
        return "image-input expects an image_url content part"
    return None


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


@dataclass
class FakeAzure(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    api_key: str = "azure-fake-key-0123456789"
    entra_token: str = "entra-fake-token-0123456789"
    requests: list[Recorded] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The resource endpoint, as ``https://NAME.openai.azure.com`` would be."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """Both URL styles, for chat and images."""
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/images/generations", self._images)
        app.router.add_post("/openai/v1/images/generations", self._images)

    async def _admit(self, request: web.Request) -> tuple[dict[str, Any], str | web.Response]:
        """Record the request; the scenario it names, or the error that refuses it."""
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.path, dict(request.query), headers, body))
        deployment = request.match_info.get("deployment")
        if deployment is not None and not request.query.get("api-version"):
            return body, error_response(404, ERROR_MESSAGES[404])
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if headers.get("api-key") != self.api_key and bearer not in (
            self.entra_token, self.api_key if deployment is None else None,
        ):  # fmt: skip
            return body, error_response(401, ERROR_MESSAGES[401])
        scenario = deployment if deployment is not None else body.get("model")
        if not isinstance(scenario, str) or not scenario:
            return body, error_response(400, "'model' is a required property")
        return body, scenario.split("~")[0]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, scenario = await self._admit(request)
        if isinstance(scenario, web.Response):
            return scenario
        refused = scenario_error(scenario)
        if refused is not None:
            return refused
        problem = request_problem(body, scenario)
        if problem is not None:
            return error_response(400, problem, param="messages", type="invalid_request_error")
        answer = answer_for(scenario)
        if body.get("stream"):
            return await _stream(request, body, scenario, answer)
        return web.json_response(completion(answer, int(body.get("n") or 1)))

    async def _images(self, request: web.Request) -> web.StreamResponse:
        body, scenario = await self._admit(request)
        if isinstance(scenario, web.Response):
            return scenario
        if scenario == "prompt-filter":
            # The image API spells the code contentFilter.
            return error_response(
                400, "Your task failed as a result of our safety system.", code="contentFilter"
            )
        refused = scenario_error(scenario)
        if refused is not None:
            return refused
        item = {
            "url": "https://images.example.invalid/azure.png",
            "revised_prompt": f"A picture of {body.get('prompt')}",
            "content_filter_results": filter_results(),
            "prompt_filter_results": filter_results(),
        }
        return web.json_response({"created": int(time.time()), "data": [item]})


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"id": call_id, "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}
        for call_id, name, arguments in answer.tool_calls
    ]  # fmt: skip


def completion(answer: Answer, n: int = 1) -> dict[str, Any]:
    """A whole ``chat.completion`` of ``n`` choices, with Azure's annotations."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer)
    filtered = "violence" if answer.finish_reason == "content_filter" else None
    choices = [
        {"index": index, "message": message, "logprobs": None,
         "finish_reason": answer.finish_reason,
         "content_filter_results": filter_results(filtered=filtered)}
        for index in range(n)
    ]  # fmt: skip
    return {
        "id": "chatcmpl-azure01",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-11-20",
        "system_fingerprint": "fp_azure",
        "prompt_filter_results": prompt_filter_results(),
        "choices": choices,
        "usage": dict(USAGE),
    }


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-azure01", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": "gpt-4o-2024-11-20",
        "system_fingerprint": "fp_azure", "choices": choices, **extra,
    }  # fmt: skip


def _delta(
    index: int, delta: dict[str, Any], finish: str | None = None, results: Any = None
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return _chunk([{**choice, "content_filter_results": results or {}}])


def _choice_chunks(scenario: str, index: int, answer: Answer) -> list[dict[str, Any]]:
    chunks = [_delta(index, {"role": "assistant", "content": "", "refusal": None})]
    for word in answer.words:
        chunks.append(_delta(index, {"content": word}, results=filter_results()))
        if scenario == "stream-error":
            return chunks
    for position, call in enumerate(_tool_calls(answer)):
        chunks.append(_delta(index, {"tool_calls": [{"index": position, **call}]}))
    filtered = "violence" if answer.finish_reason == "content_filter" else None
    results = filter_results(filtered=filtered)
    return [*chunks, _delta(index, {}, answer.finish_reason, results=results)]


def stream_chunks(scenario: str, body: dict[str, Any], answer: Answer) -> list[dict[str, Any]]:
    """The ``data:`` payloads of a streamed answer, Azure's first chunk included."""
    preamble = {
        "id": "", "object": "", "created": 0, "model": "", "choices": [],
        "prompt_filter_results": prompt_filter_results(),
    }  # fmt: skip
    chunks = [preamble]
    for index in range(1 if scenario == "stream-error" else int(body.get("n") or 1)):
        chunks += _choice_chunks(scenario, index, answer)
    if scenario == "stream-error":
        return chunks
    if scenario == "async-filter":
        annotation = {
            "index": 0,
            "finish_reason": None,
            "content_filter_results": filter_results(),
            "content_filter_offsets": {"start_offset": 0, "end_offset": 30},
        }
        chunks.append(_chunk([annotation]))  # fmt: skip
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(_chunk([], usage=dict(USAGE)))
    return chunks


async def _stream(
    request: web.Request, body: dict[str, Any], scenario: str, answer: Answer
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in stream_chunks(scenario, body, answer):
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    if scenario == "stream-error":
        error = {"error": {"code": "server_error", "message": "fake Azure stream failure"}}
        await response.write(f"data: {json.dumps(error)}\n\n".encode())
    else:
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
