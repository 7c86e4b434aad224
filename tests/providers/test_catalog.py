"""The model catalog: the shipped data files and the operator's config file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from vaultgate.errors import ConfigError
from vaultgate.providers.catalog import (
    MODEL_TYPES,
    WIRE_FORMATS,
    CatalogData,
    Deployment,
    load_catalog,
    shipped_documents,
)

SHIPPED = load_catalog(None)


def write_config(tmp_path: Path, text: str) -> Path:
    """An operator config file holding ``text``."""
    path = tmp_path / "vaultgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> CatalogData:
    """The catalog with an operator file holding ``text``."""
    return load_catalog(write_config(tmp_path, text))


LOCAL_PROVIDER = """
[providers.local]
format = "openai"
base_url = "http://127.0.0.1:9/v1"
"""

# Shipped providers that bill in another currency or publish no token price: they serve only
# as later deployments of entries priced from another provider's USD list.
NO_USD_PRICE = frozenset({"zhipu", "siliconflow", "scaleway", "nvidia"})


def is_local_server(name: str) -> bool:
    """Whether the shipped provider ``name`` is a local server (its address is a variable)."""
    base_url = SHIPPED.providers[name].base_url
    return base_url.startswith("${") and base_url.endswith("_BASE_URL}")


# The shipped catalog.


def test_shipped_catalog_has_offline_provider_and_models() -> None:
    assert SHIPPED.providers["offline"].wire_format == "offline"
    assert {"offline-small-text", "offline-painter-image", "offline-omni-hybrid"} <= set(
        SHIPPED.models
    )


@pytest.mark.parametrize("model_id", sorted(SHIPPED.models))
def test_shipped_model_is_well_formed(model_id: str) -> None:
    entry = SHIPPED.models[model_id]
    pricing = entry.pricing

    assert entry.type in MODEL_TYPES
    assert model_id.endswith("-" + entry.type)
    assert entry.deployments
    assert all(d.provider in SHIPPED.providers for d in entry.deployments)
    assert all(d.upstream and d.weight >= 1 for d in entry.deployments)
    prices = [pricing.input_per_m, pricing.cached_input_per_m, pricing.output_per_m]
    assert all(type(price) is int and price >= 0 for price in prices)
    assert all(type(price) is int and price > 0 for price in pricing.images.values())
    if entry.serves_chat():
        # Every chat model is priced, except one served only by local servers: nobody bills
        # their tokens, so it may be free (39-extra-hosts.toml).
        if not all(is_local_server(d.provider) for d in entry.deployments):
            assert pricing.input_per_m > 0
            assert pricing.output_per_m > 0
        assert pricing.cached_input_per_m <= pricing.input_per_m
    if entry.serves_images():
        assert pricing.images
    if entry.type == "image":
        assert (pricing.input_per_m, pricing.output_per_m) == (0, 0)
    assert entry.context_window is None or entry.context_window > 0
    if entry.context_window and entry.max_output_tokens:
        assert entry.max_output_tokens <= entry.context_window


@pytest.mark.parametrize("name", sorted(SHIPPED.providers))
def test_shipped_provider_is_well_formed(name: str) -> None:
    spec = SHIPPED.providers[name]

    assert spec.wire_format in WIRE_FORMATS
    assert spec.display_name
    if spec.wire_format == "offline":
        return
    if spec.base_url.startswith("${"):
        # A local server: offered only once its address variable is set.
        assert spec.base_url.endswith("_BASE_URL}")
        assert not spec.needs_key
    else:
        assert spec.base_url.startswith("https://")
        assert spec.api_key_env
        assert spec.needs_key


def test_shipped_free_chat_models_are_served_only_by_local_servers() -> None:
    free = {
        model_id: entry
        for model_id, entry in SHIPPED.models.items()
        if entry.serves_chat()
        and (entry.pricing.input_per_m, entry.pricing.output_per_m) == (0, 0)
    }

    assert set(free) == {"gpt-oss-20b-local-text"}
    assert free["gpt-oss-20b-local-text"].deployments == (
        Deployment("ollama", "gpt-oss:20b", priority=0),
        Deployment("lmstudio", "openai/gpt-oss-20b", priority=1),
        Deployment("vllm", "openai/gpt-oss-20b", priority=2),
    )
    assert all(is_local_server(d.provider) for entry in free.values() for d in entry.deployments)


def test_shipped_providers_without_usd_price_only_follow_a_priced_deployment() -> None:
    served = [entry for entry in SHIPPED.models.values() if NO_USD_PRICE & set(entry.providers)]

    assert {p for entry in served for p in entry.providers} >= NO_USD_PRICE
    assert all(entry.providers[0] not in NO_USD_PRICE for entry in served)


def test_shipped_model_ids_are_unique_across_data_files() -> None:
    ids = [
        model["id"] for _, document in shipped_documents() for model in document.get("models", [])
    ]

    assert len(ids) == len(set(ids))


def test_shipped_provider_names_cover_every_deployment_and_are_offered_once() -> None:
    named = {d.provider for entry in SHIPPED.models.values() for d in entry.deployments}

    assert named <= set(SHIPPED.providers)
    assert all(name == spec.name for name, spec in SHIPPED.providers.items())


def test_shipped_parameter_rules_are_read_from_provider_tables() -> None:
    providers = SHIPPED.providers

    assert ("temperature", 0.0, 1.0) in providers["moonshot"].clamp_params
    assert ("temperature", 0.01, 1.0) in providers["minimax"].clamp_params
    assert ("max_tokens", 2048) in providers["cloudflare"].default_params
    assert ("seed", "random_seed") in providers["mistral"].rename_params


def test_shipped_gemini_promotional_price_ends_after_2026_12_31() -> None:
    promotion = load_catalog(None, today=date(2026, 12, 31)).models["gemini-3.8-flash-text"]
    after = load_catalog(None, today=date(2027, 1, 1)).models["gemini-3.8-flash-text"]

    assert (promotion.pricing.input_per_m, promotion.pricing.output_per_m) == (750_000, 3_750_000)
    assert promotion.pricing.cached_input_per_m == 75_000
    assert (after.pricing.input_per_m, after.pricing.output_per_m) == (1_500_000, 7_500_000)
    assert after.pricing.cached_input_per_m == 1_500_000


def test_shipped_prices_are_exact_micros() -> None:
    pricing = SHIPPED.models["gpt-4o-mini-text"].pricing

    assert (pricing.input_per_m, pricing.cached_input_per_m) == (150_000, 75_000)
    assert pricing.output_per_m == 600_000


# The operator's config file.


def test_operator_config_adds_provider_and_models(tmp_path: Path) -> None:
    catalog = load_text(
        tmp_path,
        LOCAL_PROVIDER
        + """
