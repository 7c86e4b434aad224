"""Table-driven checks of request-body validation: every failure names its parameter."""

from __future__ import annotations

from typing import Any

import pytest

from vaultgate.errors import InvalidRequest
from vaultgate.gateway.validation import validate_chat, validate_images

USER = {"role": "user", "content": "hi"}


def chat(**changes: Any) -> dict[str, Any]:
    """A valid chat body with ``changes`` applied (a value of ``...`` removes the key)."""
    body: dict[str, Any] = {"model": "offline-small-text", "messages": [USER]}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


def image(**changes: Any) -> dict[str, Any]:
    """A valid images body with ``changes`` applied (``...`` removes the key)."""
    body: dict[str, Any] = {"model": "offline-painter-image", "prompt": "a red fox"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


BAD_CHAT: list[tuple[str, Any, str | None]] = [
    ("not-object", ["model"], None),
    ("model-missing", chat(model=...), "model"),
    ("model-empty", chat(model=""), "model"),
    ("model-number", chat(model=4), "model"),
    ("messages-missing", chat(messages=...), "messages"),
    ("messages-string", chat(messages="hi"), "messages"),
    ("messages-empty", chat(messages=[]), "messages"),
    ("message-not-object", chat(messages=["hi"]), "messages[0]"),
    ("role-missing", chat(messages=[{"content": "hi"}]), "messages[0].role"),
    ("role-unknown", chat(messages=[USER, {"role": "robot", "content": "x"}]),
     "messages[1].role"),
    ("content-missing-user", chat(messages=[{"role": "user"}]), "messages[0].content"),
    ("content-none-assistant-without-calls",
     chat(messages=[USER, {"role": "assistant", "content": None}]), "messages[1].content"),
    ("content-number", chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("part-not-object", chat(messages=[{"role": "user", "content": ["hi"]}]),
     "messages[0].content[0]"),
    ("part-type-missing", chat(messages=[{"role": "user", "content": [{"text": "hi"}]}]),
     "messages[0].content[0].type"),
    ("part-text-not-string",
     chat(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
     "messages[0].content[0].text"),
    ("part-image-url-missing",
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
     "messages[0].content[0].image_url"),
    ("part-image-url-string",
     chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]),
     "messages[0].content[0].image_url"),
    ("tool-without-call-id", chat(messages=[USER, {"role": "tool", "content": "42"}]),
     "messages[1].tool_call_id"),
    ("tool-choice-number", chat(tool_choice=1), "tool_choice"),
    ("temperature-high", chat(temperature=2.5), "temperature"),
    ("temperature-negative", chat(temperature=-0.1), "temperature"),
    ("temperature-string", chat(temperature="0.5"), "temperature"),
    ("temperature-bool", chat(temperature=True), "temperature"),
    ("top-p-high", chat(top_p=1.01), "top_p"),
    ("presence-penalty-low", chat(presence_penalty=-2.1), "presence_penalty"),
    ("frequency-penalty-high", chat(frequency_penalty=3), "frequency_penalty"),
    ("max-tokens-zero", chat(max_tokens=0), "max_tokens"),
    ("max-tokens-float", chat(max_tokens=10.0), "max_tokens"),
    ("max-tokens-bool", chat(max_tokens=True), "max_tokens"),
    ("max-completion-tokens-negative", chat(max_completion_tokens=-1), "max_completion_tokens"),
    ("n-zero", chat(n=0), "n"),
    ("n-too-many", chat(n=129), "n"),
    ("seed-too-big", chat(seed=2**63), "seed"),
    ("seed-string", chat(seed="1"), "seed"),
    ("top-logprobs-high", chat(top_logprobs=21), "top_logprobs"),
    ("stream-string", chat(stream="yes"), "stream"),
    ("stream-number", chat(stream=1), "stream"),
    ("logprobs-string", chat(logprobs="true"), "logprobs"),
    ("user-number", chat(user=7), "user"),
    ("tools-object", chat(tools={"type": "function"}), "tools"),
    ("logit-bias-list", chat(logit_bias=[1]), "logit_bias"),
    ("metadata-string", chat(metadata="x"), "metadata"),
    ("stop-number", chat(stop=5), "stop"),
    ("stop-list-of-numbers", chat(stop=[1, 2]), "stop"),
    ("stop-too-many", chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stream-options-not-object", chat(stream=True, stream_options=True), "stream_options"),
    ("stream-options-without-stream", chat(stream_options={"include_usage": True}),
     "stream_options"),
    ("stream-options-stream-false",
     chat(stream=False, stream_options={"include_usage": True}), "stream_options"),
    ("include-usage-string", chat(stream=True, stream_options={"include_usage": "yes"}),
     "stream_options.include_usage"),
    ("response-format-string", chat(response_format="json"), "response_format"),
    ("response-format-unknown-type", chat(response_format={"type": "xml"}), "response_format"),
    # Output limits and every other integer are bounded, so no hold can overflow.
    ("max-tokens-int64", chat(max_tokens=2**63 - 1), "max_tokens"),
    ("max-tokens-2-63", chat(max_tokens=2**63), "max_tokens"),
    ("max-tokens-uint64", chat(max_tokens=2**64 - 1), "max_tokens"),
    ("max-tokens-2-62-n-128", chat(max_tokens=2**62, n=128), "max_tokens"),
    ("max-tokens-2-31", chat(max_tokens=2**31), "max_tokens"),
    ("max-completion-tokens-2-31", chat(max_completion_tokens=2**31), "max_completion_tokens"),
    ("max-tokens-huge-float", chat(max_tokens=1e30), "max_tokens"),
    ("logit-bias-out-of-range", chat(logit_bias={"1": 101}), "logit_bias"),
    ("logit-bias-string-value", chat(logit_bias={"1": "x"}), "logit_bias"),
    # Content parts OpenAI's chat API does not accept, per role.
    ("part-input-text", chat(messages=[{"role": "user", "content": [
        {"type": "input_text", "text": "x"}]}]), "messages[0].content[0].type"),
    ("part-unknown-type", chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "blob", "blob": "x"}]}]),
     "messages[0].content[1].type"),
    ("part-image-in-system", chat(messages=[{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://a.example/i.png"}}]}, USER]),
     "messages[0].content[0].type"),
    ("part-refusal-from-user", chat(messages=[{"role": "user", "content": [
        {"type": "refusal", "refusal": "no"}]}]), "messages[0].content[0].type"),
    ("part-image-javascript-url", chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}}]}]),
     "messages[0].content[0].image_url.url"),
    ("part-image-file-url", chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]),
     "messages[0].content[0].image_url.url"),
    ("part-image-detail-unknown", chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://a.example/i.png",
                                            "detail": "ultra"}}]}]),
     "messages[0].content[0].image_url.detail"),
    ("part-audio-without-data", chat(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"format": "wav"}}]}]),
     "messages[0].content[0].input_audio.data"),
    ("part-file-not-object", chat(messages=[{"role": "user", "content": [
        {"type": "file", "file": "x"}]}]), "messages[0].content[0].file"),
    ("part-file-empty", chat(messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf"}}]}]), "messages[0].content[0].file"),
    # Tools and tool_choice.
    ("tools-number-entry", chat(tools=[5]), "tools[0]"),
    ("tool-without-type", chat(tools=[{"function": {"name": "f"}}]), "tools[0].type"),
    ("tool-unknown-type", chat(tools=[{"type": "web", "web": {"name": "f"}}]), "tools[0].type"),
    ("tool-without-function", chat(tools=[{"type": "function"}]), "tools[0].function"),
    ("tool-without-name", chat(tools=[{"type": "function", "function": {}}]),
     "tools[0].function.name"),
    ("tool-name-number", chat(tools=[{"type": "function", "function": {"name": 5}}]),
     "tools[0].function.name"),
    ("tool-parameters-string", chat(tools=[{"type": "function", "function": {
        "name": "f", "parameters": "x"}}]), "tools[0].function.parameters"),
    ("tool-choice-unknown-string", chat(tool_choice="sometimes"), "tool_choice"),
    ("tool-choice-undeclared-function", chat(
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "function", "function": {"name": "g"}}), "tool_choice"),
    ("tool-choice-function-without-tools",
     chat(tool_choice={"type": "function", "function": {"name": "f"}}), "tool_choice"),
    ("tool-choice-without-name", chat(
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
    ("tool-choice-without-type", chat(tool_choice={"function": {"name": "f"}}),
     "tool_choice.type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "param"),
    [pytest.param(body, param, id=name) for name, body, param in BAD_CHAT],
)
def test_validate_chat_bad_body_raises_invalid_request_naming_param(
    body: Any, param: str | None
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_chat(body)

    assert caught.value.param == param
    assert caught.value.status == 400
    if param is not None:
        assert param.split(".")[-1].split("[")[0] in caught.value.message


def test_validate_chat_wrong_type_message_names_expected_and_actual() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_chat(chat(max_tokens="ten"))

    assert caught.value.message == (
        "Invalid type for 'max_tokens': expected an integer, but got string. "
        "It must be between 1 and 2147483647."
    )
    assert caught.value.code == "invalid_type"


def test_validate_chat_float_output_limit_message_states_allowed_range() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_chat(chat(max_tokens=1e30))

    assert caught.value.param == "max_tokens"
    assert "between 1 and 2147483647" in caught.value.message


def test_validate_chat_missing_model_has_missing_required_code() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_chat(chat(model=...))

    assert caught.value.code == "missing_required"


GOOD_CHAT: list[tuple[str, dict[str, Any]]] = [
    ("minimal", chat()),
    ("all-roles", chat(messages=[
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        USER,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "function", "content": None, "function_call": {"name": "f"}},
    ])),
    ("content-parts", chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "AA==", "filename": "a.pdf"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                            "detail": "low"}},
    ]}])),
    ("assistant-refusal-part", chat(messages=[USER, {"role": "assistant", "content": [
        {"type": "refusal", "refusal": "no"}, {"type": "text", "text": "sorry"}]}])),
    ("unknown-message-keys-pass", chat(messages=[{"role": "user", "content": "hi",
                                                  "prefix": True, "id": 7}])),
    ("custom-tool", chat(tools=[{"type": "custom", "custom": {"name": "g"}}],
                         tool_choice={"type": "custom", "custom": {"name": "g"}})),
    ("allowed-tools-choice", chat(
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "allowed_tools",
                     "allowed_tools": {"mode": "auto", "tools": []}})),
    ("output-limits-at-bound", chat(max_tokens=2**31 - 1, max_completion_tokens=2**31 - 1)),
    ("bounds", chat(temperature=0, top_p=1, presence_penalty=-2, frequency_penalty=2,
                    max_tokens=1, n=128, seed=-(2**63), top_logprobs=0)),
    ("integer-temperature", chat(temperature=2)),
    ("nulls-are-absent", chat(temperature=None, max_tokens=None, stop=None, tools=None,
                              stream_options=None, response_format=None)),
    ("stop-string", chat(stop="\n")),
    ("stop-four", chat(stop=["a", "b", "c", "d"])),
    ("stream-with-options", chat(stream=True, stream_options={"include_usage": False})),
    ("tools", chat(tools=[{"type": "function", "function": {"name": "f"}}],
                   tool_choice={"type": "function", "function": {"name": "f"}})),
    ("tool-choice-string", chat(tool_choice="auto")),
    ("response-formats", chat(response_format={"type": "json_schema", "json_schema": {}})),
    ("unknown-params-pass", chat(top_k=40, vendor_knob={"x": [1]}, logit_bias={"1": 5},
                                 metadata={"a": "b"}, user="u-1", logprobs=True)),
]  # fmt: skip


