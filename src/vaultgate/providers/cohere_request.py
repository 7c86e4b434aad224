"""OpenAI chat requests translated to Cohere's v2 Chat API.

Reference: https://docs.cohere.com/reference/chat (``POST /v2/chat``), with field names as
the ``cohere`` SDK's v2 types spell them.

=========================== ==========================================================
OpenAI parameter            Cohere v2 Chat
=========================== ==========================================================
messages                    translated: ``system`` and ``developer`` → one ``system``
                            message first (joined with blank lines: Cohere wants the
                            system turn first); ``user`` text and ``image_url`` parts
                            (``detail`` kept); ``assistant`` text, or with
                            ``tool_calls`` its text as ``tool_plan``; ``tool`` →
                            ``tool`` with ``tool_call_id``
max_completion_tokens,      ``max_tokens`` (the newer name wins)
max_tokens
temperature                 ``temperature``
top_p                       ``p``, clamped to Cohere's 0.01–0.99
top_k (an extension)        ``k``
stop                        ``stop_sequences``
seed                        ``seed``
frequency_penalty,          the same names, clamped to Cohere's 0–1 (OpenAI allows
presence_penalty            -2–2; negative values become 0)
tools                       ``tools`` (functions only); ``strict_tools`` when every
                            function is ``strict``
tool_choice                 ``none`` → ``NONE``, ``required`` → ``REQUIRED``, a named
                            function → ``REQUIRED`` with only that function offered,
                            ``auto`` → left out (Cohere's default)
response_format             ``json_object`` → ``json_object``; ``json_schema`` →
                            ``json_object`` with its ``schema`` as ``json_schema``
stream, stream_options      ``stream``; Cohere always reports usage when streaming
n                           answered by the gateway: Cohere answers one choice per
                            request, so ``n`` > 1 becomes ``n`` concurrent calls
                            (``supports_n`` is False; see ``fanout``); a call that
                            still carries ``n`` > 1 is refused
parallel_tool_calls: true,  honoured (Cohere's behaviour anyway)
logprobs: false
user, logprobs, top_logprobs, dropped with a warning: no Cohere equivalent, and the
logit_bias,                 answer is still a valid completion without them
parallel_tool_calls: false,
anything else
=========================== ==========================================================

Content parts other than text and ``image_url``, tools other than functions, the legacy
``function`` role and a named ``tool_choice`` for an undeclared function are refused with
a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import JsonObject

TRANSLATED_PARAMS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "top_k", "stop", "seed", "frequency_penalty",
        "presence_penalty", "tools", "tool_choice", "response_format", "n",
    }
)  # fmt: skip
# Honoured at these values without anything to send.
NEUTRAL_VALUES = (("parallel_tool_calls", True), ("logprobs", False))
# Cohere's documented ranges (https://docs.cohere.com/reference/chat).
P_RANGE = (0.01, 0.99)
PENALTY_RANGE = (0.0, 1.0)
TOOL_CHOICES = {"none": "NONE", "required": "REQUIRED"}


def refuse(param: str, why: str) -> UpstreamError:
    """A 400 for a request Cohere cannot answer faithfully; no deployment is retried."""
    return UpstreamError(
        f"'{param}' is not supported by Cohere models: {why}",
        status=400, error_type="invalid_request_error", code="unsupported_parameter",
        param=param, retryable=False,
    )  # fmt: skip


def dropped_params(body: JsonObject) -> list[str]:
    """The set parameters Cohere has no equivalent for (see the module docstring)."""
    return [
        name
        for name, value in body.items()
        if value is not None and name not in TRANSLATED_PARAMS
        and (name, value) not in NEUTRAL_VALUES
    ]  # fmt: skip


def openai_to_cohere_request(body: JsonObject, upstream_model: str, *, stream: bool) -> JsonObject:
    """The ``/v2/chat`` body for an OpenAI chat body."""
    n = body.get("n")
    if n is not None and n != 1:
        raise refuse("n", "Cohere returns one choice per request")
    request: JsonObject = {
        "model": upstream_model,
        "messages": openai_to_cohere_messages(body["messages"]),
    }
    request.update(openai_to_cohere_sampling(body))
    request.update(openai_to_cohere_tools(body))
    response_format = openai_to_cohere_response_format(body.get("response_format"))
    if response_format is not None:
        request["response_format"] = response_format
    if stream:
        request["stream"] = True
    return request


def _clamp(value: Any, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(float(value), low), high)


def openai_to_cohere_sampling(body: JsonObject) -> JsonObject:
    """Output limit, sampling, penalties, stop sequences and seed."""
    sampling: JsonObject = {}
    for name in ("max_completion_tokens", "max_tokens"):
        if isinstance(body.get(name), int):
            sampling["max_tokens"] = body[name]
            break
    if body.get("temperature") is not None:
        sampling["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        sampling["p"] = _clamp(body["top_p"], P_RANGE)
    if body.get("top_k") is not None:
        sampling["k"] = body["top_k"]
    for name in ("frequency_penalty", "presence_penalty"):
        if body.get(name) is not None:
            sampling[name] = _clamp(body[name], PENALTY_RANGE)
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    if stops:
        sampling["stop_sequences"] = stops
    if body.get("seed") is not None:
        sampling["seed"] = body["seed"]
    return sampling


# Messages.


def openai_to_cohere_messages(messages: list[Any]) -> list[JsonObject]:
    """Cohere's messages: one system message first, then the conversation in order."""
    system: list[str] = []
    turns: list[JsonObject] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        param = f"messages[{index}]"
        if role in ("system", "developer"):
            system.append(_system_text(message.get("content"), f"{param}.content"))
        elif role == "user":
            turns.append({"role": "user", "content": _user_content(message, param)})
        elif role == "assistant":
            turns.append(openai_to_cohere_assistant(message, param))
        elif role == "tool":
            turns.append(openai_to_cohere_tool_result(message, param))
        else:
            raise refuse(f"{param}.role", f"the '{role}' role has no Cohere equivalent")
    prompt = "\n\n".join(part for part in system if part)
    return ([{"role": "system", "content": prompt}] if prompt else []) + turns


