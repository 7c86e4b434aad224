"""The model list and model lookup through the official SDK, with key restrictions."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import Gateway
from tests.gateway.helpers import new_key

OFFLINE = {"offline-small-text", "offline-painter-image", "offline-omni-hybrid"}


@pytest.fixture(scope="module")
def restricted(shared: Gateway) -> Iterator[openai.OpenAI]:
    """A key limited to one model id and to whatever the ``fake-backup`` provider serves."""
    key, _, _ = new_key(
        shared.database_url, allowed_models=["offline-small-text", "provider:fake-backup"]
    )
    with openai.OpenAI(base_url=shared.api_base, api_key=key, max_retries=0) as sdk:
        yield sdk


def test_models_list_has_vaultgate_fields(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}

    assert OFFLINE | {"fake-plain-text", "fake-failover-text", "fake-dalle-image"} <= set(models)
    for model in models.values():
        extra = model.model_extra or {}
        assert model.object == "model"
        assert extra["type"] == model.id.rsplit("-", 1)[1]
        assert extra["provider"] in extra["providers"]
        assert extra["pricing"]["currency"] == "USD"
    failover = models["fake-failover-text"].model_extra or {}
    assert failover["provider"] == "fake"
    assert failover["providers"] == ["fake", "fake-backup"]
    painter = models["offline-painter-image"].model_extra or {}
    assert painter["pricing"]["per_image"]["256x256"] == "0.004"
    small = models["offline-small-text"].model_extra or {}
    assert small["pricing"]["input_per_million"] == "0.1"
    assert small["context_window"] == 32768


def test_models_list_restricted_key_sees_only_allowed(restricted: openai.OpenAI) -> None:
    ids = {model.id for model in restricted.models.list()}

    assert ids == {"offline-small-text", "fake-failover-text"}


def test_models_retrieve_returns_one_model(client: openai.OpenAI) -> None:
    model = client.models.retrieve("offline-omni-hybrid")

    assert model.id == "offline-omni-hybrid"
    extra = model.model_extra or {}
    assert extra["type"] == "hybrid"
    assert extra["provider"] == "offline"
    assert set(extra["pricing"]["per_image"]) == {"256x256", "512x512", "1024x1024"}


def test_models_retrieve_unknown_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model-text")

    assert caught.value.code == "model_not_found"


def test_models_retrieve_disallowed_raises_not_found(restricted: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        restricted.models.retrieve("offline-painter-image")

    assert restricted.models.retrieve("fake-failover-text").id == "fake-failover-text"


def test_models_list_bad_key_raises_authentication_error(shared: Gateway) -> None:
    with (
        openai.OpenAI(base_url=shared.api_base, api_key="vg_" + "x" * 43, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.models.list()

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
