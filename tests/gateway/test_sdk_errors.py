"""Every error the gateway returns maps onto the official SDK's exception classes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import FAKE_UPSTREAM_KEY, Gateway
from tests.gateway.helpers import new_key, start_with_config
from tests.support.fake_openai import FakeOpenAI

PROMPT = [{"role": "user", "content": "hi"}]


def _chat(sdk: openai.OpenAI, model: str, **extra: Any) -> Any:
    return sdk.chat.completions.create(
        model=model,
        messages=PROMPT,
        **extra,  # type: ignore[arg-type]
    )


def test_errors_unknown_key_raises_authentication_error(shared: Gateway) -> None:
    with (
        openai.OpenAI(base_url=shared.api_base, api_key="vg_nope", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        _chat(sdk, "offline-small-text")

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_errors_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _chat(client, "gpt-99-text")

    assert caught.value.status_code == 404
    assert caught.value.param == "model"
    assert "gpt-99-text" in caught.value.message


@pytest.mark.parametrize(
    ("model", "extra", "param"),
    [
        ("offline-small-text", {"temperature": 3}, "temperature"),
        ("offline-small-text", {"max_tokens": 0}, "max_tokens"),
        ("offline-painter-image", {}, "model"),
        ("offline-small-text", {"stream": True, "n": 1000}, "n"),
    ],
)
def test_errors_invalid_request_raises_bad_request(
    client: openai.OpenAI, model: str, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, model, **extra)

    assert caught.value.status_code == 400
    assert caught.value.param == param


def test_errors_restricted_key_raises_permission_denied(shared: Gateway) -> None:
    key, _, _ = new_key(shared.database_url, allowed_models=["type:image"])
    with openai.OpenAI(base_url=shared.api_base, api_key=key, max_retries=0) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _chat(sdk, "offline-small-text")
        images = sdk.images.generate(model="offline-painter-image", prompt="x", size="256x256")

    assert caught.value.status_code == 403
    assert caught.value.code == "model_not_allowed"
    assert images.data is not None


def _rate_limited_config(base_url: str) -> str:
    # One provider per test case: a 429 with Retry-After cools its deployment down, so each
    # case needs a deployment of its own to see the upstream's 429 itself.
    lines = []
    for mode in ("plain", "stream"):
        lines += [
            f"[providers.limited-{mode}]",
            'format = "openai"',
            f'base_url = "{base_url}"',
            'api_key_env = "FAKE_UPSTREAM_KEY"',
            "",
            "[[models]]",
            f'id = "limited-{mode}-text"',
            f'provider = "limited-{mode}"',
            'upstream = "error-429"',
            "",
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[openai.OpenAI]:
    """The SDK on a gateway whose models sit behind upstreams that always answer 429."""
    running = start_with_config(
        tmp_path_factory.mktemp("limited"),
        _rate_limited_config(fake_upstream.base_url),
        extra_env={"FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY},
    )
    with openai.OpenAI(base_url=running.api_base, api_key=running.key, max_retries=0) as sdk:
        yield sdk
    running.server.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_errors_upstream_429_raises_rate_limit_with_retry_after(
    limited: openai.OpenAI, stream: bool
) -> None:
    mode = "stream" if stream else "plain"

    with pytest.raises(openai.RateLimitError) as caught:
        _chat(limited, f"limited-{mode}-text", stream=stream)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["x-vaultgate-provider"] == f"limited-{mode}"


@pytest.mark.parametrize(
    "model",
    [
        "fake-error-503-text",
        "fake-error-500-text",
        "fake-text-error-502-text",
        "fake-error-401-text",
        "fake-malformed-text",
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_errors_every_deployment_failing_raises_503(
    client: openai.OpenAI, model: str, stream: bool
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        _chat(client, model, stream=stream)

    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == 503
    assert caught.value.code == "no_provider_available"
    assert model in caught.value.message


@pytest.mark.parametrize(
    "model", ["fake-error-400-text", "fake-detail-error-422-text", "fake-client-error-as-500-text"]
)
@pytest.mark.parametrize("stream", [False, True])
def test_errors_upstream_client_error_raises_bad_request(
    client: openai.OpenAI, model: str, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, model, stream=stream)

    assert caught.value.status_code == 400
    assert caught.value.code == "upstream_rejected_request"
    assert caught.value.response.headers["x-vaultgate-attempts"] == "1"


def test_errors_text_model_on_images_raises_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="offline-small-text", prompt="x")

    assert caught.value.code == "wrong_endpoint"
    assert "/v1/chat/completions" in caught.value.message
