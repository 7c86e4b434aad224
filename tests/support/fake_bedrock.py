"""A real HTTP server speaking Bedrock's Converse and ConverseStream wire format, for adapter
and SDK tests.

It authenticates every request as AWS does: a Bedrock API key as a bearer token, or a SigV4
signature recomputed here from the request as received (written from the specification,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
sharing no code with VaultGate's signer) and answered with AWS's 403 error body on any
mismatch. Bodies are checked against the Converse API's rules (alternating turns starting
with a user turn, unions with exactly one member, no blank text, ``toolConfig`` required
with tool blocks...) and refused with a ``ValidationException``. Streams are encoded in
AWS's binary event stream with real CRC32s and written in small pieces, so frames arrive
split at arbitrary bytes.

The model id selects the answer: its last ``/`` part (for ARNs), without a ``~tag`` that
makes it unique or a ``:version`` suffix:

- ``plain``: text, ``end_turn``; ``reasoning``: a reasoning block, then text.
- ``tool``: text and one ``toolUse``; ``parallel-tools``: two ``toolUse`` blocks.
- ``stop-sequence``: stops on the request's first stop sequence; ``length``: ``max_tokens``.
- ``json``: JSON text; ``image-input``: answers only when an image block arrived.
- ``content-filter``: ``content_filtered``; ``guardrail``: ``guardrail_intervened``.
- ``cached``: usage with cache reads and writes.
- ``error-<status>``: AWS's error for that status (``x-amzn-ErrorType`` and ``{"message"}``);
  ``error-401`` is AWS's answer to unknown credentials (a 403); ``not-ready``:
  ``ModelNotReadyException``.
- ``stream-error``: text, then a ``modelStreamErrorException`` event (non-streamed: 424);
  ``stream-error-<exceptionType>``: that exception event instead.
- ``stream-corrupt``: the last message's CRC is wrong; ``stream-truncated``: the body ends
  inside the last message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.support.threaded_server import ThreadedServer

REPLY_WORDS = ["Hello", " from", " the", " fake", " Bedrock", "."]
JSON_REPLY = '{"answer": 42}'
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}
SECOND_TOOL_INPUT = {"city": "Tokyo", "unit": "celsius"}
USAGE = {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}
CACHED_USAGE = {
    "inputTokens": 5, "outputTokens": 7, "totalTokens": 132,
    "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20,
}  # fmt: skip
# AWS pads stream event payloads with a "p" member against length side channels.
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"
CORAL_SERVICE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
# (status, error type, message) per ``error-<status>`` scenario.
ERRORS = {
    400: (400, "ValidationException", "fake Bedrock error 400"),
    401: (403, "UnrecognizedClientException",
          "The security token included in the request is invalid."),
    403: (403, "AccessDeniedException", "fake Bedrock error 403"),
    404: (404, "ResourceNotFoundException", "fake Bedrock error 404"),
    408: (408, "ModelTimeoutException", "fake Bedrock error 408"),
    424: (424, "ModelErrorException", "fake Bedrock error 424"),
    429: (429, "ThrottlingException", "fake Bedrock error 429"),
    500: (500, "InternalServerException", "fake Bedrock error 500"),
    503: (503, "ServiceUnavailableException", "fake Bedrock error 503"),
}  # fmt: skip
TOP_LEVEL = frozenset({
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
    "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
    "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
})  # fmt: skip
CONTENT_MEMBERS = frozenset({
    "text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent",
    "cachePoint", "reasoningContent", "citationsContent", "searchResult",
})  # fmt: skip
IMAGE_MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "webp": b"RIFF"}
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


# The binary event stream, encoded from its specification.

Header = tuple[str, int, Any]  # (name, value type 0..9, value)


def _header_bytes(name: str, kind: int, value: Any) -> bytes:
    raw_name = name.encode()
    out = struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">B", kind)
    if kind in (0, 1):
        return out
    fixed = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
    if kind in fixed:
        return out + struct.pack(fixed[kind], value)
    if kind in (6, 7):
        data = value.encode() if kind == 7 else bytes(value)
        return out + struct.pack(">H", len(data)) + data
    if kind == 9:
        return out + bytes(value)
    raise ValueError(f"no header type {kind}")


def encode_message(headers: Iterable[Header], payload: bytes) -> bytes:
    """One event stream message, with its prelude and message CRC32s."""
    header_block = b"".join(_header_bytes(*header) for header in headers)
    total = 12 + len(header_block) + len(payload) + 4
    lengths = struct.pack(">II", total, len(header_block))
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    body = prelude + header_block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """An ``event`` message of a ConverseStream, padded as AWS pads them."""
    headers = [(":event-type", 7, event_type), (":content-type", 7, "application/json"),
               (":message-type", 7, "event")]  # fmt: skip
    return encode_message(headers, json.dumps({**payload, "p": PADDING}).encode())


def exception_message(exception_type: str, message: str) -> bytes:
    """An ``exception`` message (``:exception-type``) with its ``{"message"}`` payload."""
    headers = [
        (":exception-type", 7, exception_type),
        (":content-type", 7, "application/json"),
        (":message-type", 7, "exception"),
    ]
    return encode_message(headers, json.dumps({"message": message}).encode())


# SigV4, verified from its specification.


def _aws_encode(text: str) -> str:
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode())


def _canonical_query(query: str) -> str:
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((_aws_encode(unquote(name)), _aws_encode(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def expected_signature(
    request: web.Request, body: bytes, secret: str, scope: list[str], signed: list[str]
) -> str:
    """The signature AWS computes for the request as it arrived."""
    path, _, query = request.raw_path.partition("?")
    canonical_path = "/".join(_aws_encode(segment) for segment in path.split("/"))
    headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in request.headers.getall(name))}\n"
        for name in signed
    )
    canonical = "\n".join([
        request.method, canonical_path, _canonical_query(query), headers, ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    amz_date = request.headers["x-amz-date"]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(scope),
                         hashlib.sha256(canonical.encode()).hexdigest()])  # fmt: skip
    key = ("AWS4" + secret).encode()
    for part in scope:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def aws_error(status: int, error_type: str, message: str, namespace: str = CORAL) -> web.Response:
    """AWS's error answer: the type in ``x-amzn-ErrorType``, the message in the body."""
    headers = {"x-amzn-ErrorType": f"{error_type}:{namespace}",
               "x-amzn-RequestId": str(uuid.uuid4())}  # fmt: skip
    return web.json_response({"message": message}, status=status, headers=headers)


