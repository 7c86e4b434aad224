"""The built-in offline provider: text and PNG images made locally, with no network.

Replies are deterministic for a given conversation, so tests can rely on them; streams are
paced like a real model (a first-token delay, then a delay per token). Its "tokenizer" is
its own: one token per word it emits, so the usage it reports is exact for itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    GeneratedImage,
    ImageCall,
    ImageResult,
    JsonObject,
    ProviderConfig,
    Usage,
)
from vaultgate.providers.png import pattern_png
from vaultgate.providers.tokens import estimate_prompt_tokens

VOCABULARY = tuple(
    (
        "the gateway answers every request locally so you can try streaming keys limits logs "
        "and billing without any provider credentials this offline model writes plain text "
        "at a steady pace and reports exact token usage for each reply it sends back to you"
    ).split()
)

SUPPORTED_PARAMS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens",
        "max_completion_tokens", "stop", "n", "temperature", "top_p", "seed", "user",
        "presence_penalty", "frequency_penalty", "metadata", "store",
    }
)  # fmt: skip


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if isinstance(p, dict)]
                return " ".join(t for t in texts if isinstance(t, str))
    return ""


def compose_reply(messages: list[Any], seed: int) -> list[str]:
    """The reply's tokens (words with their trailing space) for a conversation."""
    prompt = _last_user_text(messages)
    echoed = prompt.split()[:12]
    words = ["You", "said:", *echoed] if echoed else ["Hello!"]
    state = zlib.crc32(prompt.encode()) ^ seed
    length = 24 + state % 40
    for _ in range(length):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        words.append(VOCABULARY[state % len(VOCABULARY)])
    words[-1] += "."
    return [word + " " for word in words[:-1]] + [words[-1]]


def _limit_tokens(body: JsonObject) -> int | None:
    limit = body.get("max_completion_tokens")
    return limit if limit is not None else body.get("max_tokens")


def _apply_limits(tokens: list[str], body: JsonObject) -> tuple[list[str], str]:
    """Cut the reply at a stop sequence or the token limit; return it and the reason."""
    stops = body.get("stop")
    stop_list = [stops] if isinstance(stops, str) else list(stops or [])
    limit = _limit_tokens(body)
    text = ""
    kept: list[str] = []
    for token in tokens:
        if limit is not None and len(kept) >= limit:
            return kept, "length"
        candidate = text + token
        hit = min((candidate.find(s) for s in stop_list if s and s in candidate), default=-1)
        kept.append(token)
        if hit >= 0:
            # The stop sequence may begin inside a token kept earlier: cut there too.
            return _cut_at(kept, hit), "stop"
        text = candidate
    return kept, "stop"


def _cut_at(tokens: list[str], length: int) -> list[str]:
    """The tokens holding the first ``length`` characters of their text."""
    kept: list[str] = []
    used = 0
    for token in tokens:
        if used + len(token) > length:
            if length > used:
                kept.append(token[: length - used])
            break
        kept.append(token)
        used += len(token)
    return kept


class OfflineProvider:
    """Answers chat and image requests without leaving the process."""

    supports_n = True

    def __init__(
        self, config: ProviderConfig, *, token_delay_s: float, first_token_delay_s: float
    ) -> None:
        self.config = config
        self._token_delay = token_delay_s
        self._first_delay = first_token_delay_s

    def unsupported_params(self, body: JsonObject) -> list[str]:
        """Everything outside the plain-text parameters it models."""
        return sorted(key for key in body if key not in SUPPORTED_PARAMS)

    def _choices(self, call: ChatCall) -> list[tuple[list[str], str]]:
        body = call.body
        base_seed = body.get("seed") or 0
        return [
            _apply_limits(compose_reply(body["messages"], base_seed + index), body)
            for index in range(body.get("n") or 1)
        ]

    def _usage(self, call: ChatCall, choices: list[tuple[list[str], str]]) -> Usage:
        prompt = estimate_prompt_tokens(call.body["messages"])
        completion = sum(len(tokens) for tokens, _ in choices)
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    async def chat(self, call: ChatCall) -> ChatResult:
        """The whole reply, after the time a real model would take to write it."""
        choices = self._choices(call)
        longest = max(len(tokens) for tokens, _ in choices)
        await asyncio.sleep(self._first_delay + self._token_delay * longest)
        usage = self._usage(call, choices)
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model_id,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "logprobs": None,
                    "finish_reason": reason,
                }
                for index, (tokens, reason) in enumerate(choices)
            ],
            "usage": usage.as_openai(),
            "system_fingerprint": "vaultgate-offline",
        }
        return ChatResult(body=body, usage=usage)

    async def chat_stream(self, call: ChatCall) -> AsyncIterator[JsonObject]:
        """The reply token by token, then finish reasons, then usage."""
        choices = self._choices(call)
        frame = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.model_id,
            "system_fingerprint": "vaultgate-offline",
        }

        def chunk(index: int, delta: JsonObject, finish: str | None = None) -> JsonObject:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**frame, "choices": [choice]}

        await asyncio.sleep(self._first_delay)
        for index in range(len(choices)):
            yield chunk(index, {"role": "assistant", "content": ""})
        longest = max(len(tokens) for tokens, _ in choices)
        for position in range(longest):
            if position:
                await asyncio.sleep(self._token_delay)
            for index, (tokens, _) in enumerate(choices):
                if position < len(tokens):
                    yield chunk(index, {"content": tokens[position]})
        for index, (_, reason) in enumerate(choices):
            yield chunk(index, {}, reason)
        yield {**frame, "choices": [], "usage": self._usage(call, choices).as_openai()}

    async def images(self, call: ImageCall) -> ImageResult:
        """PNG pictures derived from the prompt, one per requested image."""
        width, height = (int(part) for part in call.size.split("x"))
        seed = zlib.crc32(call.prompt.encode())
        images = []
        for index in range(call.n):
            png = await asyncio.to_thread(pattern_png, width, height, seed + index * 7919)
            images.append(GeneratedImage(png=png, revised_prompt=call.prompt))
        return ImageResult(images=images, created=int(time.time()))

    async def aclose(self) -> None:
        """Nothing to release."""
