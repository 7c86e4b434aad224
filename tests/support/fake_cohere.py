"""A real HTTP server speaking Cohere's v2 Chat API, for adapter and SDK tests.

It checks requests as Cohere does: a bearer key (401 otherwise), only the documented body
fields (https://docs.cohere.com/reference/chat; an unknown field is a 400), the system turn
first, tool results answering an earlier tool call, ``p``, ``k`` and the penalties in range,
at most five stop sequences, ``tool_choice`` of ``REQUIRED``/``NONE``, and no
``response_format`` together with tools. Refusals carry Cohere's error body,
``{"id", "message"}`` (https://docs.cohere.com/reference/errors). Streams are SSE events
named by their ``type`` (https://docs.cohere.com/docs/streaming).

The upstream model name selects the answer:

- ``plain``: text, ``COMPLETE``.
- ``tool``: a tool plan and one tool call, ``TOOL_CALL``.
- ``parallel-tools``: a tool plan and two tool calls, ``TOOL_CALL``.
- ``stop-sequence``: ``STOP_SEQUENCE``.
- ``length``: ``MAX_TOKENS``.
- ``json``: JSON text.
- ``image-input``: answers only when an ``image_url`` part arrived (400 otherwise).
- ``thinking``: a ``thinking`` content block before the text (reasoning models).
- ``cached``: plain, with prompt tokens served from Cohere's cache (``cached_tokens``).
- ``finish-error`` / ``timeout``: finishes with ``ERROR`` (and its message) / ``TIMEOUT``.
- ``stream-error``: streamed, some text then ``message-end`` with ``ERROR``; not streamed,
  as ``plain``.
- ``error-<status>``: that status with Cohere's error body (429 with ``retry-after``).

A ``~suffix`` on the name is ignored, so each test can tag its own requests. Usage always
differs between ``billed_units`` and ``tokens``, as Cohere's does. Cohere has no safety stop,
so ``content-filter`` answers as ``plain``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

REPLY_WORDS = ["Hello", " from", " the", " fake", " Command", "."]
JSON_REPLY = {"city": "Paris", "temperature": 18}
TOOL_PLAN = "I will look up the weather."
TOOL_CALLS = [
    ("get_weather_0", "get_weather", {"city": "Paris"}),
    ("get_weather_1", "get_weather", {"city": "Tokyo"}),
]
THINKING = "The user greets me; I greet back."
BILLED = {"input_tokens": 12, "output_tokens": 7}
TOKENS = {"input_tokens": 203, "output_tokens": 9}
CACHED = 8
FINISH_ERROR = "internal error while generating"
# The v2 chat body's fields, as the cohere SDK sends them.
FIELDS = frozenset(
    {
        "model", "messages", "tools", "strict_tools", "documents", "citation_options",
        "response_format", "safety_mode", "max_tokens", "stop_sequences", "temperature",
        "seed", "frequency_penalty", "presence_penalty", "k", "p", "logprobs", "tool_choice",
        "thinking", "priority", "stream",
    }
)  # fmt: skip
ERROR_MESSAGES = {
    400: "invalid request: fake Cohere error 400",
    401: "invalid api token",
    402: "Please add or update your payment method to continue",
    404: "model 'x' not found, make sure the correct model ID was used",
    422: "invalid request: fake Cohere error 422",
    429: "You are past the rate limit of this key: fake Cohere error 429",
    499: "request cancelled by the user",
    500: "internal server error: fake Cohere error 500",
    503: "service unavailable: fake Cohere error 503",
}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Cohere's error body."""
    body = {"id": "c0ffee00-0000-4000-8000-000000000000", "message": message}
    return web.json_response(body, status=status, headers=headers)


@dataclass
class Answer:
    """The message a scenario answers with."""

    words: list[str]
    finish_reason: str = "COMPLETE"
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    thinking: str = ""

    @property
    def tool_plan(self) -> str:
        """Cohere's text before tool calls."""
        return TOOL_PLAN if self.tool_calls else ""


