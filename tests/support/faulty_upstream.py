"""A real HTTP server on 127.0.0.1 that speaks OpenAI's chat wire format and fails on purpose,
for the routing tests: error statuses, hangs, resets, malformed bodies and broken streams.

It is a raw asyncio server rather than a web framework, so faults can be injected at the
socket: a reset with no response, a chunked body cut before its terminator, a hang that
notices the moment the client goes away.

VaultGate reaches it through per-provider base URLs, ``/<route>/v1``, so the record tells
which operator provider made each call. A request's behaviour is ``behaviour[model]`` when a
test set one (it can be switched while VaultGate runs), else the upstream model name itself,
less any ``@label`` suffix (``status-500@a`` behaves as ``status-500``; the label keeps
VaultGate's deployments, and so their circuit breakers, apart):

- ``ok``: a well-behaved answer (usage reported; streamed with a role chunk, content chunks,
  a finish chunk, the usage chunk when asked for, then ``[DONE]``).
- ``slow-<ms>``: waits that long, then answers like ``ok``.
- ``status-<code>``: that HTTP status with an OpenAI error whose message repeats the bearer
  credential it received (as OpenAI's own 401 does), so leaks are visible.
- ``status-429-retry-<s>``: a 429 with ``Retry-After: <s>``.
- ``hang-headers``: reads the request and never answers.
- ``hang-mid-stream-<n>``: streams the role chunk and n content chunks, then stalls.
- ``reset``: closes the socket with a TCP reset, sending nothing.
- ``reset-mid-stream-<n>``: streams the role chunk and n content chunks, then resets.
- ``malformed-json``: a 200 whose body (or first stream event) is not JSON.
- ``cut-after-<n>``: the role chunk and n content chunks, then the connection closes before
  the chunked body's terminator.
- ``error-event-after-<n>``: the role chunk and n content chunks, then an error event (a
  500 when not streamed).
- ``role-then-error``: a role-only chunk, then an error event before any content (a 500
  when not streamed).
- ``role-then-reset``: a role-only chunk, then a reset.

Not streamed, the ``hang-mid-stream``, ``reset-mid-stream`` and ``cut-after`` faults send half
of a promised JSON body, then stall, reset or close.

Stalls last until the client closes the connection or ``hang_s`` passes, so nothing leaks.
Before a mid-stream reset the handler waits until a test calls ``proceed()`` (or
``pause_s`` passes), so the content is known to have reached the client first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPLY_WORDS = ["Alpha", " bravo", " charlie", " delta", " echo", " foxtrot"]
PROMPT_TOKENS = 11
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}
MAX_HEAD_BYTES = 65_536


@dataclass
class Call:
    """One request the server received, and how its exchange ended."""

    route: str
    model: str
    behaviour: str
    stream: bool
    authorization: str
    body: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    # "open", "answered", "client-closed", "hang-expired", "reset" or "cut"
    outcome: str = "open"

    @property
    def deployment(self) -> str:
        """``<route>/<model>``: VaultGate's deployment id when routes are provider names."""
        return f"{self.route}/{self.model}"

    def end(self, outcome: str) -> None:
        """Note how and when the exchange ended (the first ending wins)."""
        if self.ended is None:
            self.ended = time.monotonic()
            self.outcome = outcome


class _ClientGone(Exception):
    """The client closed the connection while the handler was stalled."""


@dataclass
class FaultyUpstream:
    """Runs the server in a thread with its own event loop; ``calls`` records, in order."""

    hang_s: float = 10.0
    pause_s: float = 3.0
    behaviour: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _proceed: asyncio.Event | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def base_url(self, route: str) -> str:
        """The ``/v1`` base URL an operator provider named ``route`` points at."""
        return f"http://127.0.0.1:{self.port}/{route}/v1"

    def start(self) -> FaultyUpstream:
        """Start serving; returns when the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("faulty upstream did not start")
        return self

    def stop(self) -> None:
        """End every open exchange, stop serving and join the thread."""
        loop = self._loop
        if loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if loop is not None:
            loop.close()

    def reset(self) -> None:
        """Forget behaviours, the record and ``proceed()`` (between tests sharing it)."""
        self.behaviour.clear()
        self.calls.clear()
        if self._loop is not None and self._proceed is not None:
            asyncio.run_coroutine_threadsafe(_clear(self._proceed), self._loop).result(5)

    def proceed(self) -> None:
        """Let handlers paused before a mid-stream fault go on."""
        if self._loop is not None and self._proceed is not None:
            self._loop.call_soon_threadsafe(self._proceed.set)

    def deployments(self) -> list[str]:
        """``route/model`` of every call so far, in arrival order."""
        return [call.deployment for call in list(self.calls)]

    def wait_for(self, done: Callable[[], bool], timeout: float) -> None:
        """Poll until ``done()`` holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout}s; calls: {self.calls}")
            time.sleep(0.02)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._proceed = asyncio.Event()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        call: Call | None = None
        try:
            call = await self._read_call(reader)
            if call is not None:
                await _Exchange(self, call, reader, writer).run()
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            if call is not None:
                call.end("client-closed")
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_call(self, reader: asyncio.StreamReader) -> Call | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None
        request_line, *lines = head.decode("latin-1").split("\r\n")
        _method, target, _version = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        model = str(body.get("model", ""))
        call = Call(
            route=target.strip("/").split("/", 1)[0],
            model=model,
            behaviour=self.behaviour.get(model, model.split("@", 1)[0]),
            stream=bool(body.get("stream")),
            authorization=headers.get("authorization", ""),
            body=body,
        )
        self.calls.append(call)
        return call


