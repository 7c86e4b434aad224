"""The small building blocks of request validation: each failure names its parameter and
says what was expected, in the words OpenAI's own errors use."""

from __future__ import annotations

from typing import Any

from vaultgate.errors import InvalidRequest

JsonMap = dict[str, Any]


def type_name(value: Any) -> str:
    """The JSON name of a value's type."""
    return {
        bool: "boolean", int: "integer", float: "number", str: "string",
        list: "array", dict: "object", type(None): "null",
    }.get(type(value), type(value).__name__)  # fmt: skip


def invalid_type(param: str, expected: str, value: Any, *, hint: str = "") -> InvalidRequest:
    """``invalid_type`` for ``param``; ``hint`` (a sentence) follows the standard wording."""
    message = f"Invalid type for '{param}': expected {expected}, but got {type_name(value)}."
    return InvalidRequest(f"{message} {hint}".rstrip(), param=param, code="invalid_type")


def invalid_value(param: str, message: str) -> InvalidRequest:
    """``invalid_value`` for ``param``."""
    return InvalidRequest(message, param=param, code="invalid_value")


def check_object(value: Any, param: str) -> JsonMap:
    """``value`` when it is a JSON object; ``invalid_type`` otherwise."""
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def check_string(value: Any, param: str, *, required: bool = False) -> None:
    """A string, or absent (null) unless ``required``."""
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)


def check_integer(value: Any, param: str, low: int, high: int) -> None:
    """An integer within ``low..high``, or absent; both failures state the range."""
    if value is None:
        return
    limit = f"between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value, hint=f"It must be {limit}.")
    if not low <= value <= high:
        raise invalid_value(param, f"'{param}' must be {limit}, got {value}.")


def check_choice(value: Any, param: str, allowed: tuple[str, ...]) -> None:
    """One of ``allowed``, or absent."""
    if value is None or (isinstance(value, str) and value in allowed):
        return
    shown = repr(value)[:60] if isinstance(value, str) else type_name(value)
    listed = ", ".join(f"'{choice}'" for choice in allowed)
    raise invalid_value(param, f"Invalid value for '{param}': {shown}. Supported: {listed}.")
