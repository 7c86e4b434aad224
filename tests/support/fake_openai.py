"""A real HTTP server that speaks OpenAI's chat and images wire format, with switchable
quirks of real OpenAI-compatible servers, for adapter and end-to-end tests.

It checks what OpenAI checks (https://platform.openai.com/docs/api-reference/chat):
``messages`` present, known roles, every ``tool`` message answering an earlier tool call,
and the word "json" in the messages when ``response_format`` is ``json_object``; a
request that breaks a rule gets a 400 in OpenAI's error shape.

The upstream model name selects the behaviour; anything after a ``~`` is ignored, so tests
can tag requests (``plain~<uuid>``). ``n`` is honoured: each choice is the same answer.

- ``plain``: a well-behaved OpenAI server (usage in streams when asked).
- ``tool``: one tool call (``call_fake_1``), ``tool_calls``.
- ``parallel-tools``: two tool calls (``call_fake_1``, ``call_fake_2``), ``tool_calls``.
- ``tool-no-args``: one tool call whose arguments are ``{}``, ``tool_calls``.
- ``stop-sequence``: text cut before the request's stop sequence, ``stop``.
- ``length``: text cut by the token limit, ``length``.
- ``json``: a JSON object as text.
- ``image-input``: answers only when an ``image_url`` part arrived (400 otherwise).
- ``content-filter``: no text, ``content_filter``.
- ``cached``: usage with cached prompt tokens and reasoning tokens.
- ``no-usage``: never reports usage, streamed or not (many local servers).
- ``comments``: SSE comment and keep-alive lines, CRLF line ends, events split across writes.
- ``error-<status>``: answers that HTTP status with an OpenAI-shaped error (429 carries
  ``retry-after`` and the ``x-ratelimit-*`` headers).
- ``text-error-<status>``: answers that status with a plain-text body.
- ``detail-error-<status>``: answers that status with ``{"detail": "..."}``.
- ``client-error-as-500``: a 500 whose body says it is an invalid request (llama.cpp style).
- ``stream-error``, ``stream-error-after-<n>``: streams 2 (or n) content chunks, then an
  error event.
- ``cut-after-<n>``: streams n content chunks, then drops the connection.
- ``malformed``: a 200 whose body is not JSON.
- ``slow-<ms>``: waits that long before answering.
- ``usage-<p>-<c>``: reports exactly p prompt and c completion tokens, streamed or not.
- ``echo-key-<status>``: answers that status with an OpenAI-shaped error whose message
  repeats the ``Authorization`` header it received (as careless servers do).
- ``echo-key-text-<status>``: the same, as a plain-text body.
- ``echo-key-stream``: streams one content chunk, then an error event repeating the header.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
REPLY_WORDS = ["Hello", " from", " the", " fake", " upstream", "."]
TOOL_CALLS = [
    ("call_fake_1", "get_weather", {"city": "Paris", "unit": "celsius"}),
    ("call_fake_2", "get_time", {"city": "Paris"}),
]
JSON_REPLY = {"answer": "Paris"}
# The headers OpenAI sends with every answer, a 429 included
# (https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers).
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "7s",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-tokens": "149000",
    "x-ratelimit-reset-tokens": "1s",
}
CACHED_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 37,
    "total_tokens": 157,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 30},
}
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Answer:
    """What one choice says: text pieces, tool calls and a finish reason."""

    pieces: list[str]
    finish_reason: str = "stop"
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def content(self) -> str | None:
        """The whole text; None for a tool-calling answer without text."""
        text = "".join(self.pieces)
        return None if self.tool_calls and not text else text


@dataclass
class FakeOpenAI(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The ``/v1`` base URL clients and VaultGate point at."""
        return f"http://127.0.0.1:{self.port}/v1"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._images)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        model = str(body.get("model", "plain"))
        behaviour = model.split("~")[0]
        echoed = _echo_key_answer(behaviour, request.headers.get("Authorization", ""))
        if echoed is not None:
            return echoed
        early = await _early_answer(behaviour)
        if early is not None:
            return early
        problem = request_problem(body, behaviour)
        if problem is not None:
            return _error(400, problem, "invalid_request_error")
        answer = answer_for(behaviour, body)
        if body.get("stream"):
            return await _stream(request, body, model, answer)
        return web.json_response(_completion(body, model, answer))

    async def _images(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Recorded(request.path, dict(request.headers), body))
        early = await _early_answer(str(body.get("model", "plain")))
        if early is not None:
            return early
        count = int(body.get("n") or 1)
        if body.get("response_format") == "b64_json":
            item = {"b64_json": base64.b64encode(PNG_1X1).decode()}
        else:
            item = {"url": "https://images.example.invalid/fake.png"}
        return web.json_response({"created": int(time.time()), "data": [item] * count})


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def answer_for(behaviour: str, body: dict[str, Any]) -> Answer:
    """The answer of one choice for a behaviour."""
    if behaviour == "tool":
        return Answer([], "tool_calls", TOOL_CALLS[:1])
    if behaviour == "tool-no-args":
        return Answer([], "tool_calls", [("call_fake_3", "get_time", {})])
    if behaviour == "parallel-tools":
        return Answer([], "tool_calls", list(TOOL_CALLS))
    if behaviour == "stop-sequence":
        return Answer(["Hello"], "stop")
    if behaviour == "length":
        return Answer(["Hello", " from"], "length")
    if behaviour == "json":
        return Answer([json.dumps(JSON_REPLY)])
    if behaviour == "content-filter":
        return Answer([], "content_filter")
    return Answer(list(REPLY_WORDS))


