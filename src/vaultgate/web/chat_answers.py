"""Answering in a chat conversation through the gateway, and storing the turn.

A text answer is the gateway's own event stream, passed to the browser as it comes; on the
way it is tallied so that, when it ends (or the browser stops it), the question and the
answer are stored with the answer's model, tokens, cost and request id. The stored turn is
written before the stream's last byte, so a page loaded right after it finished shows it.
An image answer is the gateway's image response, stored with its images.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vaultgate.gateway.chat import estimate_completion_usage
from vaultgate.providers.base import JsonObject, Usage, usage_from_openai
from vaultgate.providers.sse import SseParser
from vaultgate.web.chat_store import ChatMessage, NewMessage

STOPPED = "stopped"
FAILED = "error"


@dataclass
class StreamTally:
    """What an OpenAI chat stream said so far: text, finish reason, usage, error."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    error: str | None = None
    _parser: SseParser = field(default_factory=SseParser)

    def feed(self, data: bytes) -> None:
        """Read the events completed by ``data``."""
        for event in self._parser.feed(data):
            if event.data == "[DONE]":
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(chunk, dict):
                self._read(chunk)

    def _read(self, chunk: JsonObject) -> None:
        error = chunk.get("error")
        if isinstance(error, dict):
            self.error = str(error.get("message") or "the stream failed")
        self.usage = usage_from_openai(chunk.get("usage")) or self.usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                self.text += delta["content"]
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])


def openai_messages(history: Sequence[ChatMessage | NewMessage]) -> list[JsonObject]:
    """The conversation as chat-completion messages; image-only answers are left out."""
    return [{"role": m.role, "content": m.content} for m in history if m.content]


def title_header(title: str | None) -> dict[str, str]:
    """The new title of a conversation for the page's script (percent-encoded UTF-8)."""
    return {"x-chat-title": urllib.parse.quote(title)} if title else {}


Finish = Callable[[StreamTally, bool], Awaitable[None]]


class RecordedStream:
    """Passes an event-stream ASGI app through, tallying it, and calls ``finish`` once:
    before the last body message, or after the app returns when the client went away."""

    def __init__(self, app: ASGIApp, finish: Finish, headers: dict[str, str]) -> None:
        self._app = app
        self._finish = finish
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the exchange."""
        tally = StreamTally()
        done = False

        async def watch(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._headers]
            elif message["type"] == "http.response.body":
                tally.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    done = True
                    await self._finish(tally, False)
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            if not done:
                await self._finish(tally, True)


def text_answer(
    tally: StreamTally,
    stopped: bool,
    *,
    model_id: str,
    body: JsonObject,
    request_id: str,
    cost: Callable[[Usage], int],
) -> NewMessage:
    """The assistant turn a finished (or stopped) stream makes; usage the provider did not
    report is counted locally, as the gateway counts it for billing."""
    usage = tally.usage or estimate_completion_usage(body, tally.text)
    if stopped:
        reason: str | None = STOPPED
    elif tally.error:
        reason = FAILED
    else:
        reason = tally.finish_reason
    return NewMessage(
        role="assistant", content=tally.text, created_at=dt.datetime.now(dt.UTC),
        model=model_id, prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens, cost_micros=cost(usage),
        request_id=request_id, finish_reason=reason,
    )  # fmt: skip


def image_answer(result: Any, *, model_id: str, request_id: str, unit_price: int) -> NewMessage:
    """The assistant turn an image response makes: its images, and links for images that
    came only as links."""
    data = result.get("data") if isinstance(result, dict) else None
    items = [item for item in data or () if isinstance(item, dict)]
    pngs = [str(item["b64_json"]) for item in items if item.get("b64_json")]
    links = [str(item["url"]) for item in items if item.get("url") and not item.get("b64_json")]
    return NewMessage(
        role="assistant", content="\n\n".join(f"[Generated image]({url})" for url in links),
        created_at=dt.datetime.now(dt.UTC), model=model_id, images=pngs,
        cost_micros=unit_price * len(items), request_id=request_id, finish_reason="stop",
    )  # fmt: skip
