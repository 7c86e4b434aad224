"""POST /v1/chat/completions: streamed and not."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vaultgate.accounts.keys import KeyRecord
from vaultgate.errors import UpstreamError, VaultGateError
from vaultgate.gateway.admission import Admission, admit_chat, plausible_usage
from vaultgate.gateway.context import GatewayState, KeyLoader, RequestTrace, bearer_token
from vaultgate.gateway.responses import (
    EventStreamResponse,
    JsonBody,
    JsonResponse,
    error_response,
    read_json_body,
)
from vaultgate.gateway.validation import validate_chat
from vaultgate.providers import fanout
from vaultgate.providers.base import (
    ChatCall,
    JsonObject,
    Provider,
    Usage,
    usage_from_openai,
)
from vaultgate.providers.catalog import Deployment, ModelEntry
from vaultgate.providers.sse import DONE_LINE, encode_event
from vaultgate.providers.tokens import estimate_prompt_tokens, estimate_text_tokens

log = logging.getLogger("vaultgate.gateway")

CLIENT_CLOSED_STATUS = 499


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    """Validate, authorise, route and answer one chat request sent with a bearer key."""
    state: GatewayState = request.app.state.gateway
    token = bearer_token(request)

    async def load_key() -> KeyRecord:
        return await state.keys.authenticate(token)

    async def read_body() -> JsonBody:
        settings = state.settings
        return await read_json_body(
            request, settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
        )

    trace = RequestTrace(endpoint="chat")
    return await serve_chat(state, trace, load_key=load_key, read_body=read_body)


async def serve_chat(
    state: GatewayState,
    trace: RequestTrace,
    *,
    load_key: KeyLoader,
    read_body: Callable[[], Awaitable[Any]],
) -> Response | EventStreamResponse:
    """Answer one chat request for the key ``load_key`` finds (and finds again when the key
    changed meanwhile): /v1 finds it by bearer token, the playground by id. ``read_body``
    returns the parsed body, or a ``JsonBody`` that also tells the size it arrived in."""
    try:
        trace.key = await load_key()
        body = await read_body()
        body, body_bytes = (body.value, body.size) if isinstance(body, JsonBody) else (body, None)
        model_id = validate_chat(body)
        trace.model = model_id
        trace.stream = bool(body.get("stream"))

        async def admit(key: KeyRecord) -> tuple[ModelEntry, Admission]:
            model = state.resolve_model(model_id, key, endpoint="chat")
            admitted = await admit_chat(
                state.holds, state.limiter, key, model, body,
                request_id=trace.request_id, body_bytes=body_bytes,
            )  # fmt: skip
            return model, admitted

        model, admission = await state.admit_fresh(trace, load_key, admit)
        trace.hold = admission.hold
        trace.extra_headers.update(admission.headers)
        trace.prices = model.pricing.token_snapshot()
        if trace.stream:
            return await _stream(state, trace, model, body)
        return await _complete(state, trace, model, body)
    except VaultGateError as error:
        trace.finish(state, status=error.status, error=error)
        return error_response(error, trace.headers())
    except BaseException:
        # Whatever happens, a hold taken for this request must be settled (released).
        trace.finish(state, status=500, error="internal error")
        raise


def _prepare(provider: Provider, body: JsonObject) -> tuple[JsonObject, list[str]]:
    """The body without the parameters this provider cannot honour, and their names."""
    dropped = provider.unsupported_params(body)
    if not dropped:
        return body, []
    return {k: v for k, v in body.items() if k not in dropped}, dropped


def _warning_headers(dropped: list[str]) -> dict[str, str]:
    if not dropped:
        return {}
    return {"x-vaultgate-warning": "dropped unsupported parameters: " + ", ".join(dropped)}


def _call(
    model: ModelEntry, deployment: Deployment, provider: Provider, body: JsonObject
) -> ChatCall:
    return ChatCall(model.id, deployment.upstream, body, provider.config, model.max_output_tokens)


def estimate_completion_usage(body: JsonObject, completion_text: str) -> Usage:
    """Usage counted locally, for providers that report none."""
    return Usage(
        prompt_tokens=estimate_prompt_tokens(body["messages"], body.get("tools")),
        completion_tokens=estimate_text_tokens(completion_text),
        estimated=True,
    )


def _message_text(result_body: JsonObject) -> str:
    parts = []
    for choice in result_body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            parts.append(str(message.get("content") or ""))
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    parts.append(str((call.get("function") or {}).get("arguments", "")))
    return "".join(parts)


async def _complete(
    state: GatewayState, trace: RequestTrace, model: ModelEntry, body: JsonObject
) -> Response:
    dropped: list[str] = []

    async def attempt(provider: Provider, deployment: Deployment) -> Any:
        nonlocal dropped
        prepared, dropped = _prepare(provider, body)
        return await fanout.chat(provider, _call(model, deployment, provider, prepared))

    result = await state.router.call(model, trace, attempt)
    reported = plausible_usage(result.usage, trace.hold)
    usage = reported or estimate_completion_usage(body, _message_text(result.body))
    if reported is None:
        result.body["usage"] = usage.as_openai()
    cost = model.pricing.token_cost(usage)
    trace.mark_first_byte()
    trace.finish(state, status=200, usage=usage, cost_micros=cost)
    headers = {**trace.headers(), **_warning_headers(dropped)}
    return JsonResponse(result.body, headers=headers)


async def _stream(
    state: GatewayState, trace: RequestTrace, model: ModelEntry, body: JsonObject
) -> EventStreamResponse:
    """Open the upstream stream and wait for its first chunk before answering.

    Until the first chunk arrives nothing has been sent, so a failure can still move to
    another deployment and reach the client as a proper HTTP error.
    """
    dropped: list[str] = []

    async def attempt(
        provider: Provider, deployment: Deployment
    ) -> tuple[AsyncIterator[JsonObject], list[JsonObject]]:
        nonlocal dropped
        prepared, dropped = _prepare(provider, body)
        chunks = fanout.chat_stream(provider, _call(model, deployment, provider, prepared))
        try:
            held = await _hold_until_content(chunks)
        except BaseException:
            await _close(chunks)
            raise
        if not held:
            raise UpstreamError(f"{deployment.provider} sent an empty stream")
        return chunks, held

    upstream, held = await state.router.call(model, trace, attempt)
    pipeline = StreamPipeline(state, trace, model, body)
    headers = {**trace.headers(), **_warning_headers(dropped)}
    return EventStreamResponse(pipeline.run(upstream, held), headers)


def _carries_content(chunk: JsonObject) -> bool:
    """Whether a chunk holds more than preamble (a role-only delta, say)."""
    if chunk.get("usage") is not None:
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason") is not None:
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(
            delta.get(field) for field in ("content", "tool_calls", "function_call", "refusal")
        ):
            return True
    return False


async def _hold_until_content(chunks: AsyncIterator[JsonObject]) -> list[JsonObject]:
    """Read up to the first chunk with content; what comes before it is held back so that
    a failure right after a role-only preamble can still move to another deployment."""
    held: list[JsonObject] = []
    async for chunk in chunks:
        held.append(chunk)
        if _carries_content(chunk):
            break
    return held


async def _close(chunks: AsyncIterator[JsonObject]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


class StreamPipeline:
    """Forwards upstream chunks to the client as SSE, tracking usage on the way.

    The client sees OpenAI's stream: chunks as they arrive, the usage chunk only when it
    asked for one (synthesised from local counts when the provider sent none), then
    ``[DONE]`` exactly once. An upstream failure after the first byte ends the stream with
    an OpenAI-shaped error event and no ``[DONE]``.
    """

    def __init__(
        self, state: GatewayState, trace: RequestTrace, model: ModelEntry, body: JsonObject
    ) -> None:
        self._state = state
        self._trace = trace
        self._model = model
        self._body = body
        options = body.get("stream_options") or {}
        self._client_wants_usage = bool(options.get("include_usage"))
        self._reported: Usage | None = None
        self._finished = False
        self._text: list[str] = []
        self._frame: JsonObject = {}

    def _observe(self, chunk: JsonObject) -> JsonObject | None:
        """Record what billing needs; return the chunk to forward, or None to hold it."""
        if not self._frame:
            self._frame = {k: chunk[k] for k in ("id", "created") if k in chunk}
        usage = chunk.get("usage")
        if usage is not None:
            self._reported = usage_from_openai(usage) or self._reported
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                self._finished = True
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str):
                    self._text.append(content)
                for call in delta.get("tool_calls") or ():
                    if isinstance(call, dict):
                        self._text.append(str((call.get("function") or {}).get("arguments", "")))
        if not chunk.get("choices") and usage is not None:
            return None
        if not self._client_wants_usage:
            chunk.pop("usage", None)
        return chunk

    def usage(self) -> Usage:
        """What the provider reported (when plausible), or a local count of what was
        streamed."""
        reported = plausible_usage(self._reported, self._trace.hold)
        if reported is not None:
            return reported
        return estimate_completion_usage(self._body, "".join(self._text))

    def _usage_chunk(self, usage: Usage) -> JsonObject:
        return {
            "id": self._frame.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._frame.get("created") or int(time.time()),
            "model": self._model.id,
            "choices": [],
            "usage": usage.as_openai(),
        }

    async def run(
        self, upstream: AsyncIterator[JsonObject], held: list[JsonObject]
    ) -> AsyncGenerator[bytes, None]:
        """The client's byte stream."""
        state, trace = self._state, self._trace
        status: int = 200
        error: VaultGateError | str | None = None
        try:
            for chunk in held:
                forwarded = self._observe(chunk)
                if forwarded is not None:
                    trace.mark_first_byte()
                    yield encode_event(forwarded)
            async for chunk in upstream:
                forwarded = self._observe(chunk)
                if forwarded is not None:
                    trace.mark_first_byte()
                    yield encode_event(forwarded)
            if not self._finished:
                # A stream that simply stops, with no finish reason, was cut short.
                raise UpstreamError(f"{trace.provider} ended the stream before finishing")
            if self._client_wants_usage:
                yield encode_event(self._usage_chunk(self.usage()))
            yield DONE_LINE
        except VaultGateError as failure:
            status, error = failure.status, failure
            log.warning(
                "stream failed after first byte",
                extra={"fields": {"request_id": trace.request_id, "error": failure.message}},
            )
            yield failure.json_bytes().join((b"data: ", b"\n\n"))
        except (asyncio.CancelledError, GeneratorExit):
            status, error = CLIENT_CLOSED_STATUS, "client disconnected"
            log.warning(
                "client disconnected",
                extra={
                    "fields": {
                        "request_id": trace.request_id,
                        "latency_ms": trace_latency_ms(trace),
                    }
                },
            )
            raise
        finally:
            await _close(upstream)
            usage = self.usage()
            cost = self._model.pricing.token_cost(usage)
            trace.finish(state, status=status, usage=usage, cost_micros=cost, error=error)


def trace_latency_ms(trace: RequestTrace) -> int:
    """Milliseconds since the request started."""
    return int((time.perf_counter() - trace.started) * 1000)
