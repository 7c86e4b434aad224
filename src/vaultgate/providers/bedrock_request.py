"""Translating OpenAI chat requests into Bedrock ``Converse``/``ConverseStream`` bodies.

Field names follow the Converse API reference
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html) and the
``bedrock-runtime`` service model shipped with botocore. Responses, streams and errors are
in ``bedrock``.

=========================  ==========================================================
OpenAI                     Converse
=========================  ==========================================================
messages                   ``messages`` + ``system`` (below)
model, stream              the URL (``/model/{modelId}/converse`` or ``-stream``)
stream_options             consumed: Bedrock always reports usage in streams
max_completion_tokens      ``inferenceConfig.maxTokens`` (wins over max_tokens)
max_tokens                 ``inferenceConfig.maxTokens``
temperature                ``inferenceConfig.temperature``, clamped to Converse's 0–1
top_p                      ``inferenceConfig.topP``
stop                       ``inferenceConfig.stopSequences``
tools (function)           ``toolConfig.tools[].toolSpec{name, description,
                           inputSchema.json}``; other tool types refused
tool_choice                auto ``{auto: {}}``, required ``{any: {}}``, a named function
                           ``{tool: {name}}``; ``none`` sends no ``toolConfig`` at all
                           (Converse has no "none"), unless the history holds tool calls,
                           which Converse only accepts with ``toolConfig``: then
                           tool_choice is dropped with a warning and tools stay on auto
response_format            json_schema: ``outputConfig.textFormat`` (type ``json_schema``,
                           the schema as a JSON string, its name and description);
                           json_object refused (Converse constrains output only to a
                           schema); text: nothing
n                          1 honoured; more refused here, as Converse answers once (the
                           gateway fans ``n`` out, since ``supports_n`` is False)
parallel_tool_calls        true is Converse's behaviour; false dropped with a warning
everything else            dropped with a warning: user, seed, logprobs, top_logprobs,
                           presence_penalty, frequency_penalty, logit_bias, metadata,
                           store, service_tier, reasoning_effort, ...
=========================  ==========================================================

Messages: system and developer messages, wherever they are, become ``system`` text blocks
in order; user and assistant turns become ``messages`` with same-role neighbours merged
(Converse requires alternation); empty text is left out, as Converse rejects blank text
blocks. Assistant tool calls become ``toolUse`` blocks (arguments must be a JSON object);
tool messages become ``toolResult`` blocks of a user turn. Images: base64 data URLs become
``image.source.bytes`` with the format read from the bytes themselves (png, jpeg, gif or
webp); ``s3://`` URLs become ``image.source.s3Location``; http(s) URLs are refused, as
Converse cannot fetch them and fetching here would let callers make the gateway request
arbitrary URLs. The legacy ``function`` role and parts other than text and images are
refused. Refusals are 400 errors naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from vaultgate.errors import UpstreamError
from vaultgate.providers.base import JsonObject

# Parameters translated (or consumed) here; any other parameter is dropped with a warning.
TRANSLATED_PARAMS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "stop", "tools", "tool_choice", "response_format", "n",
})  # fmt: skip
MAX_TEMPERATURE = 1.0
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[^;,]*)*),(.*)$", re.DOTALL)
# Converse's image formats, by media type and by file extension.
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
TOOL_BLOCKS = ("toolUse", "toolResult")


def refuse(param: str, why: str) -> UpstreamError:
    """A request Converse cannot express: the caller's to fix, never retried elsewhere."""
    return UpstreamError(
        f"'{param}' cannot be sent to Bedrock: {why}",
        status=400, error_type="invalid_request_error", code="unsupported_parameter",
        param=param, retryable=False,
    )  # fmt: skip


