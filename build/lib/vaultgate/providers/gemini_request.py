"""Translating OpenAI chat requests into Gemini ``GenerateContentRequest`` bodies.

Field names follow https://ai.google.dev/api/generate-content and the ``google-genai``
SDK's types. The responses, streams and errors are in ``gemini``.

How each OpenAI parameter is treated:

=========================  ==========================================================
OpenAI                     Gemini
=========================  ==========================================================
messages                   ``contents`` + ``systemInstruction`` (below)
model, stream              the URL (model path, method)
stream_options             consumed: Gemini always reports usage
temperature, top_p         ``generationConfig.temperature``, ``topP``
max_completion_tokens      ``generationConfig.maxOutputTokens`` (wins over max_tokens)
max_tokens                 ``generationConfig.maxOutputTokens``
stop                       ``generationConfig.stopSequences``
n                          ``generationConfig.candidateCount``
seed                       ``generationConfig.seed``
presence_penalty           ``generationConfig.presencePenalty``
frequency_penalty          ``generationConfig.frequencyPenalty``
response_format            json_object: ``responseMimeType: application/json``;
                           json_schema: that plus ``responseSchema`` (see below);
                           text: nothing
reasoning_effort           ``generationConfig.thinkingConfig.thinkingLevel``
                           (``none`` becomes MINIMAL, the least Gemini 3 allows)
tools (function)           ``tools[].functionDeclarations``; other tool types refused
tool_choice                ``toolConfig.functionCallingConfig``: auto AUTO, none NONE,
                           required ANY, a named function ANY + allowedFunctionNames
parallel_tool_calls        true is Gemini's behaviour; false is dropped with a warning
everything else            dropped with a warning: logprobs, top_logprobs, logit_bias,
                           user, metadata, store, service_tier, modalities, audio,
                           prediction, web_search_options, functions, function_call, ...
=========================  ==========================================================

Messages: system and developer messages, wherever they are, become ``systemInstruction``
parts in order; user becomes ``user``, assistant ``model``; tool results become
``functionResponse`` parts of a ``user`` turn, named after the matching tool call and
wrapped as ``{"output": text}`` (the key the API reference suggests for a function's
output); consecutive turns of one role are merged, as Gemini expects alternation. Image
parts: data URLs become ``inlineData`` with their own media type; http(s) URLs become
``fileData`` with a media type guessed from the path (``image/jpeg`` when it has no known
extension) and are fetched by Google, not by VaultGate — fetching here would let a caller
make the gateway request arbitrary URLs. Audio (``input_audio``) and ``file`` parts with
data URLs become ``inlineData``; other part types are refused.

JSON schemas are translated to Gemini's OpenAPI-style ``Schema``: ``type`` (a list with
``"null"`` becomes ``nullable``), ``properties``, ``required``, ``items``, ``enum``
(strings only), ``const`` (as a one-value enum), ``anyOf``, ``description``, ``title``,
``nullable``, ``default``, ``example``, ``minimum``/``maximum``, ``minLength``/``maxLength``,
``pattern``, ``minItems``/``maxItems``, ``minProperties``/``maxProperties``, ``format``
(only ``date-time``, ``enum``, ``float``, ``double``, ``int32``, ``int64``) and
``propertyOrdering``. Local ``$ref`` into ``$defs``/``definitions`` are inlined; a
recursive schema is refused. Every other keyword (``additionalProperties``, ``strict``,
``oneOf``, ``allOf``, ``not``, ...) is left out. Tool parameters use the same translation.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import JsonObject

# Parameters translated (or consumed) here; any other parameter is dropped with a warning.
TRANSLATED_PARAMS = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
    "max_completion_tokens", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "response_format", "reasoning_effort", "tools", "tool_choice",
})  # fmt: skip

TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
THINKING_LEVELS = {
    "none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM",
    "high": "HIGH", "xhigh": "XHIGH",
}  # fmt: skip

SCHEMA_PASSED = frozenset({
    "description", "title", "nullable", "default", "example", "minimum", "maximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties",
    "maxProperties", "propertyOrdering",
})  # fmt: skip
SCHEMA_FORMATS = frozenset({"date-time", "enum", "float", "double", "int32", "int64"})
MAX_SCHEMA_DEPTH = 32

# Gemini 3 rejects a replayed functionCall part without its thought signature; the
# documented sentinel skips the check (https://ai.google.dev/gemini-api/docs/thought-signatures).
# TODO: round-trip the real signature once OpenAI messages have a place for provider state.
SKIP_SIGNATURE = "skip_thought_signature_validator"
SIGNED_MODELS = re.compile(r"^(?:models/)?gemini-([3-9]|\d{2,})")
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[^;,]*)*),(.*)$", re.DOTALL)


def _refuse(message: str, param: str | None = None) -> UpstreamError:
    """A request Gemini cannot express: the caller's to fix, never retried elsewhere."""
    return UpstreamError(
        message, status=400, error_type="invalid_request_error",
        code="unsupported_by_provider", param=param, retryable=False,
    )  # fmt: skip


