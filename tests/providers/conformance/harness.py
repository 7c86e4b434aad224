"""What the cases share: building calls, running them streamed or not, and reading both
kinds of answer into one shape while checking the stream's own rules."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tests.providers.conformance.protocol import AnyTarget, FakeServer, Sent, ToolUse
from vaultgate.providers import fanout
from vaultgate.providers.base import ChatCall, JsonObject, Provider, Usage, usage_from_openai

# The output limit the catalog gives every model the cases call.
MODEL_LIMIT = 2048


@dataclass
class Choice:
    """One choice of an answer, streamed or not."""

    content: str | None
    finish_reason: str | None
    tool_calls: list[ToolUse] = field(default_factory=list)


@dataclass
class Answer:
    """An answer in one shape, whichever way it came."""

    choices: list[Choice]
    usage: Usage | None
    chunks: list[JsonObject] = field(default_factory=list)


@dataclass
class Harness:
    """One target's adapter on its running fake; ``stream`` picks how answers come."""

    target: AnyTarget
    server: FakeServer
    provider: Provider
    stream: bool

    def call(self, scenario: str, **body: Any) -> ChatCall:
        """A call for ``scenario`` with a default conversation; ``body`` adds to it."""
        model_id = f"conformance-{scenario}-text"
        upstream = self.target.upstream(scenario, uuid.uuid4().hex[:12])
        full: JsonObject = {
            "model": model_id,
            "messages": [{"role": "user", "content": "hi"}],
            **body,
        }
        if self.stream:
            full["stream"] = True
            full["stream_options"] = {"include_usage": True}
        return ChatCall(model_id, upstream, full, self.provider.config, MODEL_LIMIT)

    def sent(self, call: ChatCall) -> Sent:
        """What the provider received for ``call``."""
        sent = self.target.received(self.server, call.upstream_model)
        assert sent.stream is self.stream
        return sent

    async def run(self, call: ChatCall, *, into: list[JsonObject] | None = None) -> Answer:
        """The answer, through the gateway's entry point (which fans ``n`` out where the
        provider needs it); streamed chunks are also appended to ``into`` as they come."""
        if not self.stream:
            result = await fanout.chat(self.provider, call)
            return read_completion(call, result.body, result.usage)
        chunks = [] if into is None else into
        await _drain(fanout.chat_stream(self.provider, call), chunks)
        return read_chunks(call, chunks)


async def _drain(stream: AsyncIterator[JsonObject], into: list[JsonObject]) -> None:
    async for chunk in stream:
        into.append(chunk)


def _tool_use(raw: JsonObject) -> ToolUse:
    assert raw["type"] == "function"
    return ToolUse(raw["id"], raw["function"]["name"], json.loads(raw["function"]["arguments"]))


def read_completion(call: ChatCall, body: JsonObject, usage: Usage | None) -> Answer:
    """A ``chat.completion`` body, checked for OpenAI's shape."""
    assert body["object"] == "chat.completion"
    assert body["model"] == call.model_id
    assert isinstance(body["id"], str)
    assert body["id"]
    assert [c["index"] for c in body["choices"]] == list(range(len(body["choices"])))
    if usage is not None:
        assert usage_from_openai(body["usage"]) == usage
        assert body["usage"]["total_tokens"] == usage.total_tokens
    choices = [
        Choice(
            content=c["message"]["content"],
            finish_reason=c["finish_reason"],
            tool_calls=[_tool_use(t) for t in c["message"].get("tool_calls") or ()],
        )
        for c in body["choices"]
    ]
    for choice in body["choices"]:
        assert choice["message"]["role"] == "assistant"
    return Answer(choices, usage)


@dataclass
class _Assembly:
    """One streamed choice being put together."""

    content: list[str] = field(default_factory=list)
    finishes: list[str] = field(default_factory=list)
    calls: dict[int, JsonObject] = field(default_factory=dict)

    def add(self, delta: JsonObject, finish: str | None) -> None:
        assert not self.finishes, "a delta came after this choice's finish reason"
        if delta.get("content"):
            self.content.append(delta["content"])
        for piece in delta.get("tool_calls") or ():
            self._add_call(piece)
        if finish is not None:
            self.finishes.append(finish)

    def _add_call(self, piece: JsonObject) -> None:
        function = piece.get("function") or {}
        if piece["index"] not in self.calls:
            # A call's first piece names it: id, type and function name.
            assert piece["id"], "the first piece of a tool call carries its id"
            assert function["name"]
            self.calls[piece["index"]] = {
                "id": piece["id"], "type": piece.get("type", "function"),
                "function": {"name": function["name"], "arguments": ""},
            }  # fmt: skip
        else:
            assert piece.get("id") in (None, self.calls[piece["index"]]["id"])
        self.calls[piece["index"]]["function"]["arguments"] += function.get("arguments") or ""

    def choice(self) -> Choice:
        assert len(self.finishes) == 1, f"finish reasons {self.finishes}"
        calls = [_tool_use(self.calls[i]) for i in sorted(self.calls)]
        assert sorted(self.calls) == list(range(len(self.calls))), "tool calls index from 0"
        content = "".join(self.content) if self.content or not calls else None
        return Choice(content, self.finishes[0], calls)


def read_chunks(call: ChatCall, chunks: list[JsonObject]) -> Answer:
    """A stream's chunks, checked for OpenAI's stream rules: one id; each choice starts
    with its role and finishes exactly once; usage only in chunks without choices."""
    assert chunks, "an empty stream"
    assert len({chunk["id"] for chunk in chunks}) == 1, "one id for the whole stream"
    choices: dict[int, _Assembly] = {}
    usage: Usage | None = None
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == call.model_id
        if chunk.get("usage") is not None:
            assert chunk["choices"] == [], "usage comes in a chunk of its own"
            usage = usage_from_openai(chunk["usage"])
        for raw in chunk["choices"]:
            if raw["index"] not in choices:
                assert raw["delta"].get("role") == "assistant", "a choice starts with its role"
                choices[raw["index"]] = _Assembly()
            choices[raw["index"]].add(raw["delta"], raw.get("finish_reason"))
    assert sorted(choices) == list(range(len(choices)))
    return Answer([choices[i].choice() for i in sorted(choices)], usage, chunks)
