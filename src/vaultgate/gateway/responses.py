"""Reading request bodies and writing JSON, error and event-stream responses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vaultgate.errors import (
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    VaultGateError,
    retry_after_seconds,
)


class JsonResponse(Response):
    """A JSON response serialised with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return orjson.dumps(content)


def error_response(error: VaultGateError, headers: Mapping[str, str] | None = None) -> Response:
    """The OpenAI-shaped error body with the error's status and headers (``retry-after``
    as whole seconds within ``MAX_RETRY_AFTER_S``, however it was set)."""
    merged = {**error.headers, **(headers or {})}
    for name in [name for name in merged if name.lower() == "retry-after"]:
        seconds = retry_after_seconds(merged.pop(name))
        if seconds is not None:
            merged["retry-after"] = str(seconds)
    return Response(
        error.json_bytes(), status_code=error.status, headers=merged,
        media_type="application/json",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A parsed request body and the number of bytes it arrived in."""

    value: Any
    size: int


async def read_json(request: Request, max_bytes: int, *, timeout_s: float | None = None) -> Any:
    """The parsed JSON body; see ``read_json_body``."""
    return (await read_json_body(request, max_bytes, timeout_s=timeout_s)).value


async def read_json_body(
    request: Request, max_bytes: int, *, timeout_s: float | None = None
) -> JsonBody:
    """The parsed JSON body and its size: 413 past ``max_bytes``, 408 when it takes longer
    than ``timeout_s`` to arrive, 415 when it is compressed or otherwise encoded, 400 when
    it is not JSON."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding '{encoding[:40]}' is not supported; send the JSON body "
            "uncompressed.",
            code="unsupported_content_encoding",
        )
    try:
        async with asyncio.timeout(timeout_s):
            raw = await _read_raw(request, max_bytes)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout_s:g} seconds.",
            headers={"connection": "close"},
        ) from None
    return JsonBody(_parse_json(raw), len(raw))


async def _read_raw(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"Request body is larger than {max_bytes} bytes.")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"Request body is larger than {max_bytes} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise InvalidRequest("The client closed the connection while sending.") from None
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}).",
            code="invalid_json",
        ) from None


class EventStreamResponse:
    """An SSE response that stops its source the moment the client goes away.

    The body generator runs in one task while another waits for ``http.disconnect``; when
    the client leaves first, the body task is cancelled, which closes the upstream request
    inside the generator at once rather than when the next chunk fails to send.
    """

    def __init__(self, body: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        self._body = body
        raw = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the ASGI exchange."""
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(_wait_for_disconnect(receive))
        try:
            _done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                if not task.done():
                    task.cancel()
            for task in (pump, watch):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task

    async def _pump(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            async for data in self._body:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._body.aclose()


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
