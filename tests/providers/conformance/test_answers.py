"""Cases about the answer: text, finish reasons, output limits, JSON and usage."""

from __future__ import annotations

import json

import pytest

from tests.providers.conformance.harness import MODEL_LIMIT, Harness
from tests.providers.conformance.protocol import AnyTarget, FakeServer
from vaultgate.errors import UpstreamError
from vaultgate.providers.base import Usage
from vaultgate.providers.http import HttpClient

pytestmark = pytest.mark.anyio

JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        },
    },
}


@pytest.mark.case("plain")
async def test_plain_text_answers_reply_with_stop_and_usage(harness: Harness) -> None:
    facts = harness.target.facts

    answer = await harness.run(harness.call("plain"))

    [choice] = answer.choices
    assert choice.finish_reason == "stop"
    assert choice.tool_calls == []
    assert choice.content
    if facts.reply is not None:
        assert choice.content == facts.reply
    assert answer.usage is not None
    if facts.usage is not None:
        assert answer.usage == facts.usage


@pytest.mark.case("plain")
async def test_plain_stream_joined_equals_whole_answer(
    target: AnyTarget, server: FakeServer, http: HttpClient
) -> None:
    provider = target.adapter(target.config(server), http)
    whole = Harness(target, server, provider, stream=False)
    streamed = Harness(target, server, provider, stream=True)

    complete = await whole.run(whole.call("plain"))
    pieces = await streamed.run(streamed.call("plain"))

    assert pieces.choices == complete.choices
    assert pieces.usage == complete.usage
    assert pieces.chunks[-1]["choices"] == []
    assert pieces.chunks[-1]["usage"] is not None


@pytest.mark.case("length")
async def test_length_cut_finishes_with_length(harness: Harness) -> None:
    answer = await harness.run(harness.call("length", max_tokens=5))

    assert [c.finish_reason for c in answer.choices] == ["length"]


@pytest.mark.case("stop-sequences")
async def test_stop_sequences_forwarded_and_finish_with_stop(harness: Harness) -> None:
    call = harness.call("stop-sequence", stop=["END", "STOP"])

    answer = await harness.run(call)

    assert harness.sent(call).stop == ["END", "STOP"]
    assert [c.finish_reason for c in answer.choices] == ["stop"]


@pytest.mark.case("stop-sequences")
async def test_stop_string_forwarded_as_one_sequence(harness: Harness) -> None:
    call = harness.call("stop-sequence", stop="END")

    await harness.run(call)

    assert harness.sent(call).stop == ["END"]


@pytest.mark.case("content-filter")
async def test_safety_stop_finishes_with_content_filter(harness: Harness) -> None:
    answer = await harness.run(harness.call("content-filter"))

    assert [c.finish_reason for c in answer.choices] == ["content_filter"]
    assert answer.choices[0].tool_calls == []


@pytest.mark.case("max-tokens")
@pytest.mark.parametrize(
    ("limits", "expected"),
    [({"max_tokens": 100}, 100), ({"max_completion_tokens": 50}, 50),
     ({"max_tokens": 100, "max_completion_tokens": 50}, 50)],
    ids=["max_tokens", "max_completion_tokens", "both"],
)  # fmt: skip
async def test_max_tokens_forwarded_newer_name_wins(
    harness: Harness, limits: dict[str, int], expected: int
) -> None:
    call = harness.call("plain", **limits)

    await harness.run(call)

    assert harness.sent(call).max_output_tokens == expected


@pytest.mark.case("max-tokens")
async def test_max_tokens_absent_sends_provider_default(harness: Harness) -> None:
    call = harness.call("plain")

    await harness.run(call)

    expected = harness.target.facts.default_max_tokens
    assert expected in (None, MODEL_LIMIT)
    assert harness.sent(call).max_output_tokens == expected


@pytest.mark.case("json-output")
@pytest.mark.parametrize(
    ("response_format", "kind"),
    [({"type": "json_object"}, "object"), (JSON_SCHEMA, "schema")],
    ids=["json_object", "json_schema"],
)
async def test_json_output_forwarded_and_answer_parses(
    harness: Harness, response_format: dict[str, object], kind: str
) -> None:
    messages = [{"role": "user", "content": "Answer in JSON: what is the capital of France?"}]
    call = harness.call("json", messages=messages, response_format=response_format)

    if not harness.target.facts.json_output:
        with pytest.raises(UpstreamError) as caught:
            await harness.run(call)
        assert (caught.value.status, caught.value.param) == (400, "response_format")
        assert caught.value.retryable is False
        return
    answer = await harness.run(call)

    sent = harness.sent(call)
    assert sent.json_output == kind
    if kind == "schema":
        assert sent.json_schema is not None
        assert list(sent.json_schema["properties"]) == ["answer"]
    assert answer.choices[0].content is not None
    assert json.loads(answer.choices[0].content) == harness.target.facts.json_reply


@pytest.mark.case("usage-details")
async def test_usage_details_cached_and_reasoning_counted_once(harness: Harness) -> None:
    if harness.target.facts.detailed_usage is None:
        pytest.skip(f"{harness.target.name}: its fake reports no cached or reasoning tokens")
    scenario, expected = harness.target.facts.detailed_usage

    answer = await harness.run(harness.call(scenario))

    assert answer.usage == expected
    # Cached tokens are part of the prompt and reasoning part of the completion, never
    # added on top, so billing counts each token once.
    assert expected.cached_tokens <= expected.prompt_tokens
    assert expected.reasoning_tokens <= expected.completion_tokens
    assert answer.usage.total_tokens == expected.prompt_tokens + expected.completion_tokens


@pytest.mark.case("choices")
async def test_n_choices_indexed_each_finished_with_usage_per_call(harness: Harness) -> None:
    facts = harness.target.facts

    answer = await harness.run(harness.call("plain", n=2))

    assert len(answer.choices) == 2
    assert [c.finish_reason for c in answer.choices] == ["stop", "stop"]
    if facts.reply is not None:
        assert [c.content for c in answer.choices] == [facts.reply, facts.reply]
    assert answer.usage is not None
    if facts.usage is not None and not harness.provider.supports_n:
        # Two calls, each billed its prompt upstream.
        assert answer.usage == Usage(
            prompt_tokens=2 * facts.usage.prompt_tokens,
            completion_tokens=2 * facts.usage.completion_tokens,
        )