def answer_for(scenario: str) -> Answer:
    """The answer a scenario gives."""
    if scenario == "tool":
        return Answer([], "TOOL_CALL", TOOL_CALLS[:1])
    if scenario == "parallel-tools":
        return Answer([], "TOOL_CALL", list(TOOL_CALLS))
    if scenario == "stop-sequence":
        return Answer(["Hello"], "STOP_SEQUENCE")
    if scenario == "length":
        return Answer(["Hello", " from"], "MAX_TOKENS")
    if scenario == "json":
        return Answer([json.dumps(JSON_REPLY)])
    if scenario == "thinking":
        return Answer(list(REPLY_WORDS), thinking=THINKING)
    if scenario == "finish-error":
        return Answer(["Hello"], "ERROR")
    if scenario == "timeout":
        return Answer(["Hello"], "TIMEOUT")
    return Answer(list(REPLY_WORDS))


def _range_problem(body: dict[str, Any]) -> str | None:
    for name, low, high in (
        ("p", 0.01, 0.99), ("k", 0, 500), ("frequency_penalty", 0.0, 1.0),
        ("presence_penalty", 0.0, 1.0), ("temperature", 0.0, None),
    ):  # fmt: skip
        value = body.get(name)
        if value is not None and (value < low or (high is not None and value > high)):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            return f"invalid request: {name} must be {bounds}"
    if len(body.get("stop_sequences") or ()) > 5:
        return "invalid request: stop_sequences can have at most 5 elements"
    return None


def _message_problem(index: int, message: Any, called: set[str]) -> str | None:
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("system", "user", "assistant", "tool"):
        return (
            f"invalid request: messages[{index}].role must be one of user, assistant, system, tool"
        )
    if role == "system" and index:
        return "system turn must be the first in the list"
    called.update(str(call.get("id")) for call in message.get("tool_calls") or ())
    if role == "tool" and message.get("tool_call_id") not in called:
        return f"invalid request: messages[{index}]: tool_call_id does not match a tool call"
    content = message.get("content")
    if role == "user" and not content:
        return "message must not be empty in a turn"
    for part in content if isinstance(content, list) else ():
        if part.get("type") not in ("text", "image_url", "document"):
            return f"invalid request: messages[{index}]: unknown content type {part.get('type')!r}"
    return None


def _tools_problem(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("REQUIRED", "NONE"):
        return "invalid request: tool_choice must be one of REQUIRED, NONE"
    if choice == "REQUIRED" and not tools:
        return "invalid request: tool_choice REQUIRED needs tools"
    if tools and body.get("response_format"):
        return "invalid request: response_format is not supported with tools"
    for tool in tools or ():
        function = tool.get("function") or {}
        if tool.get("type") != "function" or not function.get("name"):
            return "invalid request: tools must be functions with a name"
        if not isinstance(function.get("parameters"), dict) or set(function) - {
            "name", "description", "parameters",
        }:  # fmt: skip
            return "invalid request: a function takes name, description and parameters"
    return None


def request_problem(body: dict[str, Any], scenario: str) -> str | None:
    """What Cohere would reject in a v2 chat body, or None."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return f"invalid request: unknown field: parameter {unknown[0]} is not a valid field"
    if not isinstance(body.get("model"), str):
        return "invalid request: a model parameter is required for this endpoint."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must not be empty"
    called: set[str] = set()
    for index, message in enumerate(messages):
        problem = _message_problem(index, message, called)
        if problem:
            return problem
    problem = _range_problem(body) or _tools_problem(body)
    if problem:
        return problem
    if scenario == "image-input" and not any(
        isinstance(m.get("content"), list)
        and any(p.get("type") == "image_url" for p in m["content"])
        for m in messages
    ):
        return "invalid request: image-input expects an image_url content part"
    return None


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


@dataclass
class FakeCohere(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    api_key: str = "co-fake-key-0123456789"
    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The root URL: clients append ``/v2/chat``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoint."""
        app.router.add_post("/v2/chat", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, body))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return error_response(401, ERROR_MESSAGES[401])
        scenario = str(body.get("model", "plain")).split("~")[0]
        if scenario.startswith("error-"):
            status = int(scenario.removeprefix("error-"))
            retry = {"retry-after": "7"} if status == 429 else None
            return error_response(status, ERROR_MESSAGES.get(status, "fake error"), retry)
        problem = request_problem(body, scenario)
        if problem is not None:
            return error_response(400, problem)
        answer = answer_for(scenario)
        if body.get("stream"):
            return await _stream(request, scenario, answer)
        return web.json_response(chat_response(answer, cached=scenario == "cached"))


