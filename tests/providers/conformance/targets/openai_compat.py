"""The OpenAI-compatible adapter, on the fake in ``tests/support/fake_openai.py``."""

from __future__ import annotations

import json
from typing import Any

import openai

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
from tests.support.fake_openai import JSON_REPLY, REPLY_WORDS, TOOL_CALLS, FakeOpenAI
from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter

API_KEY = "sk-conformance-0123456789"


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content or () if p.get("type") == "text"]


def _image(url: str) -> ImageInput:
    if not url.startswith("data:"):
        return ImageInput(url=url)
    header, _, data = url.partition(",")
    return ImageInput(media_type=header.removeprefix("data:").split(";")[0], data=data)


def _tool_choice(choice: Any) -> str | None:
    if isinstance(choice, dict):
        return f"function:{choice['function']['name']}"
    return choice if isinstance(choice, str) else None


def _json_schema(response_format: JsonObject) -> JsonObject | None:
    spec = response_format.get("json_schema")
    return spec.get("schema") if isinstance(spec, dict) else None


def read_sent(body: JsonObject) -> Sent:
    """A chat-completions request body in the cases' terms."""
    messages = body["messages"]
    turns = [m for m in messages if m["role"] not in ("system", "developer")]
    parts = [p for m in messages if isinstance(m.get("content"), list) for p in m["content"]]
    calls = [call for m in messages for call in m.get("tool_calls") or ()]
    stop = body.get("stop") or []
    response_format = body.get("response_format") or {}
    kind = response_format.get("type", "")
    return Sent(
        stream=body.get("stream") is True,
        system="\n\n".join(
            text
            for m in messages
            if m["role"] in ("system", "developer")
            for text in _texts(m["content"])
        ),
        turns=[Turn(m["role"], _texts(m.get("content"))) for m in turns],
        images=[_image(p["image_url"]["url"]) for p in parts if p.get("type") == "image_url"],
        tools=[tool["function"]["name"] for tool in body.get("tools") or ()],
        tool_choice=_tool_choice(body.get("tool_choice")),
        tool_uses=[
            ToolUse(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in calls
        ],
        tool_results=[
            ToolResult(m["tool_call_id"], None, "".join(_texts(m["content"])))
            for m in messages
            if m["role"] == "tool"
        ],
        stop=[stop] if isinstance(stop, str) else list(stop),
        max_output_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        json_output={"json_object": "object", "json_schema": "schema"}.get(kind),
        json_schema=_json_schema(response_format),
    )


def _sdk_messages(scenario: str) -> Any:
    if scenario != "image-input":
        return [{"role": "user", "content": "hi"}]
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}
    return [{"role": "user", "content": [image, {"type": "text", "text": "hi"}]}]


class OpenAICompatibleTarget(Target[FakeOpenAI]):
    """The ``openai`` wire format."""

    name = "openai_compat"
    facts = Facts(
        reply="".join(REPLY_WORDS),
        usage=Usage(prompt_tokens=11, completion_tokens=len(REPLY_WORDS)),
        tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS[:1]),
        parallel_tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS),
        no_argument_call="tool-no-args",
        json_reply=JSON_REPLY,
        # OpenAI's prompt_tokens include the cached ones; reasoning is part of completion.
        detailed_usage=(
            "cached",
            Usage(prompt_tokens=120, completion_tokens=37, cached_tokens=100, reasoning_tokens=30),
        ),
        retry_after="7",
    )

    def start(self) -> FakeOpenAI:
        """The fake chat-completions server."""
        return FakeOpenAI().start()

    def config(self, server: FakeOpenAI) -> ProviderConfig:
        """The provider at the fake's ``/v1`` URL."""
        return ProviderConfig(
            name="openai", wire_format="openai", base_url=server.base_url, api_key=API_KEY
        )

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The OpenAI-compatible adapter."""
        return OpenAICompatibleAdapter(config, http)

    def received(self, server: FakeOpenAI, upstream: str) -> Sent:
        """The chat request whose ``model`` is ``upstream``."""
        [recorded] = [r for r in server.requests if r.body.get("model") == upstream]
        assert recorded.path == "/v1/chat/completions"
        assert recorded.headers["Authorization"] == f"Bearer {API_KEY}"
        return read_sent(recorded.body)

    def sdk_status(self, server: FakeOpenAI, scenario: str, *, stream: bool) -> int | None:
        """``chat.completions.create``, streamed to the end or not."""
        model, messages = f"{scenario}~sdk", _sdk_messages(scenario)
        with openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0) as client:
            create = client.chat.completions.create
            try:
                if stream:
                    options: Any = {"include_usage": True}
                    chunks = list(
                        create(
                            model=model, messages=messages, stop=["END"], stream=True,
                            stream_options=options,
                        )
                    )  # fmt: skip
                    assert chunks[-1].usage is not None
                else:
                    completion = create(model=model, messages=messages, stop=["END"])
                    assert completion.choices[0].finish_reason is not None
            except openai.APIStatusError as error:
                return error.status_code
            except openai.APIError:
                # An error event inside a 200 stream carries no status of its own.
                return 200
        return None


TARGET = OpenAICompatibleTarget()