[[models]]
id = "llama-text"
provider = "local"
upstream = "meta/llama"
context_window = 8192
pricing = { input = "0.05", output = 0.08 }

[[models]]
id = "pair-text"
deployments = [
    { provider = "local", upstream = "a", weight = 3 },
    { provider = "offline", upstream = "offline-small" },
]
""",
    )

    local = catalog.providers["local"]
    assert local.base_url == "http://127.0.0.1:9/v1"
    assert local.needs_key is False
    llama = catalog.models["llama-text"]
    assert llama.deployments == (Deployment("local", "meta/llama"),)
    assert (llama.pricing.input_per_m, llama.pricing.output_per_m) == (50_000, 80_000)
    assert llama.pricing.cached_input_per_m == 50_000
    assert llama.context_window == 8192
    assert catalog.models["pair-text"].providers == ("local", "offline")
    assert catalog.models["pair-text"].deployments[0].weight == 3
    assert "gpt-4o-text" in catalog.models


def test_operator_provider_with_key_variable_needs_key(tmp_path: Path) -> None:
    catalog = load_text(tmp_path, LOCAL_PROVIDER + 'api_key_env = "LOCAL_KEY"\n')

    assert catalog.providers["local"].needs_key is True
    assert catalog.providers["local"].api_key_env == "LOCAL_KEY"


def test_operator_model_with_shipped_id_replaces_it(tmp_path: Path) -> None:
    catalog = load_text(
        tmp_path,
        LOCAL_PROVIDER
        + """
