"""The upstream credential never reaches a client or the server log, even when a careless
upstream repeats it back in its errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAKE_UPSTREAM_KEY, Gateway
from tests.gateway.helpers import assert_openai_error, parse_event_stream, start_with_config
from tests.support.fake_openai import FakeOpenAI

ECHO_MODELS = [
    "echo-key-400", "echo-key-401", "echo-key-403", "echo-key-422", "echo-key-429",
    "echo-key-500", "echo-key-503", "echo-key-text-400", "echo-key-text-502", "error-401",
]  # fmt: skip


def _config(base_url: str) -> str:
    lines = [
        "[providers.careless]",
        'format = "openai"',
        f'base_url = "{base_url}"',
        'api_key_env = "FAKE_UPSTREAM_KEY"',
        "",
    ]
    for upstream in [*ECHO_MODELS, "echo-key-stream"]:
        lines += [
            "[[models]]",
            f'id = "careless-{upstream}-text"',
            'provider = "careless"',
            f'upstream = "{upstream}"',
            'pricing = { input = "1.00", output = "2.00" }',
            "",
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def careless(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[Gateway]:
    """A gateway whose only provider echoes the credential it is sent."""
    tmp_path: Path = tmp_path_factory.mktemp("careless")
    running = start_with_config(
        tmp_path,
        _config(fake_upstream.base_url),
        extra_env={"FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY},
    )
    yield running
    running.server.stop()


def _post(gateway: Gateway, model: str, *, stream: bool) -> httpx.Response:
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream},
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=10,
    ) as response:
        response.read()
    return response


@pytest.mark.parametrize("upstream", ECHO_MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_echoing_key_does_not_leak_it(
    careless: Gateway, fake_upstream: FakeOpenAI, upstream: str, stream: bool
) -> None:
    response = _post(careless, f"careless-{upstream}-text", stream=stream)

    assert response.status_code in (400, 429, 503), response.text
    assert_openai_error(response, response.status_code)
    assert FAKE_UPSTREAM_KEY not in response.text
    assert FAKE_UPSTREAM_KEY not in str(response.headers)
    sent = [r for r in fake_upstream.requests if r.body.get("model") == upstream]
    assert sent[-1].headers["Authorization"] == f"Bearer {FAKE_UPSTREAM_KEY}"


def test_upstream_stream_error_echoing_key_does_not_leak_it(careless: Gateway) -> None:
    response = _post(careless, "careless-echo-key-stream-text", stream=True)
    events, done = parse_event_stream(response.read())

    assert response.status_code == 200
    assert not done
    assert list(events[-1]) == ["error"]
    assert FAKE_UPSTREAM_KEY not in response.text


def test_upstream_key_never_in_server_log(careless: Gateway) -> None:
    for upstream in ECHO_MODELS:
        _post(careless, f"careless-{upstream}-text", stream=False)
    _post(careless, "careless-echo-key-stream-text", stream=True)

    logs = careless.server.logs()
    assert "careless" in logs
    assert FAKE_UPSTREAM_KEY not in logs
    assert FAKE_UPSTREAM_KEY[4:20] not in logs