def usage(*, cached: bool = False) -> dict[str, Any]:
    """Cohere's usage: billed units, all tokens, cache hits."""
    hits = CACHED if cached else 0
    return {"billed_units": dict(BILLED), "tokens": dict(TOKENS), "cached_tokens": hits}


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"id": call_id, "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}
        for call_id, name, arguments in answer.tool_calls
    ]  # fmt: skip


def chat_response(answer: Answer, *, cached: bool = False) -> dict[str, Any]:
    """A whole v2 chat response."""
    content: list[dict[str, Any]] = []
    if answer.thinking:
        content.append({"type": "thinking", "thinking": answer.thinking})
    if answer.words:
        content.append({"type": "text", "text": "".join(answer.words)})
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if answer.tool_calls:
        message.update(tool_plan=answer.tool_plan, tool_calls=_tool_calls(answer))
    return {
        "id": "5a1c0c5e-0000-4000-8000-000000000001",
        "finish_reason": answer.finish_reason,
        "message": message,
        "usage": usage(cached=cached),
    }


def _content_events(index: int, kind: str, pieces: list[str]) -> list[dict[str, Any]]:
    start = {
        "type": "content-start",
        "index": index,
        "delta": {"message": {"content": {"type": kind, kind: ""}}},
    }
    deltas = [
        {"type": "content-delta", "index": index, "delta": {"message": {"content": {kind: piece}}}}
        for piece in pieces
    ]
    return [start, *deltas, {"type": "content-end", "index": index}]  # fmt: skip


def _tool_events(answer: Answer) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": word}}}
        for word in (_words(answer.tool_plan) if answer.tool_plan else [])
    ]
    for index, call in enumerate(_tool_calls(answer)):
        arguments = call["function"]["arguments"]
        start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        middle = len(arguments) // 2
        events.append(
            {
                "type": "tool-call-start",
                "index": index,
                "delta": {"message": {"tool_calls": start}},
            }
        )
        for part in (arguments[:middle], arguments[middle:]):
            events.append(
                {
                    "type": "tool-call-delta",
                    "index": index,
                    "delta": {"message": {"tool_calls": {"function": {"arguments": part}}}},
                }
            )
        events.append({"type": "tool-call-end", "index": index})  # fmt: skip
    return events


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def stream_events(scenario: str, answer: Answer) -> list[dict[str, Any]]:
    """The events of a streamed answer, in Cohere's order."""
    start_message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [],
                     "citations": []}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"id": "5a1c0c5e-0000-4000-8000-000000000001", "type": "message-start",
         "delta": {"message": start_message}},
    ]  # fmt: skip
    index = 0
    if answer.thinking:
        events += _content_events(index, "thinking", _words(answer.thinking))
        index += 1
    if answer.words:
        events += _content_events(index, "text", answer.words)
    events += _tool_events(answer)
    end: dict[str, Any] = {
        "finish_reason": answer.finish_reason, "usage": usage(cached=scenario == "cached"),
    }  # fmt: skip
    if scenario == "stream-error":
        # Cut after the first words: the generation failed.
        events = events[: len(events) - len(answer.words) + 1]
        end = {"finish_reason": "ERROR", "error": FINISH_ERROR, "usage": usage()}
    elif answer.finish_reason == "ERROR":
        end["error"] = FINISH_ERROR
    return [*events, {"type": "message-end", "delta": end}]


async def _stream(request: web.Request, scenario: str, answer: Answer) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in stream_events(scenario, answer):
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    await response.write_eof()
    return response