def openai_to_converse_request(body: JsonObject) -> JsonObject:
    """The Converse body (everything but the model id, which goes in the URL)."""
    check_refused_params(body)
    system, messages = openai_to_converse_messages(body["messages"])

    request: JsonObject = {"messages": messages}
    if system:
        request["system"] = system
    inference = openai_to_converse_inference_config(body)
    if inference:
        request["inferenceConfig"] = inference
    tool_config = openai_to_converse_tool_config(body, has_tool_history(messages))
    if tool_config:
        request["toolConfig"] = tool_config
    output_config = openai_to_converse_output_config(body.get("response_format"))
    if output_config:
        request["outputConfig"] = output_config
    return request


def check_refused_params(body: JsonObject) -> None:
    """Raise for parameters whose meaning Converse cannot honour."""
    n = body.get("n")
    if n is not None and n != 1:
        raise refuse("n", "Converse returns one answer per request")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        raise refuse(
            "response_format",
            "Converse constrains output only to a JSON schema; use type json_schema",
        )


def has_tool_history(messages: list[JsonObject]) -> bool:
    """Whether translated turns carry ``toolUse`` or ``toolResult`` blocks."""
    return any(
        name in block for turn in messages for block in turn["content"] for name in TOOL_BLOCKS
    )


def openai_messages_have_tool_history(messages: Any) -> bool:
    """The same question asked of OpenAI messages, before translation."""
    return any(
        isinstance(m, dict) and (m.get("role") == "tool" or m.get("tool_calls"))
        for m in messages or ()
    )


def openai_to_converse_inference_config(body: JsonObject) -> JsonObject:
    """``maxTokens``, ``temperature`` (clamped), ``topP`` and ``stopSequences``."""
    config: JsonObject = {}
    for name in ("max_completion_tokens", "max_tokens"):
        if isinstance(body.get(name), int):
            config["maxTokens"] = body[name]
            break
    if body.get("temperature") is not None:
        # OpenAI accepts 0–2, Converse 0–1; the upper half of OpenAI's range is clamped.
        config["temperature"] = min(float(body["temperature"]), MAX_TEMPERATURE)
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or () if s]
    if stops:
        config["stopSequences"] = stops
    return config


# Messages.


def openai_to_converse_messages(messages: list[Any]) -> tuple[list[JsonObject], list[JsonObject]]:
    """``(system blocks, turns)``: system text in order, turns merged by role."""
    system: list[JsonObject] = []
    turns: list[JsonObject] = []
    for index, message in enumerate(messages):
        role, param = message.get("role"), f"messages[{index}]"
        if role in ("system", "developer"):
            text = _system_text(message.get("content"), f"{param}.content")
            if text:
                system.append({"text": text})
            continue
        converse_role, blocks = _message_blocks(message, param)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": converse_role, "content": blocks})
    return system, turns


def _message_blocks(message: JsonObject, param: str) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    if role == "user":
        return "user", openai_to_converse_content(message.get("content"), f"{param}.content")
    if role == "assistant":
        blocks = openai_to_converse_content(message.get("content"), f"{param}.content")
        for position, call in enumerate(message.get("tool_calls") or ()):
            blocks.append(openai_to_converse_tool_use(call, f"{param}.tool_calls[{position}]"))
        return "assistant", blocks
    if role == "tool":
        return "user", [openai_to_converse_tool_result(message, param)]
    raise refuse(f"{param}.role", f"the '{role}' role has no Converse equivalent")


def _system_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for position, part in enumerate(content or ()):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise refuse(f"{param}[{position}]", "system prompts take text only")
        texts.append(str(part.get("text") or ""))
    return "\n\n".join(text for text in texts if text)


