"""Anthropic's Messages API adapter, on the fake in ``tests/support/fake_anthropic.py``."""

from __future__ import annotations

from typing import Any

import anthropic

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
from tests.support.fake_anthropic import (
    JSON_REPLY,
    REPLY_WORDS,
    SECOND_TOOL_INPUT,
    TOOL_INPUT,
    FakeAnthropic,
)
from vaultgate.providers.anthropic import AnthropicAdapter
from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient

API_KEY = "sk-ant-conformance-0123456789"
TOOL_CHOICES = {"auto": "auto", "none": "none", "any": "required"}


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [b["text"] for b in content or () if b.get("type") == "text"]


def _image(block: JsonObject) -> ImageInput:
    source = block["source"]
    if source["type"] == "url":
        return ImageInput(url=source["url"])
    return ImageInput(media_type=source["media_type"], data=source["data"])


def _tool_choice(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        return f"function:{choice['name']}"
    return TOOL_CHOICES.get(choice.get("type", ""))


def read_sent(body: JsonObject) -> Sent:
    """A Messages API request body in the cases' terms."""
    blocks = [
        block
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
    ]
    system = body.get("system") or ""
    return Sent(
        stream=body.get("stream") is True,
        system=system if isinstance(system, str) else "\n\n".join(_texts(system)),
        turns=[Turn(m["role"], _texts(m["content"])) for m in body["messages"]],
        images=[_image(b) for b in blocks if b["type"] == "image"],
        tools=[tool["name"] for tool in body.get("tools") or ()],
        tool_choice=_tool_choice(body.get("tool_choice")),
        tool_uses=[
            ToolUse(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"
        ],
        tool_results=[
            ToolResult(b["tool_use_id"], None, "".join(_texts(b.get("content"))))
            for b in blocks
            if b["type"] == "tool_result"
        ],
        stop=list(body.get("stop_sequences") or ()),
        max_output_tokens=body.get("max_tokens"),
    )


def _sdk_request(scenario: str) -> dict[str, Any]:
    content: Any = "hi"
    if scenario == "image-input":
        source = {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}
        content = [{"type": "image", "source": source}, {"type": "text", "text": "hi"}]
    return {
        "model": f"{scenario}~sdk",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
        "stop_sequences": ["END"],
    }


class AnthropicTarget(Target[FakeAnthropic]):
    """The ``anthropic`` wire format."""

    name = "anthropic"
    facts = Facts(
        reply="".join(REPLY_WORDS),
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        tool_calls=(ToolUse("toolu_01", "get_weather", TOOL_INPUT),),
        parallel_tool_calls=(
            ToolUse("toolu_01", "get_weather", TOOL_INPUT),
            ToolUse("toolu_02", "get_weather", SECOND_TOOL_INPUT),
        ),
        no_argument_call="tool-no-args",
        json_reply=JSON_REPLY,
        # Cache reads and writes are part of the prompt; reads are its cached part.
        detailed_usage=(
            "cached",
            Usage(prompt_tokens=125, completion_tokens=7, cached_tokens=100),
        ),
        retry_after="7",
        alternating_roles=True,
        json_output=False,
        default_max_tokens=2048,
    )

    def start(self) -> FakeAnthropic:
        """The fake Messages API."""
        return FakeAnthropic().start()

    def config(self, server: FakeAnthropic) -> ProviderConfig:
        """The provider at the fake's root URL."""
        return ProviderConfig(
            name="anthropic", wire_format="anthropic", base_url=server.base_url, api_key=API_KEY
        )

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Messages API adapter."""
        return AnthropicAdapter(config, http)

    def received(self, server: FakeAnthropic, upstream: str) -> Sent:
        """The request whose ``model`` is ``upstream``."""
        [recorded] = [r for r in server.requests if r.body.get("model") == upstream]
        assert recorded.path == "/v1/messages"
        assert recorded.headers["x-api-key"] == API_KEY
        return read_sent(recorded.body)

    def sdk_status(self, server: FakeAnthropic, scenario: str, *, stream: bool) -> int | None:
        """``messages.create``, or ``messages.stream`` rebuilt into its final message."""
        with anthropic.Anthropic(
            base_url=server.base_url, api_key=API_KEY, max_retries=0
        ) as client:
            try:
                if stream:
                    with client.messages.stream(**_sdk_request(scenario)) as events:
                        message = events.get_final_message()
                else:
                    message = client.messages.create(**_sdk_request(scenario))
            except anthropic.APIStatusError as error:
                return error.status_code
        assert message.stop_reason is not None
        return None


TARGET = AnthropicTarget()