@pytest.mark.parametrize("body", [pytest.param(body, id=name) for name, body in GOOD_CHAT])
def test_validate_chat_good_body_returns_model(body: dict[str, Any]) -> None:
    assert validate_chat(body) == "offline-small-text"


BAD_IMAGES: list[tuple[str, Any, str | None]] = [
    ("not-object", "draw", None),
    ("model-missing", image(model=...), "model"),
    ("model-empty", image(model=""), "model"),
    ("prompt-missing", image(prompt=...), "prompt"),
    ("prompt-number", image(prompt=3), "prompt"),
    ("prompt-blank", image(prompt="   "), "prompt"),
    ("n-zero", image(n=0), "n"),
    ("n-eleven", image(n=11), "n"),
    ("n-string", image(n="2"), "n"),
    ("size-words", image(size="large"), "size"),
    ("size-number", image(size=1024), "size"),
    ("size-single-digit", image(size="1x1024"), "size"),
    ("size-leading-zero", image(size="0256x256"), "size"),
    ("size-uppercase-x", image(size="256X256"), "size"),
    ("quality-number", image(quality=1), "quality"),
    ("response-format-unknown", image(response_format="png"), "response_format"),
    ("user-number", image(user=1), "user"),
    ("style-number", image(style=5), "style"),
    ("partial-images-huge", image(partial_images=2**63), "partial_images"),
    ("output-compression-high", image(output_compression=101), "output_compression"),
]


@pytest.mark.parametrize(
    ("body", "param"),
    [pytest.param(body, param, id=name) for name, body, param in BAD_IMAGES],
)
def test_validate_images_bad_body_raises_invalid_request_naming_param(
    body: Any, param: str | None
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_images(body)

    assert caught.value.param == param
    assert caught.value.status == 400


GOOD_IMAGES: list[tuple[str, dict[str, Any]]] = [
    ("minimal", image()),
    ("everything", image(n=10, size="1792x1024", quality="hd", response_format="b64_json",
                         user="u", style="vivid")),
    ("url-format", image(n=1, size="256x256", response_format="url")),
    ("nulls-are-absent", image(n=None, size=None, quality=None, response_format=None)),
]  # fmt: skip


@pytest.mark.parametrize("body", [pytest.param(body, id=name) for name, body in GOOD_IMAGES])
def test_validate_images_good_body_returns_model(body: dict[str, Any]) -> None:
    assert validate_images(body) == "offline-painter-image"