def openai_to_converse_content(content: Any, param: str) -> list[JsonObject]:
    """Content blocks for an OpenAI content string or part list; blank text left out."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url") or "")
            blocks.append(openai_to_converse_image(url, f"{param}[{position}]"))
        else:
            raise refuse(f"{param}[{position}]", f"content parts of type '{kind}'")
    return blocks


def sniff_image_format(data: bytes) -> str | None:
    """The Converse format of image bytes, from their signature."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def openai_to_converse_image(url: str, param: str) -> JsonObject:
    """An ``image`` block: bytes for a data URL, an S3 location for ``s3://``."""
    if url.startswith("s3://"):
        extension = urlsplit(url).path.rsplit(".", 1)[-1].lower()
        if extension not in IMAGE_FORMATS:
            raise refuse(param, "S3 images must end in .png, .jpg, .jpeg, .gif or .webp")
        return {"image": {"format": IMAGE_FORMATS[extension], "source": {"s3Location": {
            "uri": url}}}}  # fmt: skip
    match = DATA_URL.match(url)
    if match is None:
        raise refuse(param, "images must be base64 data URLs or s3:// URLs; Converse "
                            "cannot fetch http(s) URLs")  # fmt: skip
    if ";base64" not in match.group(2):
        raise refuse(param, "image data URLs must be base64")
    try:
        data = base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise refuse(param, "the data URL is not valid base64") from None
    declared = (match.group(1) or "").removeprefix("image/")
    image_format = sniff_image_format(data) or IMAGE_FORMATS.get(declared)
    if image_format is None:
        raise refuse(param, "Converse takes PNG, JPEG, GIF and WebP images only")
    return {"image": {"format": image_format, "source": {"bytes": match.group(3)}}}


def openai_to_converse_tool_use(tool_call: Any, param: str) -> JsonObject:
    """A ``toolUse`` block for an assistant's tool call; arguments must be an object."""
    function = tool_call.get("function") if isinstance(tool_call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise refuse(f"{param}.function", "each tool call needs a function name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = arguments if isinstance(arguments, dict) else orjson.loads(arguments)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise refuse(f"{param}.function.arguments", "arguments must be a JSON object")
    return {"toolUse": {"toolUseId": tool_call.get("id"), "name": function["name"],
                        "input": parsed}}  # fmt: skip


def openai_to_converse_tool_result(message: JsonObject, param: str) -> JsonObject:
    """A ``toolResult`` block: text (and image) content for the tool call it answers."""
    content = message.get("content")
    if isinstance(content, list):
        blocks = openai_to_converse_content(content, f"{param}.content")
    else:
        blocks = [{"text": str(content or "")}]
    result = {"toolUseId": message.get("tool_call_id"), "content": blocks or [{"text": ""}]}
    return {"toolResult": result}


# Tools and output format.


def openai_to_converse_tool_config(body: JsonObject, tool_history: bool) -> JsonObject:
    """``toolConfig``; nothing without tools, or for ``none`` when the history allows it."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools:
        if tool_history:
            raise refuse("tools", "Converse needs the tools declared when the conversation "
                                  "holds tool calls or results")  # fmt: skip
        return {}
    if choice == "none" and not tool_history:
        return {}
    config: JsonObject = {"tools": [openai_to_converse_tool(t, i) for i, t in enumerate(tools)]}
    if choice is not None and choice != "none":
        config["toolChoice"] = openai_to_converse_tool_choice(choice)
    return config


def openai_to_converse_tool(tool: Any, position: int) -> JsonObject:
    """One ``toolSpec``; its parameters schema goes under ``inputSchema.json``."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise refuse(f"tools[{position}]", f"tools of type '{tool.get('type')}'")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    spec: JsonObject = {"name": function.get("name"), "inputSchema": {"json": schema}}
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def openai_to_converse_tool_choice(choice: Any) -> JsonObject:
    """auto → auto, required → any, a named function → tool."""
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"tool": {"name": (choice.get("function") or {}).get("name")}}
    raise refuse("tool_choice", f"the choice {choice!r}")


def openai_to_converse_output_config(response_format: Any) -> JsonObject:
    """``outputConfig.textFormat`` for a ``json_schema`` response format."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return {}
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise refuse("response_format", "json_schema needs a 'schema' object")
    # The schema travels as a JSON string (JsonSchemaDefinition.schema is a String).
    definition: JsonObject = {"schema": orjson.dumps(spec["schema"]).decode()}
    for key in ("name", "description"):
        if isinstance(spec.get(key), str):
            definition[key] = spec[key]
    text_format = {"type": "json_schema", "structure": {"jsonSchema": definition}}
    return {"textFormat": text_format}
