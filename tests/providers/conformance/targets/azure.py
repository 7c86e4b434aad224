"""The Azure OpenAI adapter (deployment URLs), on the fake in ``tests/support/fake_azure.py``.

Azure speaks OpenAI's format, so requests read back as the OpenAI-compatible target reads
them."""

from __future__ import annotations

from typing import Any

import openai

from tests.providers.conformance.protocol import PNG_BASE64, Facts, Sent, Target, ToolUse
from tests.providers.conformance.targets.openai_compat import read_sent
from tests.support.fake_azure import (
    COMPLETION_TOKENS,
    JSON_REPLY,
    PROMPT_TOKENS,
    REPLY_WORDS,
    TOOL_CALLS,
    FakeAzure,
)
from vaultgate.providers.azure import AzureOpenAIAdapter
from vaultgate.providers.base import Provider, ProviderConfig, Usage
from vaultgate.providers.http import HttpClient

API_KEY = "azure-conformance-0123456789"
API_VERSION = "2024-10-21"


def _sdk_messages(scenario: str) -> list[Any]:
    if scenario != "image-input":
        return [{"role": "user", "content": "hi"}]
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}
    return [{"role": "user", "content": [image, {"type": "text", "text": "hi"}]}]


class AzureTarget(Target[FakeAzure]):
    """The ``azure`` wire format, deployment style."""

    name = "azure"
    facts = Facts(
        reply="".join(REPLY_WORDS),
        usage=Usage(prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS),
        tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS[:1]),
        parallel_tool_calls=tuple(ToolUse(*call) for call in TOOL_CALLS),
        json_reply=JSON_REPLY,
        retry_after="7",
    )

    def start(self) -> FakeAzure:
        """The fake Azure OpenAI resource."""
        return FakeAzure(api_key=API_KEY).start()

    def config(self, server: FakeAzure) -> ProviderConfig:
        """The provider at the fake's endpoint."""
        return ProviderConfig(
            name="azure", wire_format="azure", base_url=server.endpoint, api_key=API_KEY,
            options=(("api_version", API_VERSION),),
        )  # fmt: skip

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Azure OpenAI adapter."""
        return AzureOpenAIAdapter(config, http)

    def received(self, server: FakeAzure, upstream: str) -> Sent:
        """The chat request sent to deployment ``upstream``."""
        path = f"/openai/deployments/{upstream}/chat/completions"
        [recorded] = [r for r in server.requests if r.path == path]
        assert recorded.query == {"api-version": API_VERSION}
        assert recorded.headers["api-key"] == API_KEY
        return read_sent(recorded.body)

    def sdk_status(self, server: FakeAzure, scenario: str, *, stream: bool) -> int | None:
        """``AzureOpenAI``'s ``chat.completions.create``, streamed to the end or not."""
        request: dict[str, Any] = {
            "model": f"{scenario}~sdk", "messages": _sdk_messages(scenario), "stop": ["END"],
        }  # fmt: skip
        with openai.AzureOpenAI(
            azure_endpoint=server.endpoint, api_key=API_KEY, api_version=API_VERSION,
            max_retries=0,
        ) as client:  # fmt: skip
            try:
                if stream:
                    request.update(stream=True, stream_options={"include_usage": True})
                    chunks = list(client.chat.completions.create(**request))
                    assert chunks[-1].usage is not None
                else:
                    completion = client.chat.completions.create(**request)
                    assert completion.choices[0].finish_reason is not None
            except openai.APIStatusError as error:
                return error.status_code
            except openai.APIError:
                # An error event inside a 200 stream carries no status of its own.
                return 200
        return None


TARGET = AzureTarget()
