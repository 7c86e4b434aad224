"""A real HTTP server speaking Anthropic's Messages API wire format, for adapter, SDK and
end-to-end tests. It checks requests as strictly as Anthropic documents them (``max_tokens``
required, user and assistant turns alternating, only those two roles) and answers 400 with
Anthropic's error body when they break a rule.

The upstream model name selects the answer; anything after a ``~`` is ignored, so tests
can tag requests (``plain~<uuid>``):

- ``plain``: one text block, ``end_turn``.
- ``tool``: a text block and one ``tool_use`` block, ``tool_use``.
- ``parallel-tools``: two ``tool_use`` blocks, ``tool_use``.
- ``tool-no-args``: one ``tool_use`` block with an empty input, ``tool_use``; streamed, its
  only ``input_json_delta`` is empty.
- ``stop-sequence``: stops on the request's first stop sequence, ``stop_sequence``.
- ``length``: cut by ``max_tokens``.
- ``json``: a JSON object as text.
- ``image-input``: answers only when an image block arrived (400 otherwise).
- ``refusal``, ``content-filter``: ``refusal``.
- ``cached``: usage with cache reads and cache writes.
- ``error-<status>``: that HTTP status with Anthropic's error body (``retry-after`` and the
  ``anthropic-ratelimit-*`` headers on 429).
- ``stream-error``: streams a text delta, then an ``overloaded_error`` event.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

REPLY_WORDS = ["Hello", " from", " the", " fake", " Claude", "."]
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}
SECOND_TOOL_INPUT = {"city": "Tokyo", "unit": "celsius"}
JSON_REPLY = {"answer": "Paris"}
# https://docs.anthropic.com/en/api/messages (image source ``media_type``)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# https://docs.anthropic.com/en/api/rate-limits#response-headers
RATE_LIMIT_HEADERS = {
    "retry-after": "7",
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "0",
    "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:07Z",
    "anthropic-ratelimit-tokens-limit": "40000",
    "anthropic-ratelimit-tokens-remaining": "39000",
    "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:01Z",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
USAGE = {
    "input_tokens": 12,
    "output_tokens": 7,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
CACHED_USAGE = {
    "input_tokens": 5,
    "output_tokens": 7,
    "cache_creation_input_tokens": 20,
    "cache_read_input_tokens": 100,
}


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


@dataclass
class Script:
    """What the fake answers: content blocks, a stop reason and usage."""

    blocks: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None = None
    usage: dict[str, int] = field(default_factory=lambda: dict(USAGE))


def _tool_block(block_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


def script_for(model: str, body: dict[str, Any]) -> Script:
    """The answer to a request for ``model``."""
    text = {"type": "text", "text": "".join(REPLY_WORDS)}
    if model == "tool":
        tool = _tool_block("toolu_01", "get_weather", TOOL_INPUT)
        return Script([{"type": "text", "text": "Let me check."}, tool], "tool_use")
    if model == "tool-no-args":
        return Script([_tool_block("toolu_03", "get_time", {})], "tool_use")
    if model == "parallel-tools":
        first = _tool_block("toolu_01", "get_weather", TOOL_INPUT)
        second = _tool_block("toolu_02", "get_weather", SECOND_TOOL_INPUT)
        return Script([first, second], "tool_use")
    if model == "stop-sequence":
        stop = (body.get("stop_sequences") or ["END"])[0]
        return Script([{"type": "text", "text": "Hello"}], "stop_sequence", stop)
    if model == "length":
        return Script([{"type": "text", "text": "Hello from"}], "max_tokens")
    if model in ("refusal", "content-filter"):
        return Script([], "refusal")
    if model == "json":
        return Script([{"type": "text", "text": json.dumps(JSON_REPLY)}], "end_turn")
    if model == "cached":
        return Script([text], "end_turn", usage=dict(CACHED_USAGE))
    return Script([text], "end_turn")


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error shape (https://docs.anthropic.com/en/api/errors)."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def request_problem(body: dict[str, Any]) -> str | None:
    """What Anthropic would reject in a request body, or None."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for index, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if index and messages[index - 1]["role"] == message["role"]:
            return "messages: roles must alternate between 'user' and 'assistant'"
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if any(block.get("type") == "text" and not block.get("text") for block in blocks):
            return f"messages.{index}: text content blocks must be non-empty"
        problem = _image_problem(blocks, index) or _tool_result_problem(messages, index)
        if problem is not None:
            return problem
    return None