def _has_image(messages: list[Any]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "image_url"
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
    )


def request_problem(body: dict[str, Any], behaviour: str) -> str | None:
    """What OpenAI would reject in a chat body, or None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    called: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return f"Invalid value for 'messages[{index}].role': {role!r}"
        called.update(str(call.get("id")) for call in message.get("tool_calls") or ())
        if role == "tool" and message.get("tool_call_id") not in called:
            return (
                "Invalid parameter: messages with role 'tool' must be a response to a "
                "preceding message with 'tool_calls'."
            )
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object" and "json" not in json.dumps(messages).lower():
        return (
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'."
        )
    if behaviour == "image-input" and not _has_image(messages):
        return "image-input expects an image_url content part"
    return None


def _message(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(arguments)}}
            for call_id, name, arguments in answer.tool_calls
        ]  # fmt: skip
    return message


def _completion(body: dict[str, Any], model: str, answer: Answer) -> dict[str, Any]:
    choices = [
        {"index": index, "message": _message(answer), "logprobs": None,
         "finish_reason": answer.finish_reason}
        for index in range(int(body.get("n") or 1))
    ]  # fmt: skip
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    usage = _usage(model.split("~")[0], int(body.get("n") or 1))
    if usage:
        payload["usage"] = usage
    return payload


def _usage(behaviour: str, choices: int = 1) -> dict[str, Any] | None:
    if behaviour == "no-usage":
        return None
    if behaviour == "cached":
        return dict(CACHED_USAGE)
    prompt, completion = 11, len(REPLY_WORDS) * choices
    if behaviour.startswith("usage-"):
        _, prompt_text, completion_text = behaviour.split("-")
        prompt, completion = int(prompt_text), int(completion_text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _error(
    status: int, message: str, kind: str = "server_error", headers: dict[str, str] | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(payload, status=status, headers=headers)


def _echo_key_answer(model: str, authorization: str) -> web.Response | None:
    """Error answers that repeat the caller's credential back to it."""
    message = f"Incorrect API key provided: {authorization}"
    if model.startswith("echo-key-text-"):
        return web.Response(status=int(model.rsplit("-", 1)[1]), text=message)
    if model.startswith("echo-key-") and model != "echo-key-stream":
        status = int(model.rsplit("-", 1)[1])
        kind = "invalid_request_error" if status < 500 and status != 429 else "server_error"
        return _error(status, message, kind)
    return None


