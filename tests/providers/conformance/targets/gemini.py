"""The Gemini API adapter, on the fake in ``tests/support/fake_gemini.py``."""

from __future__ import annotations

import base64
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.providers.conformance.protocol import (
    PNG_BASE64,
    Facts,
    ImageInput,
    Sent,
    Target,
    ToolResult,
    ToolUse,
    Turn,
)
from tests.support.fake_gemini import CALLS, JSON_REPLY, REPLY, FakeGemini
from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.http import HttpClient

API_KEY = "gemini-conformance-0123456789"
MODES = {"AUTO": "auto", "NONE": "none", "ANY": "required"}


def _image(part: JsonObject) -> ImageInput:
    if "inlineData" in part:
        inline = part["inlineData"]
        return ImageInput(media_type=inline["mimeType"], data=inline["data"])
    return ImageInput(media_type=part["fileData"].get("mimeType"), url=part["fileData"]["fileUri"])


def _tool_choice(config: Any) -> str | None:
    calling = (config or {}).get("functionCallingConfig")
    if not calling:
        return None
    allowed = calling.get("allowedFunctionNames") or []
    if calling.get("mode") == "ANY" and len(allowed) == 1:
        return f"function:{allowed[0]}"
    return MODES.get(calling.get("mode", ""))


def _json_output(config: JsonObject) -> str | None:
    if config.get("responseMimeType") != "application/json":
        return None
    return "schema" if config.get("responseSchema") else "object"


def read_sent(body: JsonObject, *, stream: bool) -> Sent:
    """A ``GenerateContentRequest`` in the cases' terms."""
    parts = [part for content in body["contents"] for part in content["parts"]]
    config = body.get("generationConfig") or {}
    system = (body.get("systemInstruction") or {}).get("parts") or []
    declarations = [d for tool in body.get("tools") or () for d in tool["functionDeclarations"]]
    return Sent(
        stream=stream,
        system="\n\n".join(part["text"] for part in system),
        turns=[
            Turn(
                "assistant" if content["role"] == "model" else content["role"],
                [part["text"] for part in content["parts"] if "text" in part],
            )
            for content in body["contents"]
        ],
        images=[_image(p) for p in parts if "inlineData" in p or "fileData" in p],
        tools=[declaration["name"] for declaration in declarations],
        tool_choice=_tool_choice(body.get("toolConfig")),
        tool_uses=[
            ToolUse(
                p["functionCall"].get("id"), p["functionCall"]["name"], p["functionCall"]["args"]
            )
            for p in parts
            if "functionCall" in p
        ],
        tool_results=[
            ToolResult(
                p["functionResponse"].get("id"),
                p["functionResponse"]["name"],
                str(p["functionResponse"]["response"].get("output")),
            )
            for p in parts
            if "functionResponse" in p
        ],
        stop=list(config.get("stopSequences") or ()),
        max_output_tokens=config.get("maxOutputTokens"),
        json_output=_json_output(config),
        json_schema=config.get("responseSchema"),
    )


def _sdk_contents(scenario: str) -> Any:
    if scenario != "image-input":
        return "hi"
    image = genai_types.Part.from_bytes(data=base64.b64decode(PNG_BASE64), mime_type="image/png")
    return [image, "hi"]


def _answered(call: Any) -> ToolUse:
    """A call the fake answers; Gemini's calls carry no id (the adapter makes them)."""
    return ToolUse(None, call["name"], call["args"])


class GeminiTarget(Target[FakeGemini]):
    """The ``gemini`` wire format."""

    name = "gemini"
    facts = Facts(
        reply="".join(REPLY),
        usage=Usage(prompt_tokens=11, completion_tokens=3),
        tool_calls=(_answered(CALLS[0]),),
        parallel_tool_calls=tuple(_answered(call) for call in CALLS),
        no_argument_call="tool-no-args",
        json_reply=JSON_REPLY,
        # promptTokenCount includes the cached part; thoughts count as completion.
        detailed_usage=(
            "thinking",
            Usage(prompt_tokens=120, completion_tokens=37, cached_tokens=100, reasoning_tokens=30),
        ),
        retry_after="17",
        alternating_roles=True,
    )

    def start(self) -> FakeGemini:
        """The fake ``generateContent`` server."""
        return FakeGemini().start()

    def config(self, server: FakeGemini) -> ProviderConfig:
        """The provider at the fake's root URL."""
        return ProviderConfig(
            name="gemini", wire_format="gemini", base_url=server.base_url, api_key=API_KEY
        )

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Gemini API adapter."""
        return GeminiAdapter(config, http)

    def received(self, server: FakeGemini, upstream: str) -> Sent:
        """The request made to ``models/{upstream}``."""
        recorded = server.received(upstream)
        assert recorded.headers["x-goog-api-key"] == API_KEY
        return read_sent(recorded.body, stream=recorded.method == "streamGenerateContent")

    def sdk_status(self, server: FakeGemini, scenario: str, *, stream: bool) -> int | None:
        """``generate_content``, or every event of ``generate_content_stream``."""
        options = genai_types.HttpOptions(base_url=server.base_url, api_version="v1beta")
        config = genai_types.GenerateContentConfig(stop_sequences=["END"])
        request: dict[str, Any] = {
            "model": f"{scenario}~sdk-{'stream' if stream else 'whole'}",
            "contents": _sdk_contents(scenario),
            "config": config,
        }
        with genai.Client(api_key=API_KEY, http_options=options) as client:
            try:
                if stream:
                    events = list(client.models.generate_content_stream(**request))
                    assert events
                else:
                    client.models.generate_content(**request)
            except genai_errors.APIError as error:
                return error.code
        return None


TARGET = GeminiTarget()