def _validation(message: str) -> web.Response:
    return aws_error(400, "ValidationException", message)


# Converse request rules.


def _blocks_problem(blocks: Any, where: str) -> str | None:
    if not isinstance(blocks, list) or not blocks:
        return f"The content field in the {where} is empty. Add a ContentBlock object."
    for position, block in enumerate(blocks):
        members = [k for k in block if k in CONTENT_MEMBERS] if isinstance(block, dict) else []
        if len(members) != 1 or len(block) != 1:
            return f"{where}.content.{position}: a ContentBlock must set exactly one member"
        member, value = members[0], block[members[0]]
        if member == "text" and (not isinstance(value, str) or not value.strip()):
            return (
                f"The text field in the ContentBlock object at {where}.content.{position} "
                "is blank. Add text to the text field, and try again."
            )
        problem = _member_problem(member, value, f"{where}.content.{position}")
        if problem:
            return problem
    return None


def _member_problem(member: str, value: Any, where: str) -> str | None:
    if member == "image":
        return _image_problem(value, where)
    if member == "toolUse":
        ok = isinstance(value.get("toolUseId"), str) and isinstance(value.get("name"), str)
        if not ok or not isinstance(value.get("input"), dict):
            return f"{where}.toolUse: toolUseId, name and an input object are required"
    if member == "toolResult":
        if not isinstance(value.get("toolUseId"), str):
            return f"{where}.toolResult.toolUseId: required"
        content = value.get("content")
        if not isinstance(content, list) or not all(
            isinstance(b, dict) and len(b) == 1 for b in content
        ):
            return f"{where}.toolResult.content must be a list of ToolResultContentBlocks"
    return None


