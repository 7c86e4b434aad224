"""Cases about tools: declarations and tool_choice, tool calls answered, and results
sent back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.providers.conformance.harness import Harness
from tests.providers.conformance.protocol import ToolUse

pytestmark = pytest.mark.anyio

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {noun} in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    for name, noun in (("get_weather", "weather"), ("get_time", "time"))
]


@pytest.mark.case("tool-choice")
@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [("auto", "auto"), ("none", "none"), ("required", "required"),
     ({"type": "function", "function": {"name": "get_time"}}, "function:get_time")],
    ids=["auto", "none", "required", "named"],
)  # fmt: skip
async def test_tools_and_tool_choice_reach_provider(
    harness: Harness, tool_choice: Any, expected: str
) -> None:
    call = harness.call("plain", tools=TOOLS, tool_choice=tool_choice)

    await harness.run(call)

    sent = harness.sent(call)
    assert sent.tools == ["get_weather", "get_time"]
    assert sent.tool_choice == expected


def _matches(answered: list[ToolUse], expected: tuple[ToolUse, ...]) -> None:
    """Names and arguments as the fake sent them; ids kept, or made unique and non-empty
    where the provider has none."""
    assert [(c.name, c.arguments) for c in answered] == [(c.name, c.arguments) for c in expected]
    ids = [c.id for c in answered]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    for got, sent in zip(answered, expected, strict=True):
        if sent.id is not None:
            assert got.id == sent.id


@pytest.mark.case("tool-calls")
@pytest.mark.parametrize("scenario", ["tool", "parallel-tools"])
async def test_tool_calls_answer_each_call_with_tool_calls_finish(
    harness: Harness, scenario: str
) -> None:
    facts = harness.target.facts
    expected = facts.tool_calls if scenario == "tool" else facts.parallel_tool_calls
    assert expected, f"{harness.target.name} states no tool calls for {scenario}"

    answer = await harness.run(harness.call(scenario, tools=TOOLS))

    [choice] = answer.choices
    assert choice.finish_reason == "tool_calls"
    _matches(choice.tool_calls, expected)


@pytest.mark.case("tool-calls")
async def test_tool_call_without_arguments_answers_empty_object(harness: Harness) -> None:
    scenario = harness.target.facts.no_argument_call
    if scenario is None:
        pytest.skip(f"{harness.target.name}: its fake has no call without arguments")

    answer = await harness.run(harness.call(scenario, tools=TOOLS))

    [choice] = answer.choices
    assert [(c.name, c.arguments) for c in choice.tool_calls] == [("get_time", {})]
    assert choice.finish_reason == "tool_calls"


@pytest.mark.case("tool-calls")
async def test_tool_call_stream_sends_arguments_in_pieces_one_index_per_call(
    streamed: Harness,
) -> None:
    answer = await streamed.run(streamed.call("parallel-tools", tools=TOOLS))

    pieces = [
        piece
        for chunk in answer.chunks
        for choice in chunk["choices"]
        for piece in choice["delta"].get("tool_calls") or ()
    ]
    firsts = [piece for piece in pieces if piece.get("id")]
    assert [piece["index"] for piece in firsts] == [0, 1]
    for index in (0, 1):
        arguments = "".join(
            piece["function"].get("arguments") or "" for piece in pieces if piece["index"] == index
        )
        assert isinstance(json.loads(arguments), dict)


@pytest.mark.case("tool-results")
async def test_tool_results_reach_provider_tied_to_their_calls(harness: Harness) -> None:
    calls = [
        {"id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function",
         "function": {"name": "get_time", "arguments": '{"city": "Paris"}'}},
    ]  # fmt: skip
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "9:00"}]},
        {"role": "user", "content": "Thanks"},
    ]
    call = harness.call("plain", messages=messages, tools=TOOLS)

    answer = await harness.run(call)

    sent = harness.sent(call)
    assert [(u.name, u.arguments) for u in sent.tool_uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Paris"}),
    ]
    assert [u.id for u in sent.tool_uses if u.id is not None] in ([], ["call_a", "call_b"])
    assert [r.content for r in sent.tool_results] == ["18C", "9:00"]
    for result, name, call_id in zip(
        sent.tool_results, ["get_weather", "get_time"], ["call_a", "call_b"], strict=True
    ):
        assert result.id is not None or result.name is not None, "a result names its call"
        assert result.id in (None, call_id)
        assert result.name in (None, name)
    texts = [text for turn in sent.turns if turn.role != "tool" for text in turn.texts]
    assert texts == ["Weather and time in Paris?", "Checking.", "Thanks"]
    assert answer.choices[0].finish_reason == "stop"