async def _early_answer(model: str) -> web.Response | None:
    """Answers that do not depend on the request body."""
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.split("-")[1]) / 1000)
        return None
    if model.startswith("error-"):
        status = int(model.split("-")[1])
        kind = "invalid_request_error" if status < 500 and status != 429 else "server_error"
        headers = {"retry-after": "7", **RATE_LIMIT_HEADERS} if status == 429 else None
        return _error(status, f"fake upstream error {status}", kind, headers)
    if model.startswith("text-error-"):
        return web.Response(status=int(model.split("-")[2]), text="upstream exploded")
    if model.startswith("detail-error-"):
        status = int(model.split("-")[2])
        return web.json_response({"detail": "detail-shaped failure"}, status=status)
    if model == "client-error-as-500":
        payload = {
            "error": {"code": 400, "message": "prompt too long", "type": "invalid_request_error"}
        }
        return web.json_response(payload, status=500)
    if model == "malformed":
        return web.Response(status=200, text="{not json", content_type="application/json")
    return None


def _failure(behaviour: str) -> tuple[int | None, str | None]:
    """How many content chunks a stream sends before failing, and how it fails."""
    if behaviour == "echo-key-stream":
        return 1, "echo"
    if behaviour == "stream-error":
        return 2, "error"
    if behaviour.startswith(("stream-error-after-", "cut-after-")):
        failure = "error" if behaviour.startswith("stream-error") else "cut"
        return int(behaviour.rsplit("-", 1)[1]), failure
    return None, None


def _tool_call_deltas(answer: Answer) -> list[dict[str, Any]]:
    """Each call's id and name first, then its arguments in two pieces."""
    deltas: list[dict[str, Any]] = []
    for index, (call_id, name, arguments) in enumerate(answer.tool_calls):
        text = json.dumps(arguments)
        middle = len(text) // 2
        first = {"index": index, "id": call_id, "type": "function",
                 "function": {"name": name, "arguments": ""}}  # fmt: skip
        deltas.append({"tool_calls": [first]})
        for piece in (text[:middle], text[middle:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


async def _stream(
    request: web.Request, body: dict[str, Any], model: str, answer: Answer
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    behaviour = model.split("~")[0]
    crlf = behaviour == "comments"
    end = "\r\n\r\n" if crlf else "\n\n"
    choices = range(int(body.get("n") or 1))

    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}{end}".encode()

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return event({**frame, "choices": [choice]})

    frame = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
             "model": model}  # fmt: skip
    limit, failure = _failure(behaviour)
    if crlf:
        await response.write(b": keep-alive\r\n\r\n")
    for index in choices:
        await response.write(chunk(index, {"role": "assistant", "content": ""}))
    deltas = [{"content": word} for word in answer.pieces[:limit]] + _tool_call_deltas(answer)
    for delta in deltas:
        for index in choices:
            data = chunk(index, delta)
            if crlf:
                # Split each event, and the UTF-8 of its text, across two writes.
                await response.write(data[:7])
                await asyncio.sleep(0.001)
                await response.write(data[7:])
                await response.write(b": ping\r\n\r\n")
            else:
                await response.write(data)
    if failure == "error":
        await response.write(
            event({"error": {"message": "overloaded mid-stream", "type": "server_error"}})
        )
        return response
    if failure == "echo":
        message = f"bad key {request.headers.get('Authorization', '')}"
        await response.write(event({"error": {"message": message, "type": "server_error"}}))
        return response
    if failure == "cut":
        assert request.transport is not None
        request.transport.close()
        return response
    for index in choices:
        await response.write(chunk(index, {}, answer.finish_reason))
    options = body.get("stream_options") or {}
    usage = _usage(behaviour, len(choices))
    if options.get("include_usage") and usage:
        await response.write(event({**frame, "choices": [], "usage": usage}))
    await response.write(f"data: [DONE]{end}".encode())
    return response
