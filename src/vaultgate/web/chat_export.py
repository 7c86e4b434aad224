"""A conversation as a JSON or Markdown file; images go inline, in base64."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence

import orjson

from vaultgate.billing.pricing import format_micros
from vaultgate.providers.base import JsonObject
from vaultgate.web.chat_store import ChatMessage, Conversation

# Image formats by their first bytes (providers answer PNG, JPEG or WebP).
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
              (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))  # fmt: skip


def image_bytes(encoded: str) -> tuple[bytes, str] | None:
    """A stored base64 image as bytes and media type; None when it is not an image."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return data, "image/webp"
    found = next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)
    return (data, found) if found else None


def _data_url(encoded: str) -> str:
    decoded = image_bytes(encoded)
    return f"data:{decoded[1] if decoded else 'image/png'};base64,{encoded}"


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _message(message: ChatMessage) -> JsonObject:
    return {
        "role": message.role, "content": message.content, "model": message.model,
        "images_b64": message.images, "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens, "cost_micros": message.cost_micros,
        "cost_usd": format_micros(message.cost_micros), "finish_reason": message.finish_reason,
        "request_id": message.request_id, "created_at": _stamp(message.created_at),
    }  # fmt: skip


def conversation_json(conversation: Conversation, messages: Sequence[ChatMessage]) -> bytes:
    """The conversation with every turn, its model, tokens and exact cost."""
    document = {
        "title": conversation.title,
        "model": conversation.model,
        "created_at": _stamp(conversation.created_at),
        "updated_at": _stamp(conversation.updated_at),
        "messages": [_message(m) for m in messages],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def _heading(message: ChatMessage) -> str:
    if message.role == "user":
        return "## You"
    return f"## Assistant ({message.model})" if message.model else "## Assistant"


def _footer(message: ChatMessage) -> str | None:
    if message.role != "assistant":
        return None
    parts = []
    if message.prompt_tokens or message.completion_tokens:
        parts.append(f"{message.prompt_tokens} tokens in, {message.completion_tokens} tokens out")
    parts.append(f"${format_micros(message.cost_micros)}")
    if message.finish_reason == "stopped":
        parts.append("stopped")
    return "_" + " · ".join(parts) + "_"


def conversation_markdown(conversation: Conversation, messages: Sequence[ChatMessage]) -> str:
    """The conversation as a Markdown document, one section per turn."""
    lines = [f"# {conversation.title}", "", f"_Exported {_stamp(dt.datetime.now(dt.UTC))}_", ""]
    for message in messages:
        lines += [_heading(message), ""]
        if message.content:
            lines += [message.content, ""]
        for encoded in message.images:
            lines += [f"![Generated image]({_data_url(encoded)})", ""]
        footer = _footer(message)
        if footer:
            lines += [footer, ""]
    return "\n".join(lines)