async def _clear(event: asyncio.Event) -> None:
    event.clear()


def _number(spec: str) -> int:
    return int(spec.rsplit("-", 1)[1])


class _Exchange:
    """Answers one request according to its behaviour."""

    def __init__(
        self,
        server: FaultyUpstream,
        call: Call,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.call = call
        self.reader = reader
        self.writer = writer

    async def run(self) -> None:
        """Dispatch on the behaviour."""
        spec = self.call.behaviour
        if not BEHAVIOUR_PATTERN.fullmatch(spec):
            await self._send(500, f"unknown behaviour {spec!r}".encode(), {})
            return
        if spec.startswith("slow-"):
            await asyncio.sleep(_number(spec) / 1000)
            spec = "ok"
        if spec.startswith("status-"):
            await self._status(spec)
        elif spec == "hang-headers":
            await self._stall()
        elif spec == "reset":
            self._reset()
        elif spec == "malformed-json":
            await self._malformed()
        elif not self.call.stream:
            await self._complete(spec)
        else:
            await self._stream(spec)

    # Whole answers.

    async def _status(self, spec: str) -> None:
        parts = spec.split("-")
        status = int(parts[1])
        headers = {"Retry-After": parts[3]} if len(parts) == 4 and parts[2] == "retry" else {}
        kind = "server_error" if status >= 500 else "invalid_request_error"
        message = f"fault {status}; key presented: {self.call.authorization}"
        error = {"message": message, "type": kind, "param": None, "code": None}
        await self._send(status, json.dumps({"error": error}).encode(), headers)

    async def _malformed(self) -> None:
        if self.call.stream:
            await self._start_stream()
            await self._chunk(b"data: {not json\n\n")
            await self._finish()
        else:
            await self._send(200, b"{not json", {})

    async def _complete(self, spec: str) -> None:
        if spec.startswith(("role-then-", "error-event-after-")):
            await self._status("status-500")
            return
        payload = {
            "id": "chatcmpl-faulty",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(REPLY_WORDS)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(len(REPLY_WORDS)),
        }
        raw = json.dumps(payload).encode()
        if spec.startswith(("cut-after-", "reset-mid-stream-", "hang-mid-stream-")):
            # Promise the whole body, send half of it, then fail.
            self._head(200, {"Content-Type": "application/json", "Content-Length": len(raw)})
            self.writer.write(raw[: len(raw) // 2])
            await self.writer.drain()
            await self._mid_stream_fault(spec, delivered=False)
            return
        await self._send(200, raw, {})

    # Streams.

    async def _stream(self, spec: str) -> None:
        await self._start_stream()
        await self._event({"role": "assistant", "content": ""})
        if spec.startswith("role-then-"):
            await self._mid_stream_fault(spec.removeprefix("role-then-"), delivered=False)
            return
        words = REPLY_WORDS
        if spec != "ok":
            words = REPLY_WORDS[: _number(spec)]
        for word in words:
            await self._event({"content": word})
        if spec != "ok":
            await self._mid_stream_fault(spec, delivered=True)
            return
        await self._event({}, finish="stop")
        options = self.call.body.get("stream_options") or {}
        if options.get("include_usage"):
            usage = {**self._frame(), "choices": [], "usage": _usage(len(REPLY_WORDS))}
            await self._chunk(_sse(usage))
        await self._chunk(b"data: [DONE]\n\n")
        await self._finish()

    async def _mid_stream_fault(self, spec: str, *, delivered: bool) -> None:
        """Fail after part of the body; before a reset, let ``delivered`` content arrive."""
        if spec.startswith("hang-"):
            await self._stall()
        elif spec.startswith("reset"):
            if delivered:
                await self._pause()
            self._reset()
        elif spec.startswith("cut-"):
            self.writer.transport.close()
            self.call.end("cut")
        elif spec.startswith("error"):
            error = {"message": "overloaded mid-stream", "type": "server_error"}
            await self._chunk(_sse({"error": error}))
            await self._finish()
        else:
            raise ValueError(f"unknown faulty-upstream behaviour {self.call.behaviour!r}")

    def _frame(self) -> dict[str, Any]:
        return {
            "id": "chatcmpl-faulty",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": self.call.model,
        }

    async def _event(self, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        await self._chunk(_sse({**self._frame(), "choices": [choice]}))

    # The wire.

    def _head(self, status: int, headers: dict[str, object]) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        extra = {"Content-Type": "application/json", "Content-Length": len(body), **headers}
        self._head(status, extra)
        self.writer.write(body)
        await self.writer.drain()
        self.call.end("answered")

    async def _start_stream(self) -> None:
        self._head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        await self.writer.drain()

    async def _chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def _finish(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
        self.call.end("answered")

    async def _stall(self) -> None:
        """Wait for the client to leave (raises _ClientGone), or end after ``hang_s``."""
        try:
            async with asyncio.timeout(self.server.hang_s):
                while await self.reader.read(1024):
                    pass
        except TimeoutError:
            self.call.end("hang-expired")
            self.writer.transport.close()
            return
        raise _ClientGone

    async def _pause(self) -> None:
        assert self.server._proceed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server._proceed.wait(), self.server.pause_s)

    def _reset(self) -> None:
        sock = self.writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.call.end("reset")


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _usage(completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": PROMPT_TOKENS + completion,
    }


BEHAVIOUR_PATTERN = re.compile(
    r"ok|slow-\d+|status-\d{3}(-retry-\d+)?|hang-headers|hang-mid-stream-\d+|reset"
    r"|reset-mid-stream-\d+|malformed-json|cut-after-\d+|error-event-after-\d+"
    r"|role-then-(error|reset)"
)