def _image_problem(image: Any, where: str) -> str | None:
    if not isinstance(image, dict) or image.get("format") not in IMAGE_MAGIC:
        return f"{where}.image.format must be one of png, jpeg, gif, webp"
    source = image.get("source")
    if not isinstance(source, dict) or len(source) != 1:
        return f"{where}.image.source must set exactly one of bytes, s3Location"
    if "s3Location" in source:
        return None
    try:
        data = base64.b64decode(source.get("bytes") or "", validate=True)
    except (binascii.Error, ValueError):
        return f"{where}.image.source.bytes is not valid base64"
    if not data.startswith(IMAGE_MAGIC[image["format"]]):
        return "The provided image does not match the specified image format."
    return None


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return (
            "A conversation must start with a user message. Try again with a "
            "conversation that starts with a user message."
        )
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{index}.role must be user or assistant"
        if index == 0 and role != "user":
            return (
                "A conversation must start with a user message. Try again with a "
                "conversation that starts with a user message."
            )
        if index and messages[index - 1]["role"] == role:
            return (
                "A conversation must alternate between user and assistant roles. Make "
                "sure the conversation alternates between user and assistant roles and "
                "try again."
            )
        problem = _blocks_problem(message.get("content"), f"messages.{index}")
        if problem:
            return problem
    return None


def _config_problem(body: dict[str, Any]) -> str | None:
    inference = body.get("inferenceConfig") or {}
    if set(inference) - {"maxTokens", "temperature", "topP", "stopSequences"}:
        return "inferenceConfig has unknown members"
    if "maxTokens" in inference and not (isinstance(inference["maxTokens"], int)
                                         and inference["maxTokens"] >= 1):  # fmt: skip
        return "inferenceConfig.maxTokens must be at least 1"
    for name in ("temperature", "topP"):
        if name in inference and not 0 <= inference[name] <= 1:
            return f"inferenceConfig.{name} must be between 0 and 1"
    system = body.get("system")
    if system is not None and not all(
        isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"] for b in system
    ):
        return "system: each SystemContentBlock needs non-empty text"
    return _tool_config_problem(body) or _output_config_problem(body.get("outputConfig"))


def _tool_config_problem(body: dict[str, Any]) -> str | None:
    config = body.get("toolConfig")
    uses_tools = any(
        "toolUse" in block or "toolResult" in block
        for message in body["messages"] for block in message["content"]
    )  # fmt: skip
    if config is None:
        if uses_tools:
            return (
                "The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks."
            )
        return None
    tools = config.get("tools")
    if not isinstance(tools, list) or not tools:
        return "toolConfig.tools must hold at least one tool"
    for tool in tools:
        spec = tool.get("toolSpec") if isinstance(tool, dict) and len(tool) == 1 else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return "toolConfig.tools: each Tool must set toolSpec with a name"
        if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
            return "toolConfig.tools.toolSpec.inputSchema.json must be a JSON object"
    choice = config.get("toolChoice")
    if choice is not None and (not isinstance(choice, dict) or len(choice) != 1
                               or next(iter(choice)) not in ("auto", "any", "tool")):  # fmt: skip
        return "toolConfig.toolChoice must set exactly one of auto, any, tool"
    return None


def _output_config_problem(config: Any) -> str | None:
    if config is None:
        return None
    text_format = config.get("textFormat") if isinstance(config, dict) else None
    if not isinstance(text_format, dict) or text_format.get("type") != "json_schema":
        return "outputConfig.textFormat.type must be json_schema"
    definition = (text_format.get("structure") or {}).get("jsonSchema") or {}
    try:
        schema = json.loads(str(definition.get("schema")))
    except (TypeError, ValueError):
        schema = None
    if not isinstance(schema, dict):
        return "outputConfig.textFormat.structure.jsonSchema.schema must be a JSON string"
    return None