[[models]]
id = "gpt-4o-text"
provider = "local"
upstream = "my-gpt"
pricing = { input = "9", output = "9" }
""",
    )

    entry = catalog.models["gpt-4o-text"]
    assert entry.deployments == (Deployment("local", "my-gpt"),)
    assert entry.pricing.input_per_m == 9_000_000
    assert entry.capabilities == ()


def test_operator_provider_with_shipped_name_replaces_it(tmp_path: Path) -> None:
    catalog = load_text(
        tmp_path, '[providers.openai]\nformat = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )

    assert catalog.providers["openai"].base_url == "http://127.0.0.1:9/v1"
    assert catalog.models["gpt-4o-text"].providers == ("openai", "azure")


def test_operator_provider_timeouts_and_headers_are_read(tmp_path: Path) -> None:
    catalog = load_text(
        tmp_path,
        LOCAL_PROVIDER
        + 'headers = { "X-Org" = "acme" }\nstream_usage = false\n'
        + "timeouts = { connect = 2, read = 3.5, total = 60 }\n",
    )

    spec = catalog.providers["local"]
    assert spec.headers == (("X-Org", "acme"),)
    assert spec.stream_usage is False
    assert (spec.connect_timeout_s, spec.read_timeout_s, spec.total_timeout_s) == (2, 3.5, 60)


def test_operator_provider_parameter_rules_are_read(tmp_path: Path) -> None:
    catalog = load_text(
        tmp_path,
        LOCAL_PROVIDER
        + 'default_params = { max_tokens = 512, safe_mode = true, tier = "low" }\n'
        + "clamp_params = { temperature = [0, 1], top_p = [0.1, 0.9] }\n",
    )

    spec = catalog.providers["local"]
    assert spec.default_params == (("max_tokens", 512), ("safe_mode", True), ("tier", "low"))
    assert spec.clamp_params == (("temperature", 0.0, 1.0), ("top_p", 0.1, 0.9))


PRICE_CHANGES = """
[[models]]
id = "dated-text"
provider = "local"
pricing = { input = "1", cached_input = "0.1", output = "2" }

[[models.price_changes]]
from = 2027-01-01
input = "3"
output = "4"

