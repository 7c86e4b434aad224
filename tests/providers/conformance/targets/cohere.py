"""Cohere's v2 Chat API adapter, on the fake in ``tests/support/fake_cohere.py``."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import cohere
import httpx

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
from tests.support.fake_cohere import (
    BILLED,
    CACHED,
    JSON_REPLY,
    REPLY_WORDS,
    TOOL_CALLS,
    FakeCohere,
)
from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.cohere import CohereAdapter
from vaultgate.providers.http import HttpClient

API_KEY = "co-conformance-0123456789"
TOOL_CHOICES = {None: "auto", "NONE": "none", "REQUIRED": "required"}


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content or () if p.get("type") == "text"]


def _image(url: str) -> ImageInput:
    if not url.startswith("data:"):
        return ImageInput(url=url)
    header, _, data = url.partition(",")
    return ImageInput(media_type=header.removeprefix("data:").split(";")[0], data=data)


def _turn(message: JsonObject) -> Turn:
    """A turn's texts; an assistant's text before tool calls is its ``tool_plan``."""
    texts = _texts(message.get("content"))
    if message.get("tool_plan"):
        texts = [message["tool_plan"], *texts]
    return Turn(message["role"], texts)


def read_sent(body: JsonObject) -> Sent:
    """A v2 chat body in the cases' terms."""
    messages = body["messages"]
    turns = [m for m in messages if m["role"] != "system"]
    parts = [p for m in messages if isinstance(m.get("content"), list) for p in m["content"]]
    calls = [call for m in messages for call in m.get("tool_calls") or ()]
    response_format = body.get("response_format") or {}
    json_output = None
    if response_format.get("type") == "json_object":
        json_output = "schema" if response_format.get("json_schema") else "object"
    return Sent(
        stream=body.get("stream") is True,
        system="\n\n".join(
            t for m in messages if m["role"] == "system" for t in _texts(m["content"])
        ),
        turns=[_turn(m) for m in turns],
        images=[_image(p["image_url"]["url"]) for p in parts if p.get("type") == "image_url"],
        tools=[tool["function"]["name"] for tool in body.get("tools") or ()],
        tool_choice=TOOL_CHOICES.get(body.get("tool_choice")),
        tool_uses=[
            ToolUse(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in calls
        ],
        tool_results=[
            ToolResult(m["tool_call_id"], None, "".join(_texts(m["content"])))
            for m in messages
            if m["role"] == "tool"
        ],
        stop=list(body.get("stop_sequences") or ()),
        max_output_tokens=body.get("max_tokens"),
        json_output=json_output,
        json_schema=response_format.get("json_schema"),
    )


def _sdk_request(scenario: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "hi"}]
    if scenario == "image-input":
        url = f"data:image/png;base64,{PNG_BASE64}"
        content.append({"type": "image_url", "image_url": {"url": url}})
    return {
        "model": f"{scenario}~sdk",
        "messages": [{"role": "user", "content": content}],
        "stop_sequences": ["END"],
    }


class CohereTarget(Target[FakeCohere]):
    """The ``cohere`` wire format."""

    name = "cohere"
    facts = Facts(
        reply="".join(REPLY_WORDS),
        # Billed units, not all tokens: what Cohere charges for.
        usage=Usage(
            prompt_tokens=BILLED["input_tokens"], completion_tokens=BILLED["output_tokens"]
        ),
        tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS[:1]),
        parallel_tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS),
        json_reply=JSON_REPLY,
        detailed_usage=(
            "cached",
            Usage(
                prompt_tokens=BILLED["input_tokens"],
                completion_tokens=BILLED["output_tokens"],
                cached_tokens=CACHED,
            ),
        ),
        retry_after="7",
    )
    not_applicable = MappingProxyType(
        {
            "content-filter": "Cohere has no safety stop",
            "tool-choice": (
                "Cohere cannot name a function in tool_choice; a named choice is sent as "
                "REQUIRED with only that function offered (tests/providers/test_cohere.py)"
            ),
        }
    )

    def start(self) -> FakeCohere:
        """The fake v2 Chat API."""
        return FakeCohere(api_key=API_KEY).start()

    def config(self, server: FakeCohere) -> ProviderConfig:
        """The provider at the fake's root URL."""
        return ProviderConfig(
            name="cohere", wire_format="cohere", base_url=server.base_url, api_key=API_KEY
        )

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The v2 Chat API adapter."""
        return CohereAdapter(config, http)

    def received(self, server: FakeCohere, upstream: str) -> Sent:
        """The request whose ``model`` is ``upstream``."""
        [recorded] = [r for r in server.requests if r.body.get("model") == upstream]
        assert recorded.path == "/v2/chat"
        assert recorded.headers["authorization"] == f"Bearer {API_KEY}"
        return read_sent(recorded.body)

    def sdk_status(self, server: FakeCohere, scenario: str, *, stream: bool) -> int | None:
        """``chat``, or ``chat_stream`` read to its ``message-end``. A stream that ends
        with ``ERROR`` is an error inside a 200 stream: the SDK reports it, not raises."""
        request = _sdk_request(scenario)
        with httpx.Client() as transport:
            client = cohere.ClientV2(
                api_key=API_KEY, base_url=server.base_url, max_retries=0,
                httpx_client=transport, log_warning_experimental_features=False,
            )  # fmt: skip
            try:
                if stream:
                    events = list(client.chat_stream(**request))
                    end = events[-1]
                    assert end.type == "message-end"
                    assert end.delta is not None
                    finish = end.delta.finish_reason
                else:
                    finish = client.chat(**request).finish_reason
            except cohere.core.api_error.ApiError as error:
                return error.status_code
        return 200 if finish == "ERROR" else None


TARGET = CohereTarget()