def _system_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for position, part in enumerate(content or ()):
        if part.get("type") != "text":
            raise refuse(f"{param}[{position}]", "system messages take text only")
        texts.append(part["text"])
    return "\n\n".join(texts)


def _user_content(message: JsonObject, param: str) -> str | list[JsonObject]:
    content = message.get("content")
    if isinstance(content, str) or content is None:
        return content or ""
    parts: list[JsonObject] = []
    for position, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            parts.append({"type": "image_url", "image_url": _image_url(part["image_url"])})
        else:
            raise refuse(f"{param}.content[{position}]", f"content parts of type '{kind}'")
    return parts


def _image_url(image: JsonObject) -> JsonObject:
    """Cohere takes the URL (http(s) or a base64 data URL) and OpenAI's ``detail``."""
    translated: JsonObject = {"url": image["url"]}
    if image.get("detail"):
        translated["detail"] = image["detail"]
    return translated


def openai_to_cohere_assistant(message: JsonObject, param: str) -> JsonObject:
    """An assistant turn; alongside tool calls its text is Cohere's ``tool_plan``, the form
    in which Cohere itself returns text that precedes tool calls."""
    text = _text_of(message.get("content"), f"{param}.content")
    tool_calls = message.get("tool_calls") or []
    turn: JsonObject = {"role": "assistant"}
    if tool_calls:
        turn["tool_calls"] = [
            openai_to_cohere_tool_call(call, f"{param}.tool_calls[{position}]")
            for position, call in enumerate(tool_calls)
        ]
        if text:
            turn["tool_plan"] = text
    else:
        turn["content"] = text
    return turn


def _text_of(content: Any, param: str) -> str:
    if isinstance(content, str) or content is None:
        return content or ""
    texts = []
    for position, part in enumerate(content):
        if part.get("type") not in ("text", "refusal"):
            raise refuse(f"{param}[{position}]", "assistant messages take text only")
        texts.append(part.get("text") or part.get("refusal") or "")
    return "".join(texts)


def openai_to_cohere_tool_call(call: Any, param: str) -> JsonObject:
    """A Cohere tool call: the same shape as OpenAI's."""
    function = call.get("function") or {}
    if call.get("type", "function") != "function":
        raise refuse(param, f"tool calls of type '{call.get('type')}'")
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": function.get("arguments") or "{}"},
    }


def openai_to_cohere_tool_result(message: JsonObject, param: str) -> JsonObject:
    """A ``tool`` turn: a string result as it is, parts as Cohere text blocks."""
    content = message.get("content")
    if not isinstance(content, str):
        content = [
            {"type": "text", "text": _text_of([part], f"{param}.content")}
            for part in content or ()
        ]
    return {"role": "tool", "tool_call_id": message.get("tool_call_id"), "content": content}


# Tools and output format.


def openai_to_cohere_tools(body: JsonObject) -> JsonObject:
    """``tools``, ``strict_tools`` and ``tool_choice``; nothing when no tools are declared."""
    tools = body.get("tools")
    if not tools:
        return {}
    functions = []
    for position, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise refuse(f"tools[{position}]", f"tools of type '{tool.get('type')}'")
        functions.append(tool["function"])
    translated: JsonObject = {"tools": [openai_to_cohere_function(f) for f in functions]}
    if all(f.get("strict") is True for f in functions):
        translated["strict_tools"] = True
    translated.update(openai_to_cohere_tool_choice(body.get("tool_choice"), translated["tools"]))
    return translated


def openai_to_cohere_function(function: JsonObject) -> JsonObject:
    """A Cohere function tool; ``parameters`` is required there."""
    entry: JsonObject = {
        "name": function["name"],
        "parameters": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        entry["description"] = function["description"]
    return {"type": "function", "function": entry}


def openai_to_cohere_tool_choice(choice: Any, tools: list[JsonObject]) -> JsonObject:
    """Cohere's ``tool_choice`` (and, for a named function, the narrowed ``tools``)."""
    if choice is None or choice == "auto":
        return {}
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return {"tool_choice": TOOL_CHOICES[choice]}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    named = [tool for tool in tools if tool["function"]["name"] == name]
    if not named:
        raise refuse("tool_choice", f"the choice {choice!r} names no declared function")
    # Cohere cannot force one particular function; offering only that one and requiring a
    # tool call has the same effect.
    return {"tools": named, "tool_choice": "REQUIRED"}


def openai_to_cohere_response_format(response_format: Any) -> JsonObject | None:
    """``json_object`` as it is; a JSON schema as ``json_object`` with ``json_schema``."""
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        translated: JsonObject = {"type": "json_object"}
        if isinstance(schema, dict):
            translated["json_schema"] = schema
        return translated
    raise refuse("response_format", f"the format {kind!r}")
