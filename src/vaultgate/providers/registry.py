"""The explicit registry: which providers are offered, and the models they make available.

A provider is offered when its credential variable is set (or it needs none, like the
offline provider and an operator's local servers). A model is offered when at least one of
its deployments is on an offered provider; its unavailable deployments are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from vaultgate.config import Settings
from vaultgate.providers.anthropic import AnthropicAdapter
from vaultgate.providers.azure import AzureOpenAIAdapter
from vaultgate.providers.base import Provider, ProviderConfig
from vaultgate.providers.bedrock import BedrockAdapter
from vaultgate.providers.bfl import BflAdapter
from vaultgate.providers.catalog import CatalogData, ModelEntry, ProviderSpec, is_http_url
from vaultgate.providers.cohere import CohereAdapter
from vaultgate.providers.gemini import GeminiAdapter
from vaultgate.providers.http import HttpClient
from vaultgate.providers.offline import OfflineProvider
from vaultgate.providers.openai_compat import OpenAICompatibleAdapter
from vaultgate.providers.replicate import ReplicateAdapter
from vaultgate.providers.stability import StabilityAdapter
from vaultgate.providers.vertex import VertexAdapter
from vaultgate.providers.vertex_anthropic import VertexAnthropicAdapter

log = logging.getLogger("vaultgate.providers")

AdapterFactory = Callable[[ProviderConfig, HttpClient, Settings], Provider]


def _offline(config: ProviderConfig, _http: HttpClient, settings: Settings) -> Provider:
    return OfflineProvider(
        config,
        token_delay_s=settings.offline_token_delay_ms / 1000,
        first_token_delay_s=settings.offline_first_token_delay_ms / 1000,
    )


def _openai(config: ProviderConfig, http: HttpClient, _settings: Settings) -> Provider:
    return OpenAICompatibleAdapter(config, http)


def _anthropic(config: ProviderConfig, http: HttpClient, _settings: Settings) -> Provider:
    return AnthropicAdapter(config, http)


def _gemini(config: ProviderConfig, http: HttpClient, _settings: Settings) -> Provider:
    return GeminiAdapter(config, http)


def _vertex(config: ProviderConfig, http: HttpClient, _settings: Settings) -> Provider:
    return VertexAdapter(config, http)


def _bedrock(config: ProviderConfig, http: HttpClient, _settings: Settings) -> Provider:
    return BedrockAdapter(config, http)


ADAPTERS: Mapping[str, AdapterFactory] = {
    "offline": _offline,
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "bedrock": _bedrock,
    "vertex": _vertex,
    "bfl": lambda config, http, _settings: BflAdapter(config, http),
    "stability": lambda config, http, _settings: StabilityAdapter(config, http),
    "replicate": lambda config, http, _settings: ReplicateAdapter(config, http),
    "cohere": lambda config, http, _settings: CohereAdapter(config, http),
    "azure": lambda config, http, _settings: AzureOpenAIAdapter(config, http),
    "vertex-anthropic": lambda config, http, _s: VertexAnthropicAdapter(config, http),
}


TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_base_url(template: str, environ: Mapping[str, str]) -> str | None:
    """Fill ``${VAR}`` from the environment (in a base URL or an option); None when a variable
    is unset or empty."""
    missing = [name for name in TEMPLATE_VARIABLE.findall(template) if not environ.get(name)]
    if missing:
        return None
    return TEMPLATE_VARIABLE.sub(lambda match: environ[match.group(1)], template)


def resolve_config(spec: ProviderSpec, environ: Mapping[str, str]) -> ProviderConfig | None:
    """The runtime config of a provider, or None when its credential or address is missing."""
    api_key = environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.needs_key and spec.wire_format != "offline" and not api_key:
        return None
    base_url = expand_base_url(spec.base_url, environ)
    if base_url is None:
        return None
    options = []
    for key, template in spec.options:
        value = expand_base_url(template, environ)
        if value is None:
            return None
        options.append((key, value))
    if spec.wire_format != "offline" and not is_http_url(base_url):
        log.warning(
            "provider address is not an http(s) URL; not offered",
            extra={"fields": {"provider": spec.name}},
        )
        return None
    return ProviderConfig(
        name=spec.name,
        wire_format=spec.wire_format,
        base_url=base_url,
        api_key=api_key or None,
        api_key_env=spec.api_key_env,
        headers=spec.headers,
        stream_usage=spec.stream_usage,
        connect_timeout_s=spec.connect_timeout_s,
        read_timeout_s=spec.read_timeout_s,
        total_timeout_s=spec.total_timeout_s,
        first_byte_timeout_s=spec.first_byte_timeout_s,
        drop_params=spec.drop_params,
        rename_params=spec.rename_params,
        default_params=spec.default_params,
        clamp_params=spec.clamp_params,
        options=tuple(options),
        display_name=spec.display_name,
    )


@dataclass
class Registry:
    """Offered providers and models, built once by the app factory."""

    providers: dict[str, Provider]
    models: dict[str, ModelEntry]

    @classmethod
    def build(
        cls,
        catalog: CatalogData,
        *,
        settings: Settings,
        http: HttpClient,
        environ: Mapping[str, str],
    ) -> Registry:
        """Instantiate the adapters of every offered provider."""
        providers: dict[str, Provider] = {}
        for spec in catalog.providers.values():
            if spec.wire_format == "offline" and not settings.offline_provider:
                continue
            config = resolve_config(spec, environ)
            if config is not None:
                providers[spec.name] = ADAPTERS[spec.wire_format](config, http, settings)
        models = {}
        for entry in catalog.models.values():
            live = tuple(d for d in entry.deployments if d.provider in providers)
            if live:
                models[entry.id] = replace(entry, deployments=live)
        log.info(
            "catalog loaded",
            extra={"fields": {"providers": len(providers), "models": len(models)}},
        )
        return cls(providers=providers, models=models)

    async def aclose(self) -> None:
        """Close every adapter."""
        for provider in self.providers.values():
            await provider.aclose()
