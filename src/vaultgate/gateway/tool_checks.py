"""Checking ``tools`` and ``tool_choice`` as OpenAI's chat API does.

A tool is a function (``{"type": "function", "function": {"name", ...}}``) or a custom tool
(``{"type": "custom", "custom": {"name", ...}}``); ``tool_choice`` is ``none``, ``auto`` or
``required``, a named tool that ``tools`` declares, or an ``allowed_tools`` list
(the ``ChatCompletionTool*Param`` types of the official SDK;
https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools).
"""

from __future__ import annotations

from typing import Any

from vaultgate.errors import InvalidRequest
from vaultgate.gateway.checks import (
    JsonMap,
    check_choice,
    check_object,
    invalid_type,
    invalid_value,
)

TOOL_TYPES = ("function", "custom")
TOOL_CHOICE_MODES = ("none", "auto", "required")
TOOL_CHOICE_TYPES = ("function", "custom", "allowed_tools")


def _tool_name(holder: Any, param: str) -> str:
    """The ``name`` of a tool's ``function`` (or ``custom``) object, which must be there."""
    definition = check_object(holder, param)
    name = definition.get("name")
    if name is None:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.name'.",
            param=f"{param}.name", code="missing_required",
        )  # fmt: skip
    if not isinstance(name, str):
        raise invalid_type(f"{param}.name", "a string", name)
    if not name:
        raise invalid_value(f"{param}.name", f"'{param}.name' must not be empty.")
    return name


def _kind(holder: JsonMap, param: str, allowed: tuple[str, ...]) -> str:
    """The required ``type`` of a tool or a tool choice."""
    kind = holder.get("type")
    if kind is None:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.type'.",
            param=f"{param}.type", code="missing_required",
        )  # fmt: skip
    check_choice(kind, f"{param}.type", allowed)
    return str(kind)


def _tool(tool: Any, param: str) -> tuple[str, str]:
    """The kind and name a valid tool declares."""
    tool = check_object(tool, param)
    kind = _kind(tool, param, TOOL_TYPES)
    name = _tool_name(tool.get(kind), f"{param}.{kind}")
    parameters = tool[kind].get("parameters")
    if kind == "function" and parameters is not None and not isinstance(parameters, dict):
        raise invalid_type(f"{param}.function.parameters", "an object", parameters)
    return kind, name


def check_tools(body: JsonMap) -> set[tuple[str, str]]:
    """Check ``tools``; return the (kind, name) of each tool it declares."""
    tools = body.get("tools")
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    return {_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)}


def check_tool_choice(body: JsonMap, declared: set[tuple[str, str]]) -> None:
    """Check ``tool_choice`` against the tools ``check_tools`` found."""
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        check_choice(choice, "tool_choice", TOOL_CHOICE_MODES)
        return
    if not isinstance(choice, dict):
        raise invalid_type("tool_choice", "a string or an object", choice)
    kind = _kind(choice, "tool_choice", TOOL_CHOICE_TYPES)
    if kind == "allowed_tools":
        return
    name = _tool_name(choice.get(kind), f"tool_choice.{kind}")
    if (kind, name) not in declared:
        raise invalid_value(
            "tool_choice",
            f"Invalid value for 'tool_choice': no {kind} tool named {name[:64]!r} is "
            "declared in 'tools'.",
        )
