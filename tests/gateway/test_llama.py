"""VaultGate in front of a real llama.cpp server (SmolLM2-135M via llama-cpp-python).

llama-cpp-python's server reports usage on plain completions but sends no usage in streams,
even when asked (checked against 0.3.x): streamed requests are therefore billed on the
gateway's own estimate and marked as estimated.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Gateway
from tests.gateway.helpers import (
    REPO_ROOT,
    start_with_config,
    token_cost,
    wait_for_log_rows,
)
from tests.support.server import free_port
from vaultgate.providers.tokens import estimate_text_tokens

LLAMA_PYTHON = REPO_ROOT / ".cache" / "llama-venv" / "bin" / "python"
LLAMA_SCRIPT = REPO_ROOT / "scripts" / "llama-server"
START_TIMEOUT_S = 60.0
PRICE_IN = 500_000
PRICE_OUT = 1_500_000
PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello in three words."}
]

pytestmark = [
    pytest.mark.llama,
    pytest.mark.skipif(
        not LLAMA_PYTHON.exists(),
        reason="llama.cpp is not installed: run scripts/llama-server install",
    ),
]


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama.cpp server on a free port, started for this module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "llama.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(LLAMA_SCRIPT), str(port)], stdout=log_file, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_until_serving(process, base_url, log_path)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama server exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(base_url + "/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"llama server did not start:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def llama_gateway(tmp_path_factory: pytest.TempPathFactory, llama_url: str) -> Iterator[Gateway]:
    """VaultGate with the llama server as an operator provider without a credential."""
    config = "\n".join(
        [
            "[providers.llama]",
            'format = "openai"',
            f'base_url = "{llama_url}"',
            "",
            "[[models]]",
            'id = "smollm2-text"',
            'provider = "llama"',
            'upstream = "smollm2"',
            "context_window = 2048",
            'pricing = { input = "0.50", output = "1.50" }',
        ]
    )
    running = start_with_config(tmp_path_factory.mktemp("llama-gateway"), config)
    yield running
    running.server.stop()


@pytest.fixture
def sdk(llama_gateway: Gateway) -> Iterator[openai.OpenAI]:
    """The SDK pointed at the gateway in front of llama.cpp."""
    with openai.OpenAI(
        base_url=llama_gateway.api_base, api_key=llama_gateway.key, max_retries=0, timeout=60
    ) as client:
        yield client


def test_llama_model_is_listed(sdk: openai.OpenAI) -> None:
    model = sdk.models.retrieve("smollm2-text")

    assert (model.model_extra or {})["provider"] == "llama"


def test_llama_completion_usage_and_cost_are_logged(
    llama_gateway: Gateway, sdk: openai.OpenAI
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="smollm2-text", messages=PROMPT, max_tokens=16, temperature=0
    )
    reply = raw.parse()

    assert reply.model == "smollm2-text"
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 16
    request_id = raw.headers["x-request-id"]
    row = wait_for_log_rows(llama_gateway.database_url, [request_id])[request_id]
    assert (row["provider"], row["status"], row["usage_estimated"]) == ("llama", 200, False)
    assert row["prompt_tokens"] == reply.usage.prompt_tokens
    assert row["completion_tokens"] == reply.usage.completion_tokens
    assert row["cost_micros"] == token_cost(
        reply.usage.prompt_tokens, reply.usage.completion_tokens, PRICE_IN, PRICE_OUT
    )
    assert row["cost_micros"] > 0


def test_llama_stream_usage_is_estimated_and_logged(
    llama_gateway: Gateway, sdk: openai.OpenAI
) -> None:
    with sdk.chat.completions.with_streaming_response.create(
        model="smollm2-text",
        messages=PROMPT,
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        chunks = list(response.parse())
        request_id = response.headers["x-request-id"]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c for c in chunks if c.usage is not None] == [chunks[-1]]
    usage = chunks[-1].usage
    assert usage is not None
    assert chunks[-1].choices == []
    assert usage.completion_tokens == estimate_text_tokens(text)
    row = wait_for_log_rows(llama_gateway.database_url, [request_id])[request_id]
    assert (row["provider"], row["status"], row["stream"]) == ("llama", 200, True)
    assert row["usage_estimated"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["cost_micros"] == token_cost(
        usage.prompt_tokens, usage.completion_tokens, PRICE_IN, PRICE_OUT
    )
    assert row["ttft_ms"] is not None


def test_llama_stream_without_include_usage_has_no_usage_chunk(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.create(
        model="smollm2-text", messages=PROMPT, max_tokens=8, stream=True
    ) as stream:
        chunks = list(stream)

    assert chunks
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
