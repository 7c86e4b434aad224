"""API keys: generation, hashed storage, the key cache and model restrictions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import replace

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.keys import (
    DISPLAY_PREFIX_LENGTH,
    KEY_LENGTH,
    KeyCache,
    KeyRecord,
    check_expiry,
    create_key,
    find_key_by_id,
    generate_key,
    hash_key,
    normalise_restrictions,
    revoke_key,
)
from vaultgate.accounts.users import User, create_user
from vaultgate.errors import AuthenticationFailed, InvalidRequest, NotFound
from vaultgate.providers.catalog import load_catalog
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import api_keys, users

pytestmark = pytest.mark.anyio


async def make_user(engine: AsyncEngine, name: str = "alice") -> User:
    """A user account named ``name``."""
    return await create_user(
        engine, email=f"{name}@example.com", username=name, password="correct horse battery"
    )


async def set_key_hash(engine: AsyncEngine, key_id: int, key: str) -> None:
    """Point a stored key at the hash of ``key``, as if ``key`` had been issued for it."""
    async with engine.begin() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(key_hash=hash_key(key))
        )


async def age_key(engine: AsyncEngine, key_id: int) -> None:
    """Make a key look last changed an hour ago, long before any cache's sync window."""
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    async with engine.begin() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(updated_at=hour_ago)
        )


async def deactivate(engine: AsyncEngine, user_id: int) -> None:
    """Disable an account the way an admin action elsewhere would."""
    async with engine.begin() as conn:
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(is_active=False, updated_at=dt.datetime.now(dt.UTC))
        )


# Generation and storage.


def test_generate_key_has_prefix_length_and_256_random_bits() -> None:
    key = generate_key()

    assert key.startswith("vg_")
    assert len(key) == KEY_LENGTH == 46
    assert re.fullmatch(r"vg_[A-Za-z0-9_-]{43}", key)
    assert len(base64.urlsafe_b64decode(key[3:] + "=")) == 32


def test_generate_key_values_do_not_repeat() -> None:
    keys = {generate_key() for _ in range(2_000)}

    assert len(keys) == 2_000


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("vg_abc") == hashlib.sha256(b"vg_abc").hexdigest()


async def test_create_key_stores_only_sha256_never_plaintext(engine: AsyncEngine) -> None:
    user = await make_user(engine)

    key, record = await create_key(engine, user_id=user.id, name="ci", allowed_models=["x-text"])

    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == record.id))).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:DISPLAY_PREFIX_LENGTH]
    secret_part = key[DISPLAY_PREFIX_LENGTH:]
    for column, value in row._mapping.items():
        assert secret_part not in str(value), f"plaintext in column {column}"


async def test_create_key_returns_record_with_settings(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    _, record = await create_key(
        engine, user_id=user.id, name="  ci  ", rpm_limit=5, token_quota=1000,
        allowed_models=["type:image", " offline-small-text "], expires_at=expires,
    )  # fmt: skip

    assert record.user_id == user.id
    assert record.name == "ci"
    assert (record.rpm_limit, record.token_quota) == (5, 1000)
    assert record.allowed_models == ("type:image", "offline-small-text")
    assert record.expires_at == pytest.approx(expires.timestamp(), abs=1e-3)
    assert record.revoked is False
    assert record.user_active is True


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"rpm_limit": 0}, "rpm"),
        ({"token_quota": -1}, "token_quota"),
        ({"allowed_models": ["vendor:x"]}, "models"),
    ],
)
async def test_create_key_invalid_options_raise_invalid_request(
    engine: AsyncEngine, options: dict[str, object], param: str
) -> None:
    user = await make_user(engine)
    arguments: dict[str, object] = {"name": "ok", **options}

    with pytest.raises(InvalidRequest) as caught:
        await create_key(engine, user_id=user.id, **arguments)  # type: ignore[arg-type]

    assert caught.value.param == param


# Authentication through the cache.