def _image_problem(blocks: list[Any], index: int) -> str | None:
    for block in blocks:
        if block.get("type") != "image":
            continue
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_TYPES:
                return f"messages.{index}: image media_type must be one of {sorted(IMAGE_TYPES)}"
            try:
                base64.b64decode(source.get("data", ""), validate=True)
            except (binascii.Error, ValueError):
                return f"messages.{index}: image data is not valid base64"
        elif source.get("type") != "url":
            return f"messages.{index}: image source type must be 'base64' or 'url'"
    return None


def _tool_result_problem(messages: list[Any], index: int) -> str | None:
    """Tool results answer tool_use blocks of the turn just before, and come first
    (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use)."""
    content = messages[index].get("content")
    blocks = content if isinstance(content, list) else []
    kinds = [block.get("type") for block in blocks]
    if "tool_result" not in kinds:
        return None
    if "text" in kinds and kinds.index("text") < kinds.index("tool_result"):
        return f"messages.{index}: tool_result blocks must come before any text"
    previous = messages[index - 1].get("content") if index else None
    uses = {
        b.get("id") for b in previous or () if isinstance(b, dict) and b.get("type") == "tool_use"
    }
    for block in blocks:
        if block.get("type") == "tool_result" and block.get("tool_use_id") not in uses:
            return (
                f"messages.{index}: unexpected tool_use_id found in tool_result blocks: "
                f"{block.get('tool_use_id')}"
            )
    return None


def _has_image(body: dict[str, Any]) -> bool:
    return any(
        block.get("type") == "image"
        for message in body.get("messages") or ()
        if isinstance(message.get("content"), list)
        for block in message["content"]
    )


@dataclass
class FakeAnthropic(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived."""

    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The root URL: clients append ``/v1/messages``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The provider's endpoints."""
        app.router.add_post("/v1/messages", self._messages)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, body))
        model = str(body.get("model", "plain"))
        behaviour = model.split("~")[0]
        if behaviour.startswith("error-"):
            status = int(behaviour.split("-")[1])
            retry = RATE_LIMIT_HEADERS if status == 429 else None
            payload = error_body(status, f"fake Anthropic error {status}")
            return web.json_response(payload, status=status, headers=retry)
        problem = request_problem(body)
        if behaviour == "image-input" and not _has_image(body):
            problem = "image-input expects an image content block"
        if problem is not None:
            return web.json_response(error_body(400, problem), status=400)
        script = script_for(behaviour, body)
        if body.get("stream"):
            return await _stream(request, model, script)
        return web.json_response(_message(model, script))


def _message(model: str, script: Script, *, started: bool = False) -> dict[str, Any]:
    """The whole message, or as ``message_start`` carries it: empty, with no stop reason
    and one output token counted so far."""
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if started else script.blocks,
        "stop_reason": None if started else script.stop_reason,
        "stop_sequence": None if started else script.stop_sequence,
        "usage": {**script.usage, "output_tokens": 1} if started else script.usage,
    }


def stream_events(model: str, script: Script) -> list[tuple[str, dict[str, Any]]]:
    """The named events of a streamed answer, as Anthropic sends them
    (https://docs.anthropic.com/en/docs/build-with-claude/streaming)."""
    message = _message(model, script, started=True)
    events = [("message_start", {"type": "message_start", "message": message})]
    events.append(("ping", {"type": "ping"}))
    for index, block in enumerate(script.blocks):
        events += _block_events(index, block)
        if model.split("~")[0] == "stream-error":
            error = error_body(529, "Overloaded")
            return [*events, ("error", error)]
    delta = {"stop_reason": script.stop_reason, "stop_sequence": script.stop_sequence}
    usage = {"output_tokens": script.usage["output_tokens"]}
    final = {"type": "message_delta", "delta": delta, "usage": usage}
    events.append(("message_delta", final))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start: dict[str, Any]
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        pieces = [{"type": "text_delta", "text": word} for word in _split_words(block["text"])]
    else:
        start = {**block, "input": {}}
        arguments = json.dumps(block["input"]) if block["input"] else ""
        middle = len(arguments) // 2
        pieces = [
            {"type": "input_json_delta", "partial_json": part}
            for part in dict.fromkeys(("", arguments[:middle], arguments[middle:]))
        ]
    events = [
        ("content_block_start", {"type": "content_block_start", "index": index,
                                 "content_block": start}),
    ]  # fmt: skip
    for piece in pieces:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index,
                                     "delta": piece})
        )  # fmt: skip
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


async def _stream(request: web.Request, model: str, script: Script) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for name, payload in stream_events(model, script):
        await response.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
    await response.write_eof()
    return response
