"""End to end: the openai SDK through a running VaultGate to a fake Anthropic upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from tests.support.fake_anthropic import REPLY_WORDS, TOOL_INPUT, FakeAnthropic
from tests.support.server import ServerProcess, make_user_and_key, prepare_database

UPSTREAM_KEY = "sk-ant-e2e-secret-0123456789"
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def anthropic_config(base_url: str) -> str:
    """An operator config with an Anthropic-format provider at the fake."""
    lines = [
        "[providers.fake-anthropic]",
        'format = "anthropic"',
        f'base_url = "{base_url}"',
        'api_key_env = "FAKE_ANTHROPIC_KEY"',
    ]
    for upstream in ("plain", "tool", "cached"):
        lines += [
            "",
            "[[models]]",
            f'id = "claude-fake-{upstream}-text"',
            'provider = "fake-anthropic"',
            f'upstream = "{upstream}"',
            "max_output_tokens = 2048",
            'pricing = { input = "3.00", cached_input = "0.30", output = "15.00" }',
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    """The fake Messages API."""
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic
) -> Iterator[openai.OpenAI]:
    """The openai SDK pointed at a VaultGate that routes claude-fake-* to the fake."""
    tmp_path: Path = tmp_path_factory.mktemp("anthropic-gateway")
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    _, key, _ = make_user_and_key(url)
    config = tmp_path / "vaultgate.toml"
    config.write_text(anthropic_config(fake.base_url))
    env = {"VAULTGATE_CONFIG": str(config), "FAKE_ANTHROPIC_KEY": UPSTREAM_KEY}
    server = ServerProcess(tmp_path / "data", url, env=env).start()
    try:
        with openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0) as sdk:
            yield sdk
    finally:
        server.stop()


def test_gateway_anthropic_chat_returns_openai_completion(
    client: openai.OpenAI, fake: FakeAnthropic
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-fake-plain-text",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        seed=3,
    )
    reply = raw.parse()

    assert reply.model == "claude-fake-plain-text"
    assert reply.choices[0].message.content == "".join(REPLY_WORDS)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 12
    assert "seed" in raw.headers["x-vaultgate-warning"]
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.body["system"] == "Be brief."
    assert sent.body["max_tokens"] > 0


def test_gateway_anthropic_stream_tool_call_and_cached_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-fake-tool-text",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    arguments = "".join(
        call.function.arguments or ""
        for chunk in chunks
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or ()
        if call.function is not None
    )
    assert json.loads(arguments) == TOOL_INPUT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


def test_gateway_anthropic_stream_reports_cached_prompt_tokens(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-fake-cached-text",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = list(stream)[-1].usage

    assert usage is not None
    assert usage.prompt_tokens == 125
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 100


def test_gateway_anthropic_refused_param_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude-fake-plain-text",
            messages=[{"role": "user", "content": "Answer in JSON"}],
            response_format={"type": "json_object"},
        )

    assert caught.value.status_code == 400
