"""End to end: ``n`` > 1 through VaultGate to a provider that answers one choice per request
(the fake Anthropic), with the official openai SDK; the hold and the charge count every
call's prompt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import start_with_config, token_cost, wait_for_log_rows
from tests.gateway.test_sdk_anthropic import UPSTREAM_KEY, anthropic_config
from tests.support.fake_anthropic import REPLY_WORDS, FakeAnthropic

REPLY = "".join(REPLY_WORDS)
# The fake's usage per call (12 in, 7 out), twice, at the config's 3.00 in / 15.00 out.
PROMPT, COMPLETION = 2 * 12, 2 * 7
COST = token_cost(PROMPT, COMPLETION, 3_000_000, 15_000_000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    """The fake Messages API."""
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic) -> Iterator[Gateway]:
    """VaultGate routing claude-fake-* to the fake Anthropic."""
    tmp_path: Path = tmp_path_factory.mktemp("fanout-gateway")
    running = start_with_config(
        tmp_path, anthropic_config(fake.base_url), extra_env={"FAKE_ANTHROPIC_KEY": UPSTREAM_KEY}
    )
    yield running
    running.server.stop()


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    """The openai SDK pointed at the gateway, without client-side retries."""
    with openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key, max_retries=0) as sdk:
        yield sdk


def sent_for(fake: FakeAnthropic, user: str) -> list[dict[str, object]]:
    """The bodies the fake received for requests made with ``user``."""
    return [r.body for r in fake.requests if r.body.get("metadata") == {"user_id": user}]


def test_gateway_n2_one_choice_provider_answers_two_choices_billed_per_call(
    client: openai.OpenAI, gateway: Gateway, fake: FakeAnthropic
) -> None:
    user = uuid.uuid4().hex
    raw = client.chat.completions.with_raw_response.create(
        model="claude-fake-plain-text",
        messages=[{"role": "user", "content": "hi"}],
        n=2,
        user=user,
    )
    reply = raw.parse()

    assert [choice.index for choice in reply.choices] == [0, 1]
    assert [choice.message.content for choice in reply.choices] == [REPLY, REPLY]
    assert [choice.finish_reason for choice in reply.choices] == ["stop", "stop"]
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (PROMPT, COMPLETION)
    bodies = sent_for(fake, user)
    assert len(bodies) == 2
    assert all("n" not in body for body in bodies)
    row = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    logged = row[raw.headers["x-request-id"]]
    assert (logged["prompt_tokens"], logged["completion_tokens"]) == (PROMPT, COMPLETION)
    assert logged["cost_micros"] == COST
    assert logged["charged_micros"] == COST


def test_gateway_n2_stream_interleaves_two_choices_with_summed_usage(
    client: openai.OpenAI, gateway: Gateway, fake: FakeAnthropic
) -> None:
    user = uuid.uuid4().hex
    raw = client.chat.completions.with_raw_response.create(
        model="claude-fake-plain-text",
        messages=[{"role": "user", "content": "hi"}],
        n=2,
        user=user,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())

    texts = {0: "", 1: ""}
    finishes: dict[int, list[str]] = {0: [], 1: []}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index].append(choice.finish_reason)
    assert texts == {0: REPLY, 1: REPLY}
    assert finishes == {0: ["stop"], 1: ["stop"]}
    assert len({chunk.id for chunk in chunks}) == 1
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT, COMPLETION)
    assert len(sent_for(fake, user)) == 2
    row = wait_for_log_rows(gateway.database_url, [raw.headers["x-request-id"]])
    assert row[raw.headers["x-request-id"]]["charged_micros"] == COST


def test_gateway_n_above_fanout_bound_is_400_without_upstream_calls(
    client: openai.OpenAI, fake: FakeAnthropic
) -> None:
    user = uuid.uuid4().hex

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude-fake-plain-text",
            messages=[{"role": "user", "content": "hi"}],
            n=17,
            user=user,
        )

    assert caught.value.code == "unsupported_parameter"
    assert sent_for(fake, user) == []
