"""A real HTTP server that speaks OpenAI's chat and images wire format, with switchable
quirks of real OpenAI-compatible servers, for adapter and end-to-end tests.

The upstream model name selects the behaviour:

- ``plain``: a well-behaved OpenAI server (usage in streams when asked).
- ``no-usage``: never reports usage, streamed or not (many local servers).
- ``comments``: SSE comment and keep-alive lines, CRLF line ends, events split across writes.
- ``error-<status>``: answers that HTTP status with an OpenAI-shaped error.
- ``text-error-<status>``: answers that status with a plain-text body.
- ``detail-error-<status>``: answers that status with ``{"detail": "..."}``.
- ``client-error-as-500``: a 500 whose body says it is an invalid request (llama.cpp style).
- ``stream-error-after-<n>``: streams n content chunks, then an error event.
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


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


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
        echoed = _echo_key_answer(model, request.headers.get("Authorization", ""))
        if echoed is not None:
            return echoed
        early = await _early_answer(model)
        if early is not None:
            return early
        if body.get("stream"):
            return await _stream(request, body, model)
        usage = None if model == "no-usage" else _usage(model)
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(REPLY_WORDS)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        if usage:
            payload["usage"] = usage
        return web.json_response(payload)

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


def _usage(model: str) -> dict[str, Any]:
    prompt, completion = 11, len(REPLY_WORDS)
    if model.startswith("usage-"):
        _, prompt_text, completion_text = model.split("-")
        prompt, completion = int(prompt_text), int(completion_text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _error(status: int, message: str, kind: str = "server_error") -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(payload, status=status)


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
        headers = {"retry-after": "7"} if status == 429 else None
        response = _error(status, f"fake upstream error {status}", kind)
        if headers:
            response.headers.update(headers)
        return response
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


async def _stream(request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    crlf = model == "comments"
    end = "\r\n\r\n" if crlf else "\n\n"

    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}{end}".encode()

    frame = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
    }
    limit = len(REPLY_WORDS)
    failure = None
    if model == "echo-key-stream":
        limit, failure = 1, "echo"
    elif model.startswith(("stream-error-after-", "cut-after-")):
        limit = int(model.rsplit("-", 1)[1])
        failure = "error" if model.startswith("stream-error") else "cut"
    if crlf:
        await response.write(b": keep-alive\r\n\r\n")
    role = {
        **frame,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
    }
    await response.write(event(role))
    for word in REPLY_WORDS[:limit]:
        chunk = {
            **frame,
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
        }
        data = event(chunk)
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
    final = {**frame, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    await response.write(event(final))
    options = body.get("stream_options") or {}
    if options.get("include_usage") and model != "no-usage":
        await response.write(event({**frame, "choices": [], "usage": _usage(model)}))
    await response.write(f"data: [DONE]{end}".encode())
    return response
