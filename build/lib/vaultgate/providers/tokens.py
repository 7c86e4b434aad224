"""Local token estimates, for providers that report no usage.

No provider's tokenizer can be loaded offline, so counts are estimated: about four bytes of
text per token, plus OpenAI's documented per-message overhead. Charges based on these
counts are marked as estimated.
"""

from __future__ import annotations

from typing import Any

TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
BYTES_PER_TOKEN = 4
TOKENS_PER_IMAGE_PART = 85


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens in a piece of text."""
    if not text:
        return 0
    return max(1, (len(text.encode("utf-8")) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            total += estimate_text_tokens(str(part.get("text", "")))
        else:
            total += TOKENS_PER_IMAGE_PART
    return total


def estimate_prompt_tokens(messages: list[Any], tools: Any = None) -> int:
    """Estimated prompt tokens of a chat request."""
    total = TOKENS_PER_REPLY
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += TOKENS_PER_MESSAGE + _content_tokens(message.get("content"))
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                total += estimate_text_tokens(str(call.get("function", "")))
    if tools:
        total += estimate_text_tokens(str(tools))
    return total
