"""The registry: which providers are offered, and which models they make available."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultgate.config import Settings
from vaultgate.providers.catalog import CatalogData, load_catalog
from vaultgate.providers.http import HttpClient, Timeouts
from vaultgate.providers.offline import OfflineProvider
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter
from vaultgate.providers.registry import (
    TEMPLATE_VARIABLE,
    Registry,
    expand_base_url,
    resolve_config,
)

OPERATOR = """
[providers.local]
format = "openai"
base_url = "http://127.0.0.1:9/v1"

[providers.keyed]
format = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "KEYED_SECRET"

[[models]]
id = "local-text"
provider = "local"
pricing = { input = "1", output = "1" }

[[models]]
id = "keyed-only-text"
provider = "keyed"
pricing = { input = "1", output = "1" }

[[models]]
id = "spread-text"
pricing = { input = "1", output = "1" }
deployments = [
    { provider = "openai", upstream = "gpt-4o" },
    { provider = "keyed", upstream = "k" },
    { provider = "local", upstream = "l" },
]
"""


@pytest.fixture
def catalog(tmp_path: Path) -> CatalogData:
    """The shipped catalog plus two operator providers: a local one and a keyed one."""
    path = tmp_path / "vaultgate.toml"
    path.write_text(OPERATOR)
    return load_catalog(path)


def build(
    catalog: CatalogData, environ: dict[str, str], *, offline_provider: bool = True
) -> Registry:
    """A registry for ``environ``; its HTTP session is never opened."""
    http = HttpClient(pool_size=1, pool_per_host=1, timeouts=Timeouts(1, 1, 1))
    return Registry.build(
        catalog, settings=Settings(offline_provider=offline_provider), http=http, environ=environ
    )


def test_registry_without_credentials_offers_only_keyless_providers(
    catalog: CatalogData,
) -> None:
    registry = build(catalog, {})

    assert set(registry.providers) == {"offline", "local"}
    assert isinstance(registry.providers["offline"], OfflineProvider)
    assert "gpt-4o-text" not in registry.models
    assert "keyed-only-text" not in registry.models


def test_registry_credential_set_offers_provider_with_key(catalog: CatalogData) -> None:
    registry = build(catalog, {"OPENAI_API_KEY": "sk-test", "KEYED_SECRET": "k-test"})

    openai = registry.providers["openai"]
    assert isinstance(openai, OpenAICompatibleAdapter)
    assert openai.config.api_key == "sk-test"
    assert registry.providers["keyed"].config.api_key == "k-test"
    assert "gpt-4o-text" in registry.models
    assert "keyed-only-text" in registry.models


def test_registry_empty_credential_is_treated_as_missing(catalog: CatalogData) -> None:
    registry = build(catalog, {"OPENAI_API_KEY": ""})

    assert "openai" not in registry.providers


def test_registry_operator_local_provider_without_key_variable_is_offered(
    catalog: CatalogData,
) -> None:
    registry = build(catalog, {})

    local = registry.providers["local"]
    assert local.config.api_key is None
    assert local.config.base_url == "http://127.0.0.1:9/v1"
    assert "local-text" in registry.models


def test_registry_model_loses_unavailable_deployments(catalog: CatalogData) -> None:
    registry = build(catalog, {"KEYED_SECRET": "k-test"})

    assert registry.models["spread-text"].providers == ("keyed", "local")
    assert catalog.models["spread-text"].providers == ("openai", "keyed", "local")


def test_registry_offline_disabled_by_setting_drops_offline_models(
    catalog: CatalogData,
) -> None:
    registry = build(catalog, {}, offline_provider=False)

    assert "offline" not in registry.providers
    assert not any(model.startswith("offline-") for model in registry.models)
    assert "local-text" in registry.models


def test_registry_offline_enabled_offers_offline_models(catalog: CatalogData) -> None:
    registry = build(catalog, {})

    assert {"offline-small-text", "offline-painter-image", "offline-omni-hybrid"} <= set(
        registry.models
    )


def test_expand_base_url_fills_variables_from_environment() -> None:
    template = "https://api.example.com/accounts/${ACCOUNT}/ai/v1"
    assert expand_base_url(template, {"ACCOUNT": "abc"}) == (
        "https://api.example.com/accounts/abc/ai/v1"
    )
    assert expand_base_url(template, {}) is None
    assert expand_base_url("https://plain.example.com/v1", {}) == "https://plain.example.com/v1"


def test_registry_local_server_offered_only_when_its_address_is_set() -> None:
    ollama = load_catalog(None).providers["ollama"]
    assert resolve_config(ollama, {}) is None
    config = resolve_config(ollama, {"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert config is not None
    assert config.base_url == "http://127.0.0.1:11434/v1"
    assert config.api_key is None
    assert resolve_config(ollama, {"OLLAMA_BASE_URL": "not a url"}) is None


def credentials_for_every_provider(catalog: CatalogData) -> dict[str, str]:
    """A fake credential for every key variable, a local address for every variable a base
    URL starts with (it is the server's address), a fake value for every other variable."""
    environ: dict[str, str] = {}
    for spec in catalog.providers.values():
        if spec.api_key_env:
            environ[spec.api_key_env] = "test-credential"
        templates = [spec.base_url, *(value for _, value in spec.options)]
        for template in templates:
            for name in TEMPLATE_VARIABLE.findall(template):
                is_address = template.startswith("${" + name + "}")
                environ[name] = "http://127.0.0.1:9" if is_address else "test-value"
    return environ


def test_registry_with_every_credential_offers_every_shipped_provider_and_model() -> None:
    catalog = load_catalog(None)

    registry = build(catalog, credentials_for_every_provider(catalog))

    assert set(registry.providers) == set(catalog.providers)
    assert set(registry.models) == set(catalog.models)
    # The shipped catalog as of this writing: 45 providers and 133 models, 41 of the providers
    # serving at least one; adapters still being written add more, so these are floors.
    assert len(registry.providers) >= 45
    assert len(registry.models) >= 133
    assert len({d.provider for m in registry.models.values() for d in m.deployments}) >= 41
