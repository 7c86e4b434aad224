"""The model catalog: shipped data files merged with the operator's config file.

Both use the same TOML shape::

    [providers.my-vllm]
    format = "openai"                  # wire format
    base_url = "http://127.0.0.1:8000/v1"
    api_key_env = "MY_VLLM_KEY"        # optional: the variable holding the credential

    [[models]]
    id = "llama-3.1-8b-text"           # the suffix (-text, -image, -hybrid) is the type
    provider = "my-vllm"
    upstream = "meta-llama/Llama-3.1-8B-Instruct"
    context_window = 131072
    pricing = { input = "0.05", output = "0.08" }   # USD per million tokens

A model may list several ``deployments = [{provider, upstream, weight}]`` instead of one
``provider``/``upstream`` pair. An operator's model with a shipped id replaces it. A model
whose provider announced a price change lists it as ``[[models.price_changes]]`` with a
``from`` date and the new prices. A model keeps its whole dated schedule: its ``pricing`` is
the one in force on the day the catalog loads, and a running app switches to the next prices
at 00:00 UTC of their date (see ``providers/repricing.py``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from vaultgate.billing.pricing import Pricing, parse_price
from vaultgate.errors import ConfigError
from vaultgate.providers.base import ParamValue

MODEL_TYPES = ("text", "image", "hybrid")
WIRE_FORMATS = (
    "openai", "offline", "anthropic", "gemini", "vertex", "bedrock",
    "bfl", "stability", "replicate", "cohere", "azure", "vertex-anthropic",
)  # fmt: skip
CHAT_TYPES = frozenset({"text", "hybrid"})
IMAGE_TYPES = frozenset({"image", "hybrid"})


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a model: a provider and its name for the model."""

    provider: str
    upstream: str
    weight: int = 1
    priority: int = 0