async def test_authenticate_valid_key_returns_record(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    key, record = await create_key(engine, user_id=user.id, name="ci")
    cache = KeyCache(engine)

    found = await cache.authenticate(key)

    assert found == record
    assert await cache.authenticate(key) == record


async def test_authenticate_unknown_key_fails_and_is_cached_negative(
    engine: AsyncEngine,
) -> None:
    user = await make_user(engine)
    _, record = await create_key(engine, user_id=user.id, name="ci")
    cache = KeyCache(engine)
    unknown = generate_key()

    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        await cache.authenticate(unknown)
    await set_key_hash(engine, record.id, unknown)

    with pytest.raises(AuthenticationFailed):
        await cache.authenticate(unknown)
    assert (await KeyCache(engine).authenticate(unknown)).id == record.id


async def test_authenticate_negative_cache_is_bounded(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    _, record = await create_key(engine, user_id=user.id, name="ci")
    cache = KeyCache(engine, max_unknown=1)
    first, second = generate_key(), generate_key()
    for key in (first, second):
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate(key)

    await set_key_hash(engine, record.id, first)

    assert (await cache.authenticate(first)).id == record.id


async def test_authenticate_revoked_in_process_fails_after_forget(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    key, record = await create_key(engine, user_id=user.id, name="ci")
    cache = KeyCache(engine)
    await cache.authenticate(key)

    await revoke_key(engine, record.id, user_id=user.id)
    cache.forget(record.id)

    with pytest.raises(AuthenticationFailed, match="revoked"):
        await cache.authenticate(key)


async def test_authenticate_revoked_by_other_engine_fails_after_sync(
    engine: AsyncEngine, database_url: str
) -> None:
    user = await make_user(engine)
    key, record = await create_key(engine, user_id=user.id, name="ci")
    _, other_record = await create_key(engine, user_id=user.id, name="other")
    await age_key(engine, record.id)
    cache = KeyCache(engine)
    await cache.authenticate(key)
    other_process = create_engine(database_url)
    try:
        await revoke_key(other_process, record.id)
    finally:
        await other_process.dispose()

    changed = await cache.sync_changes()

    assert changed == 1
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await cache.authenticate(key)
    assert other_record.revoked is False


async def test_authenticate_expired_key_fails(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    expired, _ = await create_key(engine, user_id=user.id, name="old", expires_at=past)
    current, _ = await create_key(engine, user_id=user.id, name="new", expires_at=future)
    cache = KeyCache(engine)

    with pytest.raises(AuthenticationFailed, match="expired"):
        await cache.authenticate(expired)
    assert (await cache.authenticate(current)).name == "new"


async def test_authenticate_deactivated_user_fails(engine: AsyncEngine) -> None:
    user = await make_user(engine)
    key, _ = await create_key(engine, user_id=user.id, name="ci")

    await deactivate(engine, user.id)

    with pytest.raises(AuthenticationFailed, match="disabled"):
        await KeyCache(engine).authenticate(key)


async def test_authenticate_user_deactivated_elsewhere_fails_after_sync(
    engine: AsyncEngine,
) -> None:
    user = await make_user(engine)
    key, record = await create_key(engine, user_id=user.id, name="ci")
    await age_key(engine, record.id)
    cache = KeyCache(engine)
    await cache.authenticate(key)

    await deactivate(engine, user.id)
    await cache.sync_changes()

    with pytest.raises(AuthenticationFailed, match="disabled"):
        await cache.authenticate(key)


@pytest.mark.parametrize(
    "presented",
    [None, "", "vg_", "sk-" + "a" * 43, "vg_" + "a" * 42, "vg_" + "a" * 44, "VG_" + "a" * 43],
)
async def test_authenticate_malformed_key_fails_without_database(presented: str | None) -> None:
    # An engine on a path that cannot exist: any database access would fail differently.
    unusable = create_engine("sqlite+aiosqlite:////nonexistent-dir/never/vaultgate.db")
    try:
        with pytest.raises(AuthenticationFailed):
            await KeyCache(unusable).authenticate(presented)
    finally:
        await unusable.dispose()


async def test_authenticate_missing_key_message_explains_header() -> None:
    unusable = create_engine("sqlite+aiosqlite:////nonexistent-dir/never/vaultgate.db")
    try:
        with pytest.raises(AuthenticationFailed, match="Authorization: Bearer"):
            await KeyCache(unusable).authenticate(None)
    finally:
        await unusable.dispose()


async def test_revoke_key_of_other_user_or_twice_raises_not_found(engine: AsyncEngine) -> None:
    owner = await make_user(engine, "owner")
    stranger = await make_user(engine, "stranger")
    _, record = await create_key(engine, user_id=owner.id, name="ci")

    with pytest.raises(NotFound):
        await revoke_key(engine, record.id, user_id=stranger.id)
    await revoke_key(engine, record.id, user_id=owner.id)
    with pytest.raises(NotFound):
        await revoke_key(engine, record.id)


# Restrictions.


def restricted(*rules: str) -> KeyRecord:
    """A usable key record limited by ``rules``."""
    return KeyRecord(
        id=1, user_id=1, name="k", prefix="vg_", rpm_limit=60, tpm_limit=None, token_quota=None,
        allowed_models=rules or None, expires_at=None, revoked=False, user_active=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "model", "kind", "providers", "allowed"),
    [
        ((), "gpt-4o-text", "text", ("openai",), True),
        (("gpt-4o-text",), "gpt-4o-text", "text", ("openai",), True),
        (("gpt-4o-text",), "gpt-4o-mini-text", "text", ("openai",), False),
        (("model:gpt-4o-text",), "gpt-4o-text", "text", ("openai",), True),
        (("type:image",), "dall-e-3-image", "image", ("openai",), True),
        (("type:image",), "gpt-4o-text", "text", ("openai",), False),
        (("provider:groq",), "llama-text", "text", ("openai", "groq"), True),
        (("provider:groq",), "gpt-4o-text", "text", ("openai",), False),
        (("type:image", "gpt-4o-text"), "gpt-4o-text", "text", ("openai",), True),
    ],
)
def test_key_allows_follows_restriction_rules(
    rules: tuple[str, ...], model: str, kind: str, providers: tuple[str, ...], allowed: bool
) -> None:
    assert restricted(*rules).allows(model, kind, providers) is allowed


def test_key_usable_at_respects_expiry_revocation_and_user() -> None:
    record = restricted()

    assert record.usable_at(0)
    assert not replace(record, expires_at=10.0).usable_at(10.0)
    assert replace(record, expires_at=10.0).usable_at(9.9)
    assert not replace(record, revoked=True).usable_at(0)
    assert not replace(record, user_active=False).usable_at(0)


@pytest.mark.parametrize(
    ("rules", "cleaned"),
    [
        (None, None),
        ([], None),
        ([" gpt-4o-text "], ["gpt-4o-text"]),
        (["model:x-text", "type:text", "provider:openai"], ["model:x-text", "type:text",
                                                             "provider:openai"]),
    ],
)  # fmt: skip
def test_normalise_restrictions_valid_rules_are_trimmed(
    rules: list[str] | None, cleaned: list[str] | None
) -> None:
    assert normalise_restrictions(rules) == cleaned


@pytest.mark.parametrize("rule", ["vendor:openai", "type:", "provider:", ":x", "", "   "])
def test_normalise_restrictions_invalid_rule_raises_invalid_request(rule: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_restrictions(["ok-text", rule])

    assert caught.value.param == "models"


def test_normalise_restrictions_offered_names_pass() -> None:
    offered = load_catalog(None).models
    rules = [
        "offline-small-text",
        "model:offline-painter-image",
        "type:hybrid",
        "provider:offline",
    ]

    assert normalise_restrictions(rules, offered) == rules


def test_normalise_restrictions_naming_nothing_offered_names_each_in_the_error() -> None:
    offered = load_catalog(None).models
    rules = ["offline-small-text", "no-such-text", "type:video", "provider:nowhere", "type:image"]

    with pytest.raises(InvalidRequest) as caught:
        normalise_restrictions(rules, offered)

    assert caught.value.param == "models"
    for unknown in ("'no-such-text'", "'type:video'", "'provider:nowhere'"):
        assert unknown in caught.value.message
    assert "offline-small-text" not in caught.value.message
    assert "type:image" not in caught.value.message


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"rpm_limit": 2**31}, "rpm"),
        ({"tpm_limit": 10**30}, "tpm"),
        ({"tpm_limit": 2**63}, "tpm"),
        ({"token_quota": 10**30}, "token_quota"),
        ({"token_quota": 2**63}, "token_quota"),
    ],
    ids=["rpm-2^31", "tpm-10^30", "tpm-2^63", "quota-10^30", "quota-2^63"],
)
async def test_create_key_limit_over_its_range_raises_naming_it(
    engine: AsyncEngine, options: dict[str, object], param: str
) -> None:
    user = await make_user(engine)

    with pytest.raises(InvalidRequest) as caught:
        await create_key(engine, user_id=user.id, name="big", **options)  # type: ignore[arg-type]

    assert caught.value.param == param


async def test_key_id_out_of_64_bits_is_found_nowhere(engine: AsyncEngine) -> None:
    huge = 10**23

    with pytest.raises(NotFound) as caught:
        await revoke_key(engine, huge)

    assert caught.value.code == "key_not_found"
    assert await find_key_by_id(engine, huge) is None
    assert await find_key_by_id(engine, 2**63) is None


def test_check_expiry_in_the_past_raises_naming_expires_at() -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    with pytest.raises(InvalidRequest) as caught:
        check_expiry(past)

    assert caught.value.param == "expires_at"
    check_expiry(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    check_expiry(None)
