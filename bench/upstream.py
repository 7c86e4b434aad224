"""A fast local OpenAI-compatible upstream for the benchmark.

``python bench/upstream.py --port 8199 --chunks 20`` answers ``POST /v1/chat/completions``
(and ``/chat/completions``) on 127.0.0.1 with a fixed completion, as JSON or as an SSE
stream of ``--chunks`` content chunks, with usage. Every response is rendered once at
start-up; a request costs one header parse, one small JSON parse and one socket write, so
the upstream stays far cheaper than anything it is measured against.

It is a bare asyncio protocol on uvloop with httptools, with HTTP/1.1 keep-alive and no
artificial delay unless ``--chunk-delay-ms`` is given (then each stream event is written
on its own, that many milliseconds apart).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from typing import Any, cast

import httptools
import orjson
import uvloop

COMPLETION_TEXT = "Hello there, this is a benchmark answer of about twenty tokens long. " * 2
PROMPT_TOKENS = 24


def _words(chunks: int) -> list[str]:
    """The completion cut into ``chunks`` pieces that join back to the text."""
    words = COMPLETION_TEXT.split(" ")
    pieces = [" ".join(words[i::chunks]) for i in range(chunks)]
    return [piece + " " for piece in pieces if piece] or [COMPLETION_TEXT]


def completion_body(chunks: int) -> bytes:
    """The non-streamed ``chat.completion``."""
    text = "".join(_words(chunks))
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "bench-upstream",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": chunks,
                "total_tokens": PROMPT_TOKENS + chunks,
            },
        }
    )


def _chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "bench-upstream",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def stream_events(chunks: int, *, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed completion, ``[DONE]`` included."""
    pieces = _words(chunks)
    payloads = [_chunk({"role": "assistant", "content": ""}, None)]
    payloads += [_chunk({"content": piece}, None) for piece in pieces]
    payloads.append(_chunk({}, "stop"))
    if include_usage:
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": len(pieces),
            "total_tokens": PROMPT_TOKENS + len(pieces),
        }
        payloads.append({**_chunk({}, None), "choices": [], "usage": usage})
    events = [b"data: " + orjson.dumps(p) + b"\n\n" for p in payloads]
    return [*events, b"data: [DONE]\n\n"]


def http_chunk(data: bytes) -> bytes:
    """One chunk of a chunked transfer encoding."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class Responses:
    """Every response the upstream can give, rendered once."""

    def __init__(self, chunks: int) -> None:
        body = completion_body(chunks)
        self.json = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        self.stream_parts: dict[bool, list[bytes]] = {}
        for usage in (False, True):
            parts = [http_chunk(e) for e in stream_events(chunks, include_usage=usage)]
            self.stream_parts[usage] = [head + parts[0], *parts[1:], b"0\r\n\r\n"]
        self.stream_whole = {k: b"".join(v) for k, v in self.stream_parts.items()}
        body = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
        self.not_found = b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order."""

    def __init__(self, responses: Responses, chunk_delay_s: float) -> None:
        self._responses = responses
        self._delay = chunk_delay_s
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; a malformed request closes the connection."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        """httptools callback."""
        self._url += url

    def on_body(self, body: bytes) -> None:
        """httptools callback."""
        self._body.append(body)

    def on_message_complete(self) -> None:
        """Answer the request that just finished."""
        url, body = self._url, b"".join(self._body)
        self._url, self._body = b"", []
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not url.endswith(b"/chat/completions"):
            transport.write(self._responses.not_found)
            return
        request = orjson.loads(body) if body else {}
        if not request.get("stream"):
            transport.write(self._responses.json)
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if self._delay > 0:
            parts = self._responses.stream_parts[usage]
            asyncio.get_running_loop().create_task(self._trickle(transport, parts))
        else:
            transport.write(self._responses.stream_whole[usage])

    async def _trickle(self, transport: asyncio.Transport, parts: list[bytes]) -> None:
        for part in parts:
            if transport.is_closing():
                return
            transport.write(part)
            await asyncio.sleep(self._delay)


async def serve(port: int, chunks: int, chunk_delay_ms: float) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    responses = Responses(chunks)
    delay = chunk_delay_ms / 1000
    server = await loop.create_server(
        lambda: UpstreamProtocol(responses, delay), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream ready on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.chunks, args.chunk_delay_ms))


if __name__ == "__main__":
    main()