def request_problem(body: Any) -> str | None:
    """What Converse would reject in a request body, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    unknown = sorted(set(body) - TOP_LEVEL)
    if unknown:
        return f"extraneous key [{unknown[0]}] is not permitted"
    return _messages_problem(body.get("messages")) or _config_problem(body)


# Answers.


@dataclass
class Script:
    """What the fake answers: content blocks, a stop reason and usage."""

    blocks: list[dict[str, Any]]
    stop_reason: str
    usage: dict[str, int] = field(default_factory=lambda: dict(USAGE))


def _tool_block(tool_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_id, "name": "get_weather", "input": arguments}}


def script_for(scenario: str, body: dict[str, Any]) -> Script:
    """The answer to a request for ``scenario``."""
    text = {"text": "".join(REPLY_WORDS)}
    scripts = {
        "tool": Script([{"text": "Let me check."}, _tool_block("tooluse_01", TOOL_INPUT)],
                       "tool_use"),
        "parallel-tools": Script([_tool_block("tooluse_01", TOOL_INPUT),
                                  _tool_block("tooluse_02", SECOND_TOOL_INPUT)], "tool_use"),
        "length": Script([{"text": "Hello from"}], "max_tokens"),
        "json": Script([{"text": JSON_REPLY}], "end_turn"),
        "content-filter": Script([], "content_filtered"),
        "guardrail": Script([{"text": "Sorry."}], "guardrail_intervened"),
        "cached": Script([text], "end_turn", dict(CACHED_USAGE)),
        "reasoning": Script([{"reasoningContent": {"reasoningText": {
            "text": "Thinking.", "signature": "sig"}}}, text], "end_turn"),
        "stop-sequence": Script([{"text": "Hello"}], "stop_sequence"),
    }  # fmt: skip
    return scripts.get(scenario, Script([text], "end_turn"))


def converse_response(script: Script) -> dict[str, Any]:
    """A ``ConverseResponse``."""
    message = {"role": "assistant", "content": script.blocks}
    return {
        "output": {"message": message},
        "stopReason": script.stop_reason,
        "usage": script.usage,
        "metrics": {"latencyMs": 42},
    }


def stream_messages(scenario: str, script: Script) -> list[bytes]:
    """The encoded messages of a ConverseStream answer, in AWS's order."""
    messages = [event_message("messageStart", {"role": "assistant"})]
    for index, block in enumerate(script.blocks):
        messages += _block_messages(index, block)
        if scenario.startswith("stream-error"):
            name = scenario.removeprefix("stream-error-") if "-error-" in scenario else ""
            return [*messages, exception_message(name or "modelStreamErrorException",
                                                 "fake Bedrock stream failure")]  # fmt: skip
    messages.append(event_message("messageStop", {"stopReason": script.stop_reason}))
    metadata = {"usage": script.usage, "metrics": {"latencyMs": 42}}
    return [*messages, event_message("metadata", metadata)]


def _block_messages(index: int, block: dict[str, Any]) -> list[bytes]:
    at = {"contentBlockIndex": index}
    deltas: list[dict[str, Any]]
    messages = []
    if "toolUse" in block:
        tool = block["toolUse"]
        start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
        messages.append(event_message("contentBlockStart", {**at, "start": start}))
        arguments = json.dumps(tool["input"])
        middle = len(arguments) // 2
        deltas = [{"toolUse": {"input": part}} for part in (arguments[:middle],
                                                            arguments[middle:])]  # fmt: skip
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]["reasoningText"]
        deltas = [{"reasoningContent": {"text": reasoning["text"]}},
                  {"reasoningContent": {"signature": reasoning["signature"]}}]  # fmt: skip
    else:
        words = block["text"].split(" ")
        deltas = [{"text": w} for w in [words[0]] + [" " + w for w in words[1:]]]
    for delta in deltas:
        messages.append(event_message("contentBlockDelta", {**at, "delta": delta}))
    messages.append(event_message("contentBlockStop", at))
    return messages


@dataclass
class Recorded:
    """One request the fake server received."""

    path: str  # as on the wire, percent-encoding kept
    model_id: str  # decoded
    headers: dict[str, str]  # names in lower case
    body: Any
    raw: bytes