def _text_of(content: Any) -> str:
    """The text of a message's content, whether a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _data_url_to_inline(url: str, param: str) -> JsonObject:
    match = DATA_URL.match(url)
    if match is None or ";base64" not in match.group(2):
        raise _refuse("only base64 data URLs can be sent to Gemini", param)
    data = match.group(3)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("the data URL is not valid base64", param) from None
    return {"inlineData": {"mimeType": match.group(1) or "application/octet-stream", "data": data}}


def openai_to_gemini_image(url: str, param: str) -> JsonObject:
    """An image part: data URLs inline, http(s) URLs as ``fileData`` for Google to fetch."""
    if url.startswith("data:"):
        return _data_url_to_inline(url, param)
    if urlsplit(url).scheme not in ("http", "https"):
        raise _refuse("image URLs must be data: or http(s) URLs", param)
    mime, _ = mimetypes.guess_type(urlsplit(url).path)
    return {"fileData": {"mimeType": mime or "image/jpeg", "fileUri": url}}


def openai_to_gemini_part(part: Any, param: str) -> JsonObject:
    """One content part of a user message."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"text": part["text"]}
    if kind == "image_url":
        return openai_to_gemini_image(part["image_url"]["url"], param)
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        audio = part["input_audio"]
        mime = "audio/mp3" if audio.get("format") == "mp3" else "audio/wav"
        return {"inlineData": {"mimeType": mime, "data": str(audio.get("data", ""))}}
    if kind == "file" and isinstance(part.get("file"), dict):
        data = part["file"].get("file_data")
        if isinstance(data, str) and data.startswith("data:"):
            return _data_url_to_inline(data, param)
    raise _refuse(f"content parts of type {kind!r} cannot be sent to Gemini", param)


def _user_parts(content: Any, param: str) -> list[JsonObject]:
    if isinstance(content, list):
        return [openai_to_gemini_part(p, f"{param}[{i}]") for i, p in enumerate(content)]
    return [{"text": content or ""}]


def _parse_arguments(raw: Any, param: str) -> JsonObject:
    if isinstance(raw, dict):
        return raw
    try:
        args = orjson.loads(raw or "{}")
    except (orjson.JSONDecodeError, TypeError):
        raise _refuse("tool call arguments must be a JSON object", param) from None
    if not isinstance(args, dict):
        raise _refuse("tool call arguments must be a JSON object", param)
    return args


def _assistant_parts(
    message: JsonObject, param: str, names: dict[str, str], *, signed: bool
) -> list[JsonObject]:
    parts: list[JsonObject] = []
    text = _text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    calls = list(message.get("tool_calls") or ())
    if isinstance(message.get("function_call"), dict):
        calls.append({"id": "", "function": message["function_call"]})
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _refuse("each tool call needs a function name", f"{param}.tool_calls")
        names[str(call.get("id", ""))] = function["name"]
        args = _parse_arguments(function.get("arguments"), f"{param}.tool_calls[{index}]")
        part: JsonObject = {"functionCall": {"name": function["name"], "args": args}}
        if signed:
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def _tool_result_part(message: JsonObject, param: str, names: Mapping[str, str]) -> JsonObject:
    name = message.get("name") if message.get("role") == "function" else None
    name = name or names.get(str(message.get("tool_call_id")))
    if not isinstance(name, str):
        raise _refuse("a tool message answers no earlier tool call", f"{param}.tool_call_id")
    output = _text_of(message.get("content"))
    return {"functionResponse": {"name": name, "response": {"output": output}}}


def openai_to_gemini_contents(
    messages: list[JsonObject], *, signed: bool = False
) -> tuple[list[JsonObject], list[JsonObject]]:
    """``(systemInstruction parts, contents)`` for OpenAI messages, same-role turns merged."""
    system: list[JsonObject] = []
    contents: list[JsonObject] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        role, param = message.get("role"), f"messages[{index}]"
        if role in ("system", "developer"):
            system.append({"text": _text_of(message.get("content"))})
            continue
        if role == "assistant":
            turn, parts = "model", _assistant_parts(message, param, names, signed=signed)
        elif role in ("tool", "function"):
            turn, parts = "user", [_tool_result_part(message, param, names)]
        else:
            turn, parts = "user", _user_parts(message.get("content"), f"{param}.content")
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": turn, "parts": parts})
    return system, contents


def _resolve_ref(ref: str, root: JsonObject) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            defs = root.get(prefix[2:-1]) or {}
            if ref[len(prefix) :] in defs:
                return defs[ref[len(prefix) :]]
    raise _refuse(f"schema reference {ref!r} cannot be resolved", "response_format")


