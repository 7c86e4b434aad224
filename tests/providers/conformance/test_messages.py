"""Cases about the conversation as the provider receives it: system prompts, turns and
images."""

from __future__ import annotations

import pytest

from tests.providers.conformance.harness import Harness
from tests.providers.conformance.protocol import IMAGES, ImageInput
from vaultgate.errors import UpstreamError

pytestmark = pytest.mark.anyio

IMAGE_URL = "https://images.example.invalid/cat.png"


@pytest.mark.case("system-messages")
async def test_system_messages_anywhere_all_reach_provider_in_order(harness: Harness) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "assistant", "content": "un"},
        {"role": "system", "content": "Never apologise."},
        {"role": "user", "content": "two"},
    ]
    call = harness.call("plain", messages=messages)

    await harness.run(call)

    sent = harness.sent(call)
    prompts = ["Be brief.", "Answer in French.", "Never apologise."]
    positions = [sent.system.find(prompt) for prompt in prompts]
    assert -1 not in positions, sent.system
    assert positions == sorted(positions)
    assert sent.texts == ["one", "un", "two"]
    assert [turn.role for turn in sent.turns] == ["user", "assistant", "user"]


@pytest.mark.case("same-role-turns")
async def test_same_role_turns_keep_every_text_in_order(harness: Harness) -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "three"},
    ]
    call = harness.call("plain", messages=messages)

    answer = await harness.run(call)

    sent = harness.sent(call)
    assert sent.texts == ["one", "two", "a", "b", "three"]
    roles = [turn.role for turn in sent.turns]
    if harness.target.facts.alternating_roles:
        assert roles == ["user", "assistant", "user"]
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.case("image-data-url")
@pytest.mark.parametrize("media_type", list(IMAGES))
async def test_image_data_url_reaches_provider_with_its_media_type(
    harness: Harness, media_type: str
) -> None:
    data = IMAGES[media_type]
    image = {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    content = [{"type": "text", "text": "What is this?"}, image]
    call = harness.call("image-input", messages=[{"role": "user", "content": content}])

    answer = await harness.run(call)

    sent = harness.sent(call)
    assert sent.images == [ImageInput(media_type=media_type, data=data)]
    assert sent.texts == ["What is this?"]
    assert answer.choices[0].content


@pytest.mark.case("image-http-url")
async def test_image_http_url_passed_on_or_refused_as_documented(harness: Harness) -> None:
    image = {"type": "image_url", "image_url": {"url": IMAGE_URL}}
    content = [{"type": "text", "text": "What is this?"}, image]
    call = harness.call("image-input", messages=[{"role": "user", "content": content}])

    if not harness.target.facts.http_images:
        with pytest.raises(UpstreamError) as caught:
            await harness.run(call)
        assert (caught.value.status, caught.value.retryable) == (400, False)
        return
    answer = await harness.run(call)

    [sent] = harness.sent(call).images
    assert sent.url == IMAGE_URL
    assert answer.choices[0].content