@dataclass
class FakeBedrock(ThreadedServer):
    """Runs the server on 127.0.0.1 in a thread; ``requests`` records what arrived.

    ``credentials`` maps access key ids to ``(secret, session token or None)``;
    ``api_key`` is the Bedrock API key accepted as a bearer token.
    """

    credentials: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    api_key: str | None = None
    region: str = "us-east-1"
    chunk_size: int = 7
    requests: list[Recorded] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The root URL: clients append ``/model/{modelId}/converse``."""
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """The Converse and ConverseStream operations."""
        app.router.add_post("/model/{model_id}/converse", self._converse)
        app.router.add_post("/model/{model_id}/converse-stream", self._converse_stream)

    def find(self, marker: str) -> Recorded:
        """The one recorded request whose body contains ``marker``."""
        matches = [r for r in self.requests if marker.encode() in r.raw]
        assert len(matches) == 1, f"{len(matches)} requests carry {marker!r}"
        return matches[0]

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, stream=False)

    async def _converse_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, stream=True)

    async def _answer(self, request: web.Request, *, stream: bool) -> web.StreamResponse:
        raw = await request.read()
        model_id = unquote(request.raw_path.split("/")[2])
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(Recorded(request.raw_path, model_id, headers, body, raw))
        denied = self._authenticate(request, raw)
        if denied is not None:
            return denied
        scenario = model_id.rsplit("/", 1)[-1].split("~", 1)[0].split(":", 1)[0]
        failure = _scenario_error(scenario, stream=stream)
        if failure is not None:
            return failure
        problem = request_problem(body)
        if problem is not None:
            return _validation(problem)
        if scenario == "image-input" and not _has_image(body):
            return _validation("image-input: this model answers only requests with an image")
        script = script_for(scenario, body)
        if not stream:
            return web.json_response(
                converse_response(script), headers={"x-amzn-RequestId": str(uuid.uuid4())}
            )
        messages = stream_messages(scenario, script)
        if scenario == "stream-corrupt":
            messages[-1] = messages[-1][:-1] + bytes([messages[-1][-1] ^ 0xFF])
        if scenario == "stream-truncated":
            messages[-1] = messages[-1][:-10]
        return await self._stream(request, messages)

    async def _stream(self, request: web.Request, messages: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "x-amzn-RequestId": str(uuid.uuid4()),
        })  # fmt: skip
        await response.prepare(request)
        data = b"".join(messages)
        for start in range(0, len(data), self.chunk_size):
            await response.write(data[start : start + self.chunk_size])
        await response.write_eof()
        return response

    def _authenticate(self, request: web.Request, raw: bytes) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            if self.api_key is not None and hmac.compare_digest(authorization[7:], self.api_key):
                return None
            return aws_error(403, "UnrecognizedClientException", "Invalid API Key format: "
                             "Must start with pre-defined prefix", CORAL_SERVICE)  # fmt: skip
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return aws_error(403, "MissingAuthenticationTokenException",
                             "Missing Authentication Token", CORAL_SERVICE)  # fmt: skip
        return self._check_signature(request, raw, authorization)

    def _check_signature(
        self, request: web.Request, raw: bytes, authorization: str
    ) -> web.Response | None:
        fields = dict(
            part.strip().split("=", 1) for part in authorization[17:].split(",") if "=" in part
        )
        scope = fields.get("Credential", "").split("/")
        signed = fields.get("SignedHeaders", "").split(";")
        if len(scope) != 5 or not {"host", "x-amz-date"} <= set(signed):
            return aws_error(
                403, "IncompleteSignatureException", "Authorization header requires "
                "Credential, SignedHeaders, Signature and signing host and x-amz-date.",
                CORAL_SERVICE,
            )  # fmt: skip
        key_id, scope = scope[0], scope[1:]
        if key_id not in self.credentials:
            return aws_error(403, "UnrecognizedClientException",
                             "The security token included in the request is invalid.",
                             CORAL_SERVICE)  # fmt: skip
        secret, token = self.credentials[key_id]
        if token is not None and request.headers.get("x-amz-security-token") != token:
            return aws_error(403, "UnrecognizedClientException",
                             "The security token included in the request is invalid.",
                             CORAL_SERVICE)  # fmt: skip
        when = datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
        if abs(datetime.now(UTC) - when.replace(tzinfo=UTC)) > timedelta(minutes=15):
            return aws_error(403, "InvalidSignatureException", "Signature expired",
                             CORAL_SERVICE)  # fmt: skip
        content_hash = request.headers.get("x-amz-content-sha256")
        scope_ok = scope[0] == when.strftime("%Y%m%d") and scope[1:] == [
            self.region, "bedrock", "aws4_request"]  # fmt: skip
        hash_ok = content_hash in (None, hashlib.sha256(raw).hexdigest())
        expected = expected_signature(request, raw, secret, scope, signed)
        if scope_ok and hash_ok and hmac.compare_digest(expected, fields.get("Signature", "")):
            return None
        return aws_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH, CORAL_SERVICE)


def _scenario_error(scenario: str, *, stream: bool) -> web.Response | None:
    if scenario == "not-ready":
        return aws_error(429, "ModelNotReadyException", "Model is not ready for inference. "
                         "Wait and try your request again.")  # fmt: skip
    if scenario.startswith("stream-error") and not stream:
        return aws_error(424, "ModelErrorException", "fake Bedrock stream failure")
    if not scenario.startswith("error-"):
        return None
    status, error_type, message = ERRORS[int(scenario.removeprefix("error-"))]
    namespace = CORAL_SERVICE if status == 403 and error_type != "AccessDeniedException" else CORAL
    return aws_error(status, error_type, message, namespace)


def _has_image(body: dict[str, Any]) -> bool:
    return any("image" in block for message in body["messages"] for block in message["content"])
