"""Several choices (OpenAI's ``n``) from providers that answer one choice per request.

A provider whose ``supports_n`` is False is asked ``n`` times at once, each call without
``n``, and the answers are merged into one:

- a complete answer has the calls' choices indexed 0..n-1 under the first call's id, and
  their usage summed: the prompt is counted once per call, as each call is billed upstream;
- a stream interleaves the calls' chunks as they arrive, each chunk's choice index set to
  its call's position and its id to the first call's; every index starts with its role and
  ends with its own finish reason; the calls' usage chunks are held back and summed into
  one usage chunk at the end; a failure in any call ends the whole stream with it.

Usage is summed only when every call reported it; otherwise none is given and the gateway
counts tokens itself, as for any provider that reports none. Providers that answer ``n``
themselves are called directly, with nothing in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import (
    ChatCall,
    ChatResult,
    JsonObject,
    Provider,
    Usage,
    usage_from_openai,
)

# More concurrent calls than this for one request would be a burst no provider welcomes.
MAX_FANOUT = 16

T = TypeVar("T")


def choice_count(body: JsonObject) -> int:
    """The ``n`` of a chat body (1 when absent)."""
    n = body.get("n")
    return n if isinstance(n, int) and n > 1 else 1


def fans_out(provider: Provider, body: JsonObject) -> bool:
    """Whether answering ``body`` takes several calls to ``provider``."""
    return not provider.supports_n and choice_count(body) > 1


def _single(call: ChatCall) -> ChatCall:
    """The call asking for one choice; a refused ``n`` above the bound raises here."""
    if choice_count(call.body) > MAX_FANOUT:
        raise UpstreamError(
            f"{call.provider.name} answers one choice per request; "
            f"n is limited to {MAX_FANOUT} for it",
            status=400, error_type="invalid_request_error", code="unsupported_parameter",
            param="n", retryable=False,
        )  # fmt: skip
    return replace(call, body={k: v for k, v in call.body.items() if k != "n"})


def sum_usage(usages: Sequence[Usage | None]) -> Usage | None:
    """The calls' usage added up; None unless every call reported its own."""
    if not usages or any(usage is None for usage in usages):
        return None
    known = [usage for usage in usages if usage is not None]
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in known),
        completion_tokens=sum(u.completion_tokens for u in known),
        cached_tokens=sum(u.cached_tokens for u in known),
        reasoning_tokens=sum(u.reasoning_tokens for u in known),
    )


def merge_results(results: Sequence[ChatResult]) -> ChatResult:
    """One ``chat.completion`` holding each result's choice, indexed by position."""
    choices = [
        {**choice, "index": position}
        for position, result in enumerate(results)
        for choice in (result.body.get("choices") or ())[:1]
    ]
    body = {**results[0].body, "choices": choices}
    usage = sum_usage([result.usage for result in results])
    body.pop("usage", None)
    if usage is not None:
        body["usage"] = usage.as_openai()
    return ChatResult(body=body, usage=usage, headers=results[0].headers)


async def _all_or_first_failure(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the calls at once; the first failure cancels the others and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def chat(provider: Provider, call: ChatCall) -> ChatResult:
    """The provider's answer, with ``n`` choices however many calls that takes."""
    if not fans_out(provider, call.body):
        return await provider.chat(call)
    single = _single(call)
    results = await _all_or_first_failure(
        [provider.chat(single) for _ in range(choice_count(call.body))]
    )
    return merge_results(results)


def chat_stream(provider: Provider, call: ChatCall) -> AsyncIterator[JsonObject]:
    """The provider's stream, or the merged streams of ``n`` calls."""
    if not fans_out(provider, call.body):
        return provider.chat_stream(call)
    return _merged_stream(provider, _single(call), choice_count(call.body))


class StreamMerger:
    """Rewrites the chunks of ``n`` one-choice streams into one ``n``-choice stream."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._frame: JsonObject = {}
        self._started: set[int] = set()
        self._usage: dict[int, Usage | None] = {}

    def rewrite(self, position: int, chunk: JsonObject) -> JsonObject | None:
        """The chunk as the merged stream carries it; None when it only held usage."""
        if not self._frame:
            self._frame = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
        if chunk.get("usage") is not None:
            self._usage[position] = usage_from_openai(chunk.pop("usage"))
        choices = chunk.get("choices") or []
        if not choices:
            return None
        for choice in choices:
            choice["index"] = position
            if position not in self._started:
                self._started.add(position)
                choice["delta"] = {"role": "assistant", **(choice.get("delta") or {})}
        if "id" in self._frame:
            chunk["id"] = self._frame["id"]
        return chunk

    def usage_chunk(self) -> JsonObject | None:
        """The summed usage, once every stream has ended; None unless each reported."""
        usage = sum_usage([self._usage.get(position) for position in range(self._n)])
        if usage is None:
            return None
        return {**self._frame, "choices": [], "usage": usage.as_openai()}


# What one stream sends to the merged stream: a chunk, or None when it has ended.
Arrival = tuple[int, JsonObject | None]


async def _pump(
    stream: AsyncIterator[JsonObject], position: int, queue: asyncio.Queue[Arrival]
) -> None:
    """Forward one stream's chunks; its end is always announced, failure or not."""
    try:
        async for chunk in stream:
            queue.put_nowait((position, chunk))
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
        queue.put_nowait((position, None))


async def _merged_stream(
    provider: Provider, single: ChatCall, n: int
) -> AsyncIterator[JsonObject]:
    # The queue is unbounded: what it can hold is bounded by the answers' own length.
    queue: asyncio.Queue[Arrival] = asyncio.Queue()
    tasks = [
        asyncio.create_task(_pump(provider.chat_stream(single), position, queue))
        for position in range(n)
    ]
    merger = StreamMerger(n)
    try:
        running = n
        while running:
            position, item = await queue.get()
            if item is None:
                running -= 1
                await tasks[position]  # raises the stream's failure, if it had one
                continue
            chunk = merger.rewrite(position, item)
            if chunk is not None:
                yield chunk
        final = merger.usage_chunk()
        if final is not None:
            yield final
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
