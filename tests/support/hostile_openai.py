"""A real HTTP server on 127.0.0.1 that speaks OpenAI's chat format the way a broken or
hostile upstream would: oversized lines and bodies, impossible usage, malformed choices,
absurd ``retry-after`` values and HTML error pages.

The upstream model name selects the behaviour (anything after a ``~`` is ignored):

- ``plain``: a well-formed answer (usage as OpenAI reports it), streamed or not.
- ``huge-line-<n>``: a 200 stream whose first event is one line of n bytes with no line
  end, written in 64 KiB pieces; ``sent`` records how many bytes got out before the
  client closed the connection.
- ``huge-body-<n>``: a 200 JSON answer padded to n bytes, with a Content-Length.
- ``huge-chunked-body-<n>``: the same, chunked (no Content-Length), tracked in ``sent``.
- ``usage-<field>-<value>``: a well-formed answer whose usage field is ``<value>`` (JSON),
  streamed or not; the other usage fields are the plain ones.
- ``choices-empty``: a 200 with ``"choices": []``.
- ``content-number``: a 200 whose message content is the number 5.
- ``chunk-choices-string``: a stream whose second chunk has ``"choices": "nope"``.
- ``retry-after-<value>``: a 429 in OpenAI's shape with that ``retry-after`` header.
- ``html-<status>``: that status with a proxy's HTML error page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

REPLY = "Hostile but polite."
PROMPT_TOKENS = 9
COMPLETION_TOKENS = 4
PIECE = 64 * 1024
HTML_PAGE = (
    """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title>
<style>body { font-family: sans-serif; }</style>
<script>window.location = "https://example.invalid/";</script></head>
<body>
  <center><h1>502   Bad
  Gateway</h1></center>
  <hr><center>nginx &amp; friends</center>
  <p>"""
    + "padding " * 400
    + """</p>
</body></html>
"""
)


@dataclass
class HostileOpenAI(ThreadedServer):
    """Runs the server in a thread; ``sent`` maps a model name to bytes it got out."""

    sent: dict[str, int] = field(default_factory=dict)
    finished: dict[str, bool] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The ``/v1`` base URL VaultGate points at."""
        return f"http://127.0.0.1:{self.port}/v1"

    def add_routes(self, app: web.Application) -> None:
        """OpenAI's chat endpoint."""
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model", "plain"))
        behaviour = model.split("~")[0]
        if behaviour.startswith(("huge-line-", "huge-chunked-body-")):
            return await self._endless(request, model, behaviour)
        if behaviour.startswith("huge-body-"):
            size = int(behaviour.rsplit("-", 1)[1])
            return web.Response(body=_padded(completion(model), size),
                                content_type="application/json")  # fmt: skip
        if behaviour.startswith("retry-after-"):
            value = behaviour.removeprefix("retry-after-")
            error = {"message": "slow down", "type": "requests", "param": None, "code": None}
            return web.json_response({"error": error}, status=429, headers={"retry-after": value})
        if behaviour.startswith("html-"):
            status = int(behaviour.removeprefix("html-"))
            return web.Response(status=status, text=HTML_PAGE, content_type="text/html")
        if body.get("stream"):
            return await _stream(request, model, behaviour)
        return web.json_response(_answer(model, behaviour))

    async def _endless(
        self, request: web.Request, model: str, behaviour: str
    ) -> web.StreamResponse:
        size = int(behaviour.rsplit("-", 1)[1])
        streamed = behaviour.startswith("huge-line-")
        content_type = "text/event-stream" if streamed else "application/json"
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        self.sent[model], self.finished[model] = 0, False
        first = b'data: {"pad": "' if streamed else b'{"pad": "'
        try:
            await response.write(first)
            while self.sent[model] < size:
                await response.write(b"a" * PIECE)
                self.sent[model] += PIECE
        except (ConnectionError, RuntimeError):
            return response
        self.finished[model] = True
        return response


def usage(**changes: Any) -> dict[str, Any]:
    """The usage of the plain answer, with ``changes`` applied."""
    plain: dict[str, Any] = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    return {**plain, **changes}


def _usage_for(behaviour: str) -> dict[str, Any]:
    if not behaviour.startswith("usage-"):
        return usage()
    _, name, value = behaviour.split("-", 2)
    return usage(**{f"{name}_tokens": json.loads(value)})


def completion(model: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chat completion of the plain reply (or ``message``)."""
    message = message or {"role": "assistant", "content": REPLY}
    return {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": usage(),
    }  # fmt: skip


def _answer(model: str, behaviour: str) -> dict[str, Any]:
    payload = completion(model)
    if behaviour == "choices-empty":
        payload["choices"] = []
    elif behaviour == "content-number":
        payload["choices"][0]["message"]["content"] = 5
    payload["usage"] = _usage_for(behaviour)
    return payload


def _padded(payload: dict[str, Any], size: int) -> bytes:
    """``payload`` as JSON with a ``pad`` field that brings it to ``size`` bytes."""
    raw = json.dumps({**payload, "pad": ""}).encode()
    return json.dumps({**payload, "pad": "x" * max(size - len(raw), 0)}).encode()


async def _stream(request: web.Request, model: str, behaviour: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    frame = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1,
             "model": model}  # fmt: skip

    async def send(choices: Any, **extra: Any) -> None:
        payload = {**frame, "choices": choices, **extra}
        await response.write(f"data: {json.dumps(payload)}\n\n".encode())

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "finish_reason": finish}]

    await send(choice({"role": "assistant", "content": ""}))
    if behaviour == "chunk-choices-string":
        await send("nope")
    await send(choice({"content": REPLY}))
    await send(choice({}, "stop"))
    await send([], usage=_usage_for(behaviour))
    await response.write(b"data: [DONE]\n\n")
    return response