[[models.price_changes]]
from = 2027-06-01
input = "5"
cached_input = "0.5"
output = "6"
"""


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 12, 31), (1_000_000, 100_000, 2_000_000)),
        (date(2027, 1, 1), (3_000_000, 3_000_000, 4_000_000)),
        (date(2027, 5, 31), (3_000_000, 3_000_000, 4_000_000)),
        (date(2027, 6, 1), (5_000_000, 500_000, 6_000_000)),
    ],
)
def test_operator_model_price_changes_apply_from_their_date(
    tmp_path: Path, today: date, expected: tuple[int, int, int]
) -> None:
    path = write_config(tmp_path, LOCAL_PROVIDER + PRICE_CHANGES)

    pricing = load_catalog(path, today=today).models["dated-text"].pricing

    assert (pricing.input_per_m, pricing.cached_input_per_m, pricing.output_per_m) == expected


def test_operator_model_price_schedule_kept_for_later_days(tmp_path: Path) -> None:
    path = write_config(tmp_path, LOCAL_PROVIDER + PRICE_CHANGES)

    entry = load_catalog(path, today=date(2026, 6, 1)).models["dated-text"]

    assert [change.start for change in entry.price_schedule] == [
        date.min,
        date(2027, 1, 1),
        date(2027, 6, 1),
    ]
    assert entry.pricing == entry.pricing_on(date(2026, 6, 1)) == entry.price_schedule[0].pricing
    assert entry.pricing_on(date(2027, 1, 1)).input_per_m == 3_000_000
    assert entry.pricing_on(date(2099, 1, 1)).output_per_m == 6_000_000


def test_operator_model_without_price_changes_has_no_schedule(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, LOCAL_PROVIDER + '[[models]]\nid = "x-text"\nprovider = "local"\n'
    )

    entry = load_catalog(path).models["x-text"]

    assert entry.price_schedule == ()
    assert entry.pricing_on(date(2099, 1, 1)) is entry.pricing


MODEL = '\n[[models]]\nprovider = "local"\n'

INVALID_CONFIGS = {
    "bad-suffix": (LOCAL_PROVIDER + MODEL + 'id = "llama"\n', "must end in -text"),
    "type-mismatch": (
        LOCAL_PROVIDER + MODEL + 'id = "llama-text"\ntype = "image"\n',
        "matching type",
    ),
    "unknown-provider": (
        '[[models]]\nid = "x-text"\nprovider = "nowhere"\n',
        "unknown provider 'nowhere'",
    ),
    "unknown-provider-in-deployments": (
        '[[models]]\nid = "x-text"\ndeployments = [{ provider = "nowhere", upstream = "x" }]\n',
        "unknown provider 'nowhere'",
    ),
    "float-price-too-precise": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { input = 0.0000001 }\n',
        "at most 6 decimals",
    ),
    "string-price-too-precise": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { output = "0.0000005" }\n',
        "at most 6 decimals",
    ),
    "negative-price": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { input = "-1" }\n',
        "non-negative",
    ),
    "word-price": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { input = "cheap" }\n',
        "not a number",
    ),
    "nan-price": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { input = nan }\n',
        "not a finite number",
    ),
    "infinite-price": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = { input = "Infinity" }\n',
        "not a finite number",
    ),
    "image-price-too-precise": (
        LOCAL_PROVIDER + MODEL + 'id = "x-image"\n[models.pricing.images]\n"1x1" = "0.1234567"\n',
        "at most 6 decimals",
    ),
    "bad-base-url": (
        '[providers.local]\nformat = "openai"\nbase_url = "127.0.0.1:8000/v1"\n',
        "'base_url' must be an http(s) URL",
    ),
    "missing-base-url": ('[providers.local]\nformat = "openai"\n', "base_url"),
    "unknown-format": (
        '[providers.local]\nformat = "anthropic-ish"\nbase_url = "http://127.0.0.1:9"\n',
        "unknown format 'anthropic-ish'",
    ),
    "missing-format": ('[providers.local]\nbase_url = "http://127.0.0.1:9"\n', "'format'"),
    "headers-not-table": (LOCAL_PROVIDER + 'headers = "X-A: b"\n', "'headers' must be a table"),
    "empty-deployments": (
        '[[models]]\nid = "x-text"\ndeployments = []\n',
        "'deployments' must be a non-empty list",
    ),
    "zero-weight": (
        LOCAL_PROVIDER
        + '[[models]]\nid = "x-text"\n'
        + 'deployments = [{ provider = "local", upstream = "a", weight = 0 }]\n',
        "weight must be a positive integer",
    ),
    "negative-context-window": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\ncontext_window = -5\n',
        "'context_window' must be a positive integer",
    ),
    "missing-id": (LOCAL_PROVIDER + MODEL, "'id' must be a str"),
    "model-without-provider": ('[[models]]\nid = "x-text"\n', "'provider' must be a str"),
    "pricing-not-table": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\npricing = "free"\n',
        "'pricing' must be a table",
    ),
    "providers-not-table": ('providers = "openai"\n', "'providers' must be a table"),
    "deployment-not-table": (
        LOCAL_PROVIDER + '[[models]]\nid = "x-text"\ndeployments = ["local"]\n',
        "model 'x-text': each deployment must be a table",
    ),
    "models-not-array": ('[models]\nid = "x-text"\n', "write [[models]]"),
    "model-not-table": ("models = [1]\n", "'models': each entry must be a table"),
    "provider-not-table": ('[providers]\nlocal = "x"\n', "provider 'local': the declaration"),
    "timeouts-not-table": (LOCAL_PROVIDER + "timeouts = 5\n", "'timeouts' must be a table"),
    "timeout-not-number": (LOCAL_PROVIDER + 'timeouts = { read = "soon" }\n', "'timeouts.read'"),
    "images-not-table": (
        LOCAL_PROVIDER + MODEL + 'id = "x-image"\npricing = { images = "0.04" }\n',
        "'pricing.images' must be a table",
    ),
    "capabilities-not-array": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\ncapabilities = "tools"\n',
        "'capabilities' must be an array",
    ),
    "created-not-integer": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\ncreated = "yesterday"\n',
        "'created' must be an integer",
    ),
    "toml-syntax": ('[providers.local\nformat = "openai"\n', "vaultgate.toml"),
    "default-param-not-scalar": (
        LOCAL_PROVIDER + "default_params = { stop = [1] }\n",
        "'default_params.stop' must be a string, number or bool",
    ),
    "default-params-not-table": (
        LOCAL_PROVIDER + 'default_params = "max_tokens"\n',
        "'default_params' must be a table",
    ),
    "clamp-not-pair": (
        LOCAL_PROVIDER + "clamp_params = { temperature = [1] }\n",
        "'clamp_params.temperature' must be [low, high]",
    ),
    "clamp-reversed": (
        LOCAL_PROVIDER + "clamp_params = { temperature = [1, 0] }\n",
        "'clamp_params.temperature' must be [low, high]",
    ),
    "clamp-word-bound": (
        LOCAL_PROVIDER + 'clamp_params = { temperature = [0, "one"] }\n',
        "'clamp_params.temperature' must be [low, high]",
    ),
    "price-change-without-date": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\n[[models.price_changes]]\ninput = "1"\n',
        "a price change needs 'from' as a date",
    ),
    "price-change-with-datetime": (
        LOCAL_PROVIDER
        + MODEL
        + 'id = "x-text"\n[[models.price_changes]]\nfrom = 2027-01-01T00:00:00\n',
        "a price change needs 'from' as a date",
    ),
    "price-changes-not-array": (
        LOCAL_PROVIDER + MODEL + 'id = "x-text"\nprice_changes = "soon"\n',
        "'price_changes' must be an array of tables",
    ),
    "price-change-bad-price": (
        LOCAL_PROVIDER
        + MODEL
        + 'id = "x-text"\n[[models.price_changes]]\nfrom = 2020-01-01\ninput = "cheap"\n',
        "not a number",
    ),
    "price-change-future-bad-price": (
        LOCAL_PROVIDER
        + MODEL
        + 'id = "x-text"\n[[models.price_changes]]\nfrom = 2999-01-01\noutput = "-1"\n',
        "non-negative",
    ),
    "price-changes-same-date": (
        LOCAL_PROVIDER
        + MODEL
        + 'id = "x-text"\n[[models.price_changes]]\nfrom = 2027-01-01\n'
        + "[[models.price_changes]]\nfrom = 2027-01-01\n",
        "two price changes from 2027-01-01",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_CONFIGS))
def test_operator_config_invalid_raises_config_error_naming_problem(
    tmp_path: Path, case: str
) -> None:
    text, expected = INVALID_CONFIGS[case]

    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)

    assert expected in str(caught.value)


def test_operator_config_unreadable_file_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"

    with pytest.raises(ConfigError, match=r"cannot read config file .*absent\.toml"):
        load_catalog(missing)


def test_operator_config_directory_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_catalog(tmp_path)


def test_operator_config_invalid_utf8_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n")

    with pytest.raises(ConfigError, match=r"cannot read config file .*latin1\.toml"):
        load_catalog(path)