def _schema_type(schema: JsonObject, out: JsonObject) -> None:
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or ())
    if "null" in kinds:
        out["nullable"] = True
        kinds.remove("null")
    if kinds:
        out["type"] = str(kinds[0]).upper()


def openai_to_gemini_schema(schema: Any, root: Any = None, depth: int = 0) -> JsonObject:
    """A JSON Schema as Gemini's OpenAPI-style ``Schema`` (see the module docstring)."""
    if not isinstance(schema, dict):
        return {}
    root = schema if root is None else root
    if depth > MAX_SCHEMA_DEPTH:
        raise _refuse("recursive JSON schemas cannot be sent to Gemini", "response_format")
    if isinstance(schema.get("$ref"), str):
        return openai_to_gemini_schema(_resolve_ref(schema["$ref"], root), root, depth + 1)
    out: JsonObject = {k: v for k, v in schema.items() if k in SCHEMA_PASSED}
    _schema_type(schema, out)
    if schema.get("format") in SCHEMA_FORMATS:
        out["format"] = schema["format"]
    enum = [schema["const"]] if "const" in schema else schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: openai_to_gemini_schema(sub, root, depth + 1)
            for name, sub in schema["properties"].items()
        }
    if isinstance(schema.get("required"), list):
        out["required"] = list(schema["required"])
    if isinstance(schema.get("items"), dict):
        out["items"] = openai_to_gemini_schema(schema["items"], root, depth + 1)
    if isinstance(schema.get("anyOf"), list):
        variants = [
            v for v in schema["anyOf"] if not (isinstance(v, dict) and v == {"type": "null"})
        ]
        if len(variants) < len(schema["anyOf"]):
            out["nullable"] = True
        out["anyOf"] = [openai_to_gemini_schema(v, root, depth + 1) for v in variants]
    return out


def openai_to_gemini_tools(tools: list[Any]) -> list[JsonObject]:
    """``tools`` as one Gemini tool holding every function declaration."""
    declarations = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise _refuse("Gemini takes only function tools", f"tools[{index}]")
        declaration: JsonObject = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and parameters.get("properties"):
            declaration["parameters"] = openai_to_gemini_schema(parameters)
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def openai_to_gemini_tool_config(tool_choice: Any) -> JsonObject:
    """``tool_choice`` as ``toolConfig``."""
    if isinstance(tool_choice, str) and tool_choice in TOOL_CHOICE_MODES:
        return {"functionCallingConfig": {"mode": TOOL_CHOICE_MODES[tool_choice]}}
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        config = {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
        return {"functionCallingConfig": config}
    raise _refuse("this tool_choice cannot be expressed for Gemini", "tool_choice")


def _response_format_config(response_format: Any) -> JsonObject:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = openai_to_gemini_schema(spec.get("schema")) if isinstance(spec, dict) else {}
        config: JsonObject = {"responseMimeType": "application/json"}
        if schema:
            config["responseSchema"] = schema
        return config
    return {}


def openai_to_gemini_generation_config(body: JsonObject) -> JsonObject:
    """``generationConfig`` from the sampling and output parameters."""
    config: JsonObject = {}
    pairs = (
        ("temperature", "temperature"), ("top_p", "topP"), ("max_tokens", "maxOutputTokens"),
        ("max_completion_tokens", "maxOutputTokens"), ("n", "candidateCount"),
        ("seed", "seed"), ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    )  # fmt: skip
    for openai_name, gemini_name in pairs:
        if body.get(openai_name) is not None:
            config[gemini_name] = body[openai_name]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format_config(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_LEVELS:
            raise _refuse(f"reasoning_effort {effort!r} has no Gemini level", "reasoning_effort")
        config["thinkingConfig"] = {"thinkingLevel": THINKING_LEVELS[effort]}
    return config


def openai_to_gemini_request(body: JsonObject, upstream_model: str) -> JsonObject:
    """The ``GenerateContentRequest`` body for an OpenAI chat body."""
    signed = SIGNED_MODELS.match(upstream_model) is not None
    system, contents = openai_to_gemini_contents(body["messages"], signed=signed)
    request: JsonObject = {"contents": contents}
    if system and contents:
        request["systemInstruction"] = {"parts": system}
    elif system:
        # Gemini needs at least one turn; a system-only conversation is sent as the user's.
        request["contents"] = [{"role": "user", "parts": system}]
    if body.get("tools"):
        request["tools"] = openai_to_gemini_tools(body["tools"])
    if body.get("tool_choice") is not None:
        request["toolConfig"] = openai_to_gemini_tool_config(body["tool_choice"])
    config = openai_to_gemini_generation_config(body)
    if config:
        request["generationConfig"] = config
    return request
