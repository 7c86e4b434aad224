"""The offline provider: deterministic text, limits, stream shape, usage, and PNG images."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from vaultgate.providers.base import ChatCall, ImageCall, JsonObject, ProviderConfig
from vaultgate.providers.offline import OfflineProvider, compose_reply
from vaultgate.providers.png import PNG_SIGNATURE
from vaultgate.providers.tokens import estimate_prompt_tokens

pytestmark = pytest.mark.anyio

CONFIG = ProviderConfig(name="offline", wire_format="offline")
MESSAGES = [{"role": "user", "content": "ping pong table"}]


@pytest.fixture
def offline() -> OfflineProvider:
    """An offline provider without delays."""
    return OfflineProvider(CONFIG, token_delay_s=0, first_token_delay_s=0)


def make_call(**extra: Any) -> ChatCall:
    """A chat call for ``offline-small-text``."""
    body: JsonObject = {"model": "offline-small-text", "messages": MESSAGES, **extra}
    return ChatCall("offline-small-text", "offline-small", body, CONFIG)


def full_reply(seed: int = 0) -> str:
    """The reply without limits."""
    return "".join(compose_reply(MESSAGES, seed))


async def collect(provider: OfflineProvider, call: ChatCall) -> list[JsonObject]:
    """Every chunk of a streamed answer."""
    return [chunk async for chunk in provider.chat_stream(call)]


def text_by_index(chunks: list[JsonObject]) -> dict[int, str]:
    """Streamed content per choice index."""
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            index = choice["index"]
            texts[index] = texts.get(index, "") + (choice["delta"].get("content") or "")
    return texts


def content_chunks(chunks: list[JsonObject]) -> int:
    """How many chunks carry non-empty content."""
    return sum(1 for c in chunks for choice in c["choices"] if choice["delta"].get("content"))


# Replies.


async def test_chat_same_conversation_gives_same_reply(offline: OfflineProvider) -> None:
    first = await offline.chat(make_call())
    second = await offline.chat(make_call())

    text = first.body["choices"][0]["message"]["content"]
    assert text == second.body["choices"][0]["message"]["content"]
    assert text.startswith("You said: ping pong table ")
    assert text.endswith(".")


async def test_chat_different_seed_gives_different_reply(offline: OfflineProvider) -> None:
    plain = await offline.chat(make_call())
    seeded = await offline.chat(make_call(seed=12345))

    assert plain.body["choices"][0]["message"] != seeded.body["choices"][0]["message"]


async def test_chat_without_user_text_says_hello(offline: OfflineProvider) -> None:
    call = ChatCall(
        "offline-small-text", "offline-small",
        {"messages": [{"role": "system", "content": "be brief"}]}, CONFIG,
    )  # fmt: skip

    result = await offline.chat(call)

    assert result.body["choices"][0]["message"]["content"].startswith("Hello! ")


async def test_chat_content_parts_are_read_as_user_text(offline: OfflineProvider) -> None:
    parts = [{"type": "text", "text": "ping pong"}, {"type": "text", "text": "table"}]
    body = {"messages": [{"role": "user", "content": parts}]}

    result = await offline.chat(ChatCall("m-text", "m", body, CONFIG))

    assert result.body["choices"][0]["message"]["content"] == full_reply()


async def test_chat_result_has_openai_shape_and_model_id(offline: OfflineProvider) -> None:
    result = await offline.chat(make_call())

    assert result.body["object"] == "chat.completion"
    assert result.body["model"] == "offline-small-text"
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.body["choices"][0]["message"]["role"] == "assistant"
    assert result.usage is not None
    assert result.body["usage"] == result.usage.as_openai()


# Limits.


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
async def test_chat_token_limit_cuts_reply_with_length(
    offline: OfflineProvider, param: str
) -> None:
    result = await offline.chat(make_call(**{param: 5}))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "".join(compose_reply(MESSAGES, 0)[:5])
    assert result.usage is not None
    assert result.usage.completion_tokens == 5


async def test_chat_limit_equal_to_reply_length_finishes_with_stop(
    offline: OfflineProvider,
) -> None:
    length = len(compose_reply(MESSAGES, 0))

    result = await offline.chat(make_call(max_tokens=length))

    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.body["choices"][0]["message"]["content"] == full_reply()


@pytest.mark.parametrize(
    "stop",
    [
        "pong",  # inside one token
        "said: ping",  # across two tokens, starting at a token boundary
        "aid: pi",  # across two tokens, starting inside an earlier token
        ["zzz-never", "table"],  # a list; the one that occurs wins
        "You",  # at the very start: nothing is emitted
    ],
)
async def test_chat_stop_sequence_cuts_before_it_with_stop(
    offline: OfflineProvider, stop: str | list[str]
) -> None:
    reply = full_reply()
    stops = [stop] if isinstance(stop, str) else stop
    cut = min(reply.find(s) for s in stops if s in reply)

    result = await offline.chat(make_call(stop=stop))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == reply[:cut]


async def test_stream_stop_sequence_across_tokens_matches_chat(
    offline: OfflineProvider,
) -> None:
    whole = await offline.chat(make_call(stop="aid: pi"))

    chunks = await collect(offline, make_call(stop="aid: pi"))

    assert text_by_index(chunks) == {0: whole.body["choices"][0]["message"]["content"]}


# Several choices.


async def test_chat_n_gives_separate_indexed_choices(offline: OfflineProvider) -> None:
    result = await offline.chat(make_call(n=3))

    choices = result.body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert [c["message"]["content"] for c in choices] == [full_reply(s) for s in range(3)]
    assert len({c["message"]["content"] for c in choices}) == 3


async def test_stream_n_gives_each_index_its_own_text(offline: OfflineProvider) -> None:
    chunks = await collect(offline, make_call(n=3))

    assert text_by_index(chunks) == {i: full_reply(i) for i in range(3)}
    finishes = [
        (choice["index"], choice["finish_reason"])
        for chunk in chunks
        for choice in chunk["choices"]
        if choice["finish_reason"]
    ]
    assert sorted(finishes) == [(0, "stop"), (1, "stop"), (2, "stop")]


# Stream shape and usage.


async def test_stream_shape_role_first_then_content_finish_and_usage(
    offline: OfflineProvider,
) -> None:
    chunks = await collect(offline, make_call())

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == []
    assert set(chunks[-1]["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])


async def test_stream_usage_counts_emitted_tokens(offline: OfflineProvider) -> None:
    chunks = await collect(offline, make_call(n=2, max_tokens=7))

    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == content_chunks(chunks) == 14
    assert usage["prompt_tokens"] == estimate_prompt_tokens(MESSAGES)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_chat_usage_matches_stream_usage(offline: OfflineProvider) -> None:
    result = await offline.chat(make_call(n=2))

    chunks = await collect(offline, make_call(n=2))

    assert result.usage is not None
    assert result.usage.as_openai() == chunks[-1]["usage"]
    assert result.usage.completion_tokens == content_chunks(chunks)
    assert result.usage.estimated is False


def test_unsupported_params_lists_what_it_cannot_honour(offline: OfflineProvider) -> None:
    body = {
        "model": "m", "messages": [], "tools": [], "tool_choice": "auto",
        "response_format": {"type": "json_object"}, "logprobs": True, "max_tokens": 3,
        "temperature": 1, "stop": "x", "n": 2, "stream": True,
    }  # fmt: skip

    assert offline.unsupported_params(body) == [
        "logprobs", "response_format", "tool_choice", "tools",
    ]  # fmt: skip


# Images.


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG's structure and CRCs; return width, height and the raw scanlines."""
    assert data[:8] == PNG_SIGNATURE
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        position += 12 + length
    assert position == len(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    return width, height, raw


def image_call(size: str, n: int = 1, prompt: str = "a red fox") -> ImageCall:
    """An image call for ``offline-painter-image``."""
    return ImageCall(
        model_id="offline-painter-image", upstream_model="offline-painter", prompt=prompt,
        n=n, size=size, quality="standard", response_format="b64_json", body={},
        provider=CONFIG,
    )  # fmt: skip


@pytest.mark.parametrize(("width", "height"), [(256, 256), (512, 512), (1792, 1024), (3, 2)])
async def test_images_are_valid_pngs_of_requested_size(
    offline: OfflineProvider, width: int, height: int
) -> None:
    result = await offline.images(image_call(f"{width}x{height}"))

    (image,) = result.images
    assert image.png is not None
    got_width, got_height, raw = read_png(image.png)
    assert (got_width, got_height) == (width, height)
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[row * (1 + 3 * width)] == 0 for row in range(height))


async def test_images_n_gives_distinct_images_deterministically(
    offline: OfflineProvider,
) -> None:
    first = await offline.images(image_call("256x256", n=2))
    again = await offline.images(image_call("256x256", n=2))

    pngs = [image.png for image in first.images]
    assert len(pngs) == 2
    assert pngs[0] != pngs[1]
    assert pngs == [image.png for image in again.images]
    assert all(image.revised_prompt == "a red fox" for image in first.images)
