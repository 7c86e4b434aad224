"""The pieces behind a chat answer: titles, the stream tally and the recorded stream."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from vaultgate.providers.base import Usage
from vaultgate.web.chat_answers import (
    RecordedStream,
    StreamTally,
    image_answer,
    openai_messages,
    text_answer,
    title_header,
)
from vaultgate.web.chat_store import DEFAULT_TITLE, NewMessage, title_from

CHUNK = {"choices": [{"index": 0, "delta": {"content": "Hé"}, "finish_reason": None}]}
END = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}


def _event(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("\n\n  What   is\tthis?  \nsecond line", "What is this?"),
        ("   \n ", DEFAULT_TITLE),
        ("x" * 80, "x" * 59 + "…"),
    ],
)
def test_title_from_first_question_is_its_first_line_shortened(text: str, title: str) -> None:
    assert title_from(text) == title


def test_stream_tally_split_across_reads_reassembles_events() -> None:
    raw = _event(CHUNK) + _event(CHUNK) + _event(END) + _event(USAGE) + b"data: [DONE]\n\n"
    tally = StreamTally()

    for index in range(0, len(raw), 5):
        tally.feed(raw[index : index + 5])

    assert tally.text == "HéHé"
    assert tally.finish_reason == "length"
    assert tally.usage == Usage(prompt_tokens=7, completion_tokens=2)
    assert tally.error is None


def test_stream_tally_error_event_is_noted() -> None:
    tally = StreamTally()

    tally.feed(_event(CHUNK) + _event({"error": {"message": "provider went away"}}))

    assert tally.text == "Hé"
    assert tally.error == "provider went away"


def test_text_answer_stopped_without_usage_counts_locally() -> None:
    tally = StreamTally(text="three small words")
    body = {"messages": [{"role": "user", "content": "hello there"}]}

    answer = text_answer(
        tally, True, model_id="m", body=body, request_id="req_1",
        cost=lambda usage: usage.total_tokens * 10,
    )  # fmt: skip

    assert answer.finish_reason == "stopped"
    assert answer.completion_tokens > 0
    assert answer.cost_micros == (answer.prompt_tokens + answer.completion_tokens) * 10
    assert answer.content == "three small words"


def test_image_answer_keeps_pngs_and_links_the_rest() -> None:
    result = {"data": [{"b64_json": "iVBO"}, {"url": "https://images.example/a.png"}]}

    answer = image_answer(result, model_id="painter", request_id="req_2", unit_price=40)

    assert answer.images == ["iVBO"]
    assert answer.content == "[Generated image](https://images.example/a.png)"
    assert answer.cost_micros == 80


def test_openai_messages_leave_out_image_only_answers() -> None:
    moment = dt.datetime.now(dt.UTC)
    question = NewMessage(role="user", content="draw", created_at=moment)
    image_only = NewMessage(role="assistant", content="", created_at=moment, images=["x"])

    assert openai_messages([question, image_only]) == [{"role": "user", "content": "draw"}]


def test_title_header_is_percent_encoded_utf8() -> None:
    assert title_header("Grüße & more") == {"x-chat-title": "Gr%C3%BC%C3%9Fe%20%26%20more"}
    assert title_header(None) == {}


FinishCalls = list[tuple[str, bool]]


def _recorder(app: Callable[[Send], Awaitable[None]]) -> tuple[RecordedStream, FinishCalls]:
    calls: FinishCalls = []

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await app(send)

    async def finish(tally: StreamTally, stopped: bool) -> None:
        calls.append((tally.text, stopped))

    return RecordedStream(asgi, finish, {"x-chat-title": "t"}), calls


async def _run(recorder: RecordedStream) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await recorder({"type": "http"}, receive, send)
    return sent


def test_recorded_stream_finishes_once_before_the_last_body_message() -> None:
    async def app(send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": _event(CHUNK), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    recorder, calls = _recorder(app)

    sent = asyncio.run(_run(recorder))

    assert calls == [("Hé", False)]
    assert (b"x-chat-title", b"t") in sent[0]["headers"]
    assert len(sent) == 3


def test_recorded_stream_cut_short_finishes_as_stopped() -> None:
    async def app(send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": _event(CHUNK), "more_body": True})

    recorder, calls = _recorder(app)

    asyncio.run(_run(recorder))

    assert calls == [("Hé", True)]
