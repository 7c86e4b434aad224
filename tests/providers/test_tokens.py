"""Local token estimates."""

from __future__ import annotations

import pytest

from vaultgate.providers.tokens import (
    TOKENS_PER_IMAGE_PART,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY,
    estimate_prompt_tokens,
    estimate_text_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 4, 2), ("🎉", 1), ("x" * 400, 100)],
)
def test_estimate_text_tokens_counts_four_utf8_bytes_per_token(text: str, tokens: int) -> None:
    assert estimate_text_tokens(text) == tokens


def test_estimate_prompt_tokens_adds_message_and_reply_overhead() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}, {"type": "image_url"}]},
        "not a message",
    ]

    expected = TOKENS_PER_REPLY + 2 * TOKENS_PER_MESSAGE + 1 + 2 + TOKENS_PER_IMAGE_PART
    assert estimate_prompt_tokens(messages) == expected


def test_estimate_prompt_tokens_counts_tools_and_tool_calls() -> None:
    bare = [{"role": "assistant", "content": None}]
    calls = [{"role": "assistant", "content": None, "tool_calls": [{"function": "x" * 40}]}]

    assert estimate_prompt_tokens(calls) > estimate_prompt_tokens(bare)
    assert estimate_prompt_tokens(bare, tools=[{"name": "t"}]) > estimate_prompt_tokens(bare)
