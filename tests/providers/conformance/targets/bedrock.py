"""The Bedrock Converse adapter, on the fake in ``tests/support/fake_bedrock.py`` (which
verifies the adapter's SigV4 signatures)."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

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
from tests.support.fake_bedrock import (
    JSON_REPLY,
    REPLY_WORDS,
    SECOND_TOOL_INPUT,
    TOOL_INPUT,
    FakeBedrock,
)
from vaultgate.providers.base import JsonObject, Provider, ProviderConfig, Usage
from vaultgate.providers.bedrock import BedrockAdapter
from vaultgate.providers.http import HttpClient

KEY_ID = "AKIDCONFORMANCE01"
SECRET = "conformance/secret+key-0123"
TOOL_CHOICES = {"auto": "auto", "any": "required"}


def _image(image: JsonObject) -> ImageInput:
    source = image["source"]
    if "s3Location" in source:
        return ImageInput(media_type=f"image/{image['format']}", url=source["s3Location"]["uri"])
    return ImageInput(media_type=f"image/{image['format']}", data=source["bytes"])


def _tool_choice(config: JsonObject) -> str | None:
    choice = config.get("toolChoice") or {}
    if "tool" in choice:
        return f"function:{choice['tool']['name']}"
    return next((TOOL_CHOICES[key] for key in choice if key in TOOL_CHOICES), None)


def _json_schema(body: JsonObject) -> JsonObject | None:
    text_format = (body.get("outputConfig") or {}).get("textFormat")
    if not text_format:
        return None
    schema: JsonObject = json.loads(text_format["structure"]["jsonSchema"]["schema"])
    return schema


def read_sent(body: JsonObject, *, stream: bool) -> Sent:
    """A Converse request body in the cases' terms."""
    blocks = [block for message in body["messages"] for block in message["content"]]
    tool_config = body.get("toolConfig") or {}
    schema = _json_schema(body)
    return Sent(
        stream=stream,
        system="\n\n".join(block["text"] for block in body.get("system") or ()),
        turns=[
            Turn(m["role"], [b["text"] for b in m["content"] if "text" in b])
            for m in body["messages"]
        ],
        images=[_image(b["image"]) for b in blocks if "image" in b],
        tools=[tool["toolSpec"]["name"] for tool in tool_config.get("tools") or ()],
        tool_choice=_tool_choice(tool_config),
        tool_uses=[
            ToolUse(b["toolUse"]["toolUseId"], b["toolUse"]["name"], b["toolUse"]["input"])
            for b in blocks
            if "toolUse" in b
        ],
        tool_results=[
            ToolResult(
                b["toolResult"]["toolUseId"],
                None,
                "".join(c.get("text", "") for c in b["toolResult"]["content"]),
            )
            for b in blocks
            if "toolResult" in b
        ],
        stop=list((body.get("inferenceConfig") or {}).get("stopSequences") or ()),
        max_output_tokens=(body.get("inferenceConfig") or {}).get("maxTokens"),
        json_output="schema" if schema is not None else None,
        json_schema=schema,
    )


def _sdk_request(scenario: str) -> dict[str, Any]:
    content: list[JsonObject] = [{"text": "hi"}]
    if scenario == "image-input":
        image = {"format": "png", "source": {"bytes": base64.b64decode(PNG_BASE64)}}
        content.append({"image": image})
    return {
        "modelId": f"{scenario}~sdk",
        "messages": [{"role": "user", "content": content}],
        "inferenceConfig": {"stopSequences": ["END"]},
    }


class BedrockTarget(Target[FakeBedrock]):
    """The ``bedrock`` wire format, signing with an IAM access key."""

    name = "bedrock"
    facts = Facts(
        reply="".join(REPLY_WORDS),
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        tool_calls=(ToolUse("tooluse_01", "get_weather", TOOL_INPUT),),
        parallel_tool_calls=(
            ToolUse("tooluse_01", "get_weather", TOOL_INPUT),
            ToolUse("tooluse_02", "get_weather", SECOND_TOOL_INPUT),
        ),
        json_reply=json.loads(JSON_REPLY),
        # inputTokens excludes cache reads and writes; the prompt is their sum.
        detailed_usage=(
            "cached",
            Usage(prompt_tokens=125, completion_tokens=7, cached_tokens=100),
        ),
        retry_after=None,
        alternating_roles=True,
        http_images=False,
        default_max_tokens=None,
    )
    not_applicable = MappingProxyType(
        {
            "image-data-url": (
                "Converse takes the image format read from the bytes, not the data URL's "
                "media type, and the case's WebP data URL holds PNG bytes"
            ),
            "json-output": (
                "json_schema becomes outputConfig.textFormat but json_object is refused "
                "with a 400 (Converse constrains output only to a schema); both are "
                "tested in tests/providers/test_bedrock.py"
            ),
            "tool-choice": (
                "Converse has no 'none' tool choice: the tools are withheld instead; auto, "
                "required and named choices are tested in tests/providers/test_bedrock.py"
            ),
            "sdk": (
                "AWS answers unknown credentials with a 403 (UnrecognizedClientException), "
                "never a 401; boto3 runs every scenario in tests/providers/test_bedrock.py"
            ),
        }
    )

    def start(self) -> FakeBedrock:
        """The fake Converse API, knowing the target's access key."""
        return FakeBedrock(credentials={KEY_ID: (SECRET, None)}).start()

    def config(self, server: FakeBedrock) -> ProviderConfig:
        """The provider at the fake's root URL, signing for us-east-1."""
        options = (
            ("region", "us-east-1"), ("access_key_id", KEY_ID), ("secret_access_key", SECRET),
        )  # fmt: skip
        return ProviderConfig(
            name="bedrock", wire_format="bedrock", base_url=server.base_url, options=options
        )

    def adapter(self, config: ProviderConfig, http: HttpClient) -> Provider:
        """The Converse adapter."""
        return BedrockAdapter(config, http)

    def received(self, server: FakeBedrock, upstream: str) -> Sent:
        """The request whose model id is ``upstream``."""
        [recorded] = [r for r in server.requests if r.model_id == upstream]
        assert recorded.headers["authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/"
        )
        return read_sent(recorded.body, stream=recorded.path.endswith("/converse-stream"))

    def sdk_status(self, server: FakeBedrock, scenario: str, *, stream: bool) -> int | None:
        """boto3's ``converse``, or ``converse_stream`` read to its last event."""
        client = boto3.client(
            "bedrock-runtime", endpoint_url=server.base_url, region_name="us-east-1",
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
            config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip
        try:
            if stream:
                events = client.converse_stream(**_sdk_request(scenario))["stream"]
                try:
                    assert "metadata" in list(events)[-1]
                finally:
                    events.close()
            else:
                assert client.converse(**_sdk_request(scenario))["stopReason"]
        except botocore.exceptions.EventStreamError:
            return 500  # an exception event carries no HTTP status of its own
        except botocore.exceptions.ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        finally:
            client.close()
        return None


TARGET = BedrockTarget()
