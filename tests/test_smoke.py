"""A first end-to-end check with the official SDK."""

from __future__ import annotations

import openai

from tests.conftest import Gateway


def test_offline_stream_through_sdk_returns_text(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key)
    stream = client.chat.completions.create(
        model="offline-small-text",
        messages=[{"role": "user", "content": "ping"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("You said: ping")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    client.close()


def test_fake_upstream_plain_completion(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key)
    reply = client.chat.completions.create(
        model="fake-plain-text", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    assert reply.model == "fake-plain-text"
    client.close()