@dataclass(frozen=True, slots=True)
class PriceChange:
    """Prices in force from 00:00 UTC of ``start`` on."""

    start: date
    pricing: Pricing


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of the catalog.

    ``pricing`` is in force now. A model whose prices change on announced dates also keeps
    ``price_schedule``: every dated price, oldest first, its base prices from ``date.min``.
    """

    id: str
    type: str
    deployments: tuple[Deployment, ...]
    pricing: Pricing
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] = ()
    owned_by: str = ""
    created: int = 0
    price_schedule: tuple[PriceChange, ...] = ()

    def pricing_on(self, day: date) -> Pricing:
        """The prices in force on ``day`` (a UTC date)."""
        return price_in_force(self.price_schedule, day) or self.pricing

    @property
    def providers(self) -> tuple[str, ...]:
        """Names of the providers behind the model, in routing order."""
        return tuple(d.provider for d in self.deployments)

    def serves_chat(self) -> bool:
        """Whether the model answers chat completions."""
        return self.type in CHAT_TYPES

    def serves_images(self) -> bool:
        """Whether the model generates images."""
        return self.type in IMAGE_TYPES


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as declared in a data file, before credentials are resolved."""

    name: str
    wire_format: str
    base_url: str = ""
    api_key_env: str | None = None
    display_name: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    stream_usage: bool = True
    needs_key: bool = True
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None
    total_timeout_s: float | None = None
    first_byte_timeout_s: float | None = None
    drop_params: tuple[str, ...] = ()
    rename_params: tuple[tuple[str, str], ...] = ()
    default_params: tuple[tuple[str, ParamValue], ...] = ()
    clamp_params: tuple[tuple[str, float, float], ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogData:
    """Everything the data files declare."""

    providers: Mapping[str, ProviderSpec]
    models: Mapping[str, ModelEntry]


def _require(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def _table(value: Any, what: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {what} must be a table")
    return value


def _timeouts(table: Mapping[str, Any], where: str) -> dict[str, float]:
    timeouts = _table(table.get("timeouts") or {}, "'timeouts'", where)
    for key, value in timeouts.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: 'timeouts.{key}' must be a positive number")
    return dict(timeouts)


def _optional_int(table: Mapping[str, Any], key: str, where: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: '{key}' must be a positive integer")
    return value


def parse_provider(name: str, table: Mapping[str, Any], *, from_operator: bool) -> ProviderSpec:
    """One ``[providers.NAME]`` table."""
    where = f"provider {name!r}"
    wire_format = _require(table, "format", str, where)
    if wire_format not in WIRE_FORMATS:
        raise ConfigError(f"{where}: unknown format {wire_format!r}; one of {WIRE_FORMATS}")
    headers = _table(table.get("headers") or {}, "'headers'", where)
    timeouts = _timeouts(table, where)
    base_url = str(table.get("base_url", ""))
    templated = "${" in base_url
    if wire_format != "offline" and not templated and not is_http_url(base_url):
        raise ConfigError(f"{where}: 'base_url' must be an http(s) URL")
    api_key_env = table.get("api_key_env")
    return ProviderSpec(
        name=name,
        wire_format=wire_format,
        base_url=base_url,
        api_key_env=str(api_key_env) if api_key_env else None,
        display_name=str(table.get("display_name", name)),
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
        stream_usage=bool(table.get("stream_usage", True)),
        # A provider without a credential variable (a local server) needs none; one
        # whose credential is optional is offered without it too.
        needs_key=bool(api_key_env) and not table.get("optional_key", False),
        connect_timeout_s=timeouts.get("connect"),
        read_timeout_s=timeouts.get("idle", timeouts.get("read")),
        total_timeout_s=timeouts.get("total"),
        first_byte_timeout_s=timeouts.get("first_byte"),
        drop_params=_string_list(table, "drop_params", where),
        rename_params=tuple(
            (str(k), str(v))
            for k, v in _table(table.get("rename_params") or {}, "'rename_params'", where).items()
        ),
        default_params=_default_params(table, where),
        clamp_params=_clamp_params(table, where),
        options=_options(table, where),
    )


def _default_params(table: Mapping[str, Any], where: str) -> tuple[tuple[str, ParamValue], ...]:
    defaults = _table(table.get("default_params") or {}, "'default_params'", where)
    for key, value in defaults.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}: 'default_params.{key}' must be a string, number or bool")
    return tuple((str(k), v) for k, v in defaults.items())


def _clamp_params(table: Mapping[str, Any], where: str) -> tuple[tuple[str, float, float], ...]:
    clamps = _table(table.get("clamp_params") or {}, "'clamp_params'", where)
    ranges = []
    for key, bounds in clamps.items():
        numbers = isinstance(bounds, list) and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        )
        if not numbers or len(bounds) != 2 or bounds[0] > bounds[1]:
            raise ConfigError(f"{where}: 'clamp_params.{key}' must be [low, high]")
        ranges.append((str(key), float(bounds[0]), float(bounds[1])))
    return tuple(ranges)


def _options(table: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    options = _table(table.get("options") or {}, "'options'", where)
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: 'options.{key}' must be a string or a number")
    return tuple((str(k), str(v)) for k, v in options.items())


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL."""
    return url.startswith(("http://", "https://")) and len(url) > len("https://")


def _string_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def _parse_deployments(table: Mapping[str, Any], where: str) -> tuple[Deployment, ...]:
    raw = table.get("deployments")
    if raw is None:
        provider = _require(table, "provider", str, where)
        return (Deployment(provider, str(table.get("upstream") or table["id"])),)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: 'deployments' must be a non-empty list")
    deployments = []
    for position, item in enumerate(raw):
        item = _table(item, "each deployment", where)
        provider = _require(item, "provider", str, where)
        upstream = _require(item, "upstream", str, where)
        weight = item.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ConfigError(f"{where}: deployment weight must be a positive integer")
        # Without explicit priorities the list order is the priority order.
        priority = item.get("priority", position)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ConfigError(f"{where}: deployment priority must be an integer")
        deployments.append(Deployment(provider, upstream, weight, priority))
    return tuple(deployments)


def _parse_pricing(table: Any, where: str) -> Pricing:
    if table is None:
        return Pricing()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: 'pricing' must be a table")
    images = _table(table.get("images") or {}, "'pricing.images'", where)
    return Pricing(
        input_per_m=parse_price(table.get("input", "0"), where=where),
        cached_input_per_m=parse_price(
            table.get("cached_input", table.get("input", "0")), where=where
        ),
        output_per_m=parse_price(table.get("output", "0"), where=where),
        images={str(k): parse_price(v, where=where) for k, v in images.items()},
    )


def _price_schedule(table: Mapping[str, Any], where: str) -> tuple[PriceChange, ...]:
    """The base prices from ``date.min``, then each ``price_changes`` entry from its date,
    oldest first; an entry names every price it sets (an omitted cached price is the
    input's). Empty when the model lists no changes."""
    raw = table.get("price_changes") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'price_changes' must be an array of tables")
    if not raw:
        return ()
    changes = {date.min: _parse_pricing(table.get("pricing"), where)}
    for change in raw:
        change = _table(change, "each price change", where)
        start = change.get("from")
        if not isinstance(start, date) or isinstance(start, datetime):
            raise ConfigError(f"{where}: a price change needs 'from' as a date (2027-01-01)")
        if start in changes:
            raise ConfigError(f"{where}: two price changes from {start.isoformat()}")
        prices = {k: v for k, v in change.items() if k != "from"}
        changes[start] = _parse_pricing(prices, where)
    return tuple(PriceChange(start, changes[start]) for start in sorted(changes))


def price_in_force(schedule: tuple[PriceChange, ...], day: date) -> Pricing | None:
    """The prices of ``schedule`` in force on ``day``; None for an empty schedule."""
    in_force = None
    for change in schedule:
        if change.start > day:
            break
        in_force = change.pricing
    return in_force


def parse_model(table: Mapping[str, Any], *, today: date | None = None) -> ModelEntry:
    """One ``[[models]]`` entry, priced as on ``today`` (UTC today by default)."""
    model_id = _require(table, "id", str, "model")
    where = f"model {model_id!r}"
    suffix = model_id.rsplit("-", 1)[-1]
    model_type = table.get("type", suffix)
    if model_type not in MODEL_TYPES or suffix != model_type:
        raise ConfigError(f"{where}: the id must end in -text, -image or -hybrid, matching type")
    capabilities = table.get("capabilities") or []
    if not isinstance(capabilities, list):
        raise ConfigError(f"{where}: 'capabilities' must be an array of strings")
    created = table.get("created", 0)
    if not isinstance(created, int) or isinstance(created, bool):
        raise ConfigError(f"{where}: 'created' must be an integer (epoch seconds)")
    deployments = _parse_deployments(table, where)
    schedule = _price_schedule(table, where)
    today = today or datetime.now(UTC).date()
    return ModelEntry(
        id=model_id,
        type=model_type,
        deployments=deployments,
        pricing=price_in_force(schedule, today) or _parse_pricing(table.get("pricing"), where),
        context_window=_optional_int(table, "context_window", where),
        max_output_tokens=_optional_int(table, "max_output_tokens", where),
        capabilities=tuple(str(c) for c in capabilities),
        owned_by=str(table.get("owned_by", deployments[0].provider)),
        created=created,
        price_schedule=schedule,
    )


def parse_document(
    document: Mapping[str, Any], *, from_operator: bool, today: date | None = None
) -> tuple[dict[str, ProviderSpec], dict[str, ModelEntry]]:
    """Providers and models of one TOML document."""
    providers_table = document.get("providers") or {}
    if not isinstance(providers_table, dict):
        raise ConfigError("'providers' must be a table of tables")
    providers = {
        name: parse_provider(
            name,
            _table(table, "the declaration", f"provider {name!r}"),
            from_operator=from_operator,
        )
        for name, table in providers_table.items()
    }
    models_list = document.get("models") or []
    if not isinstance(models_list, list):
        raise ConfigError("'models' must be an array of tables: write [[models]]")
    models: dict[str, ModelEntry] = {}
    for table in models_list:
        entry = parse_model(_table(table, "each entry", "'models'"), today=today)
        models[entry.id] = entry
    return providers, models


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def shipped_documents() -> Iterable[tuple[str, dict[str, Any]]]:
    """The data files inside the package, in a stable order."""
    data = resources.files("vaultgate.providers") / "data"
    for name in sorted(entry.name for entry in data.iterdir() if entry.name.endswith(".toml")):
        yield name, _read_toml((data / name).read_text(encoding="utf-8"), name)


def load_catalog(operator_config: Path | None, *, today: date | None = None) -> CatalogData:
    """The shipped catalog, with the operator's providers and models merged over it, priced
    as on ``today``."""
    providers: dict[str, ProviderSpec] = {}
    models: dict[str, ModelEntry] = {}
    for _, document in shipped_documents():
        more_providers, more_models = parse_document(document, from_operator=False, today=today)
        providers.update(more_providers)
        models.update(more_models)
    if operator_config is not None:
        try:
            text = operator_config.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {operator_config}: {exc}") from None
        extra_providers, extra_models = parse_document(
            _read_toml(text, str(operator_config)), from_operator=True, today=today
        )
        providers.update(extra_providers)
        models.update(extra_models)
    for entry in models.values():
        for deployment in entry.deployments:
            if deployment.provider not in providers:
                raise ConfigError(
                    f"model {entry.id!r} names unknown provider {deployment.provider!r}"
                )
    return CatalogData(providers=providers, models=models)
