"""Checking ``messages``: roles, content, and the content parts each role may carry.

The part types are those of OpenAI's chat API, per role (the ``ChatCompletion*MessageParam``
types of the official SDK; https://platform.openai.com/docs/api-reference/chat/create):
a user sends text, images, audio and files; an assistant text and refusals; every other
role text only. Any other part type is refused, as OpenAI refuses it, rather than passed on
to be billed by a provider the gateway cannot price it for. Keys a message carries beyond
OpenAI's are passed on: OpenAI's chat API ignores them and some providers read them
(DeepSeek's ``prefix``, say), and the hold counts every byte of them.
"""

from __future__ import annotations

from typing import Any

from vaultgate.errors import InvalidRequest
from vaultgate.gateway.checks import (
    check_choice,
    check_object,
    check_string,
    invalid_type,
    invalid_value,
)

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES: dict[str, tuple[str, ...]] = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
}
TEXT_ONLY = ("text",)
IMAGE_URL_SCHEMES = ("http://", "https://", "data:")
IMAGE_DETAILS = ("auto", "low", "high")


def _image_url(part: dict[str, Any], param: str) -> None:
    image = part.get("image_url")
    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
        raise InvalidRequest(
            f"'{param}.image_url.url' must be a string.", param=f"{param}.image_url"
        )
    if not image["url"][:8].lower().startswith(IMAGE_URL_SCHEMES):
        raise invalid_value(
            f"{param}.image_url.url",
            f"'{param}.image_url.url' must be an http(s) URL or a data URL "
            "(data:image/png;base64,...).",
        )
    check_choice(image.get("detail"), f"{param}.image_url.detail", IMAGE_DETAILS)


def _input_audio(part: dict[str, Any], param: str) -> None:
    audio = check_object(part.get("input_audio"), f"{param}.input_audio")
    check_string(audio.get("data"), f"{param}.input_audio.data", required=True)
    check_string(audio.get("format"), f"{param}.input_audio.format", required=True)


def _file(part: dict[str, Any], param: str) -> None:
    file = check_object(part.get("file"), f"{param}.file")
    for name in ("file_data", "file_id", "filename"):
        check_string(file.get(name), f"{param}.file.{name}")
    if file.get("file_data") is None and file.get("file_id") is None:
        raise InvalidRequest(
            f"'{param}.file' needs 'file_data' or 'file_id'.", param=f"{param}.file"
        )


PART_CHECKS = {
    "text": lambda part, param: check_string(part.get("text"), f"{param}.text", required=True),
    "refusal": lambda part, param: check_string(
        part.get("refusal"), f"{param}.refusal", required=True
    ),
    "image_url": _image_url,
    "input_audio": _input_audio,
    "file": _file,
}


def _content_part(part: Any, param: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(part, dict):
        raise invalid_type(param, "an object", part)
    kind = part.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"'{param}.type' is required.", param=f"{param}.type")
    if kind not in allowed:
        listed = ", ".join(f"'{name}'" for name in allowed)
        raise invalid_value(
            f"{param}.type",
            f"Invalid value for '{param}.type': {kind[:60]!r}. Supported values are: {listed}.",
        )
    PART_CHECKS[kind](part, param)


def _content(message: dict[str, Any], role: str, param: str) -> None:
    content = message.get("content")
    if isinstance(content, list):
        allowed = PART_TYPES.get(role, TEXT_ONLY)
        for part_index, part in enumerate(content):
            _content_part(part, f"{param}.content[{part_index}]", allowed)
    elif content is None:
        if role not in ("assistant", "function") or not (
            message.get("tool_calls") or message.get("function_call")
        ):
            raise InvalidRequest(
                f"'{param}.content' is required for role '{role}'.",
                param=f"{param}.content",
            )
    elif not isinstance(content, str):
        raise invalid_type(f"{param}.content", "a string or an array of parts", content)


def check_message(message: Any, index: int) -> None:
    """One entry of ``messages``."""
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise invalid_type(param, "an object", message)
    role = message.get("role")
    if role not in MESSAGE_ROLES:
        raise InvalidRequest(
            f"'{param}.role' must be one of {', '.join(sorted(MESSAGE_ROLES))}.",
            param=f"{param}.role", code="invalid_value",
        )  # fmt: skip
    _content(message, role, param)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(
            f"'{param}.tool_call_id' is required for role 'tool'.",
            param=f"{param}.tool_call_id",
        )
