"""API keys: making them, storing their hashes, and finding them fast.

A key is ``vg_`` followed by 32 random bytes in URL-safe base64 (256 bits). Only its SHA-256
is stored: a key has far too much entropy for a slow hash to add anything, and a fast one
keeps the hot path cheap. The plaintext is returned once, at creation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.bounds import check_range, is_row_id
from vaultgate.errors import AuthenticationFailed, InvalidRequest, NotFound
from vaultgate.providers.catalog import MODEL_TYPES, ModelEntry
from vaultgate.storage.tables import api_keys, users

log = logging.getLogger("vaultgate.accounts")

KEY_PREFIX = "vg_"
KEY_RANDOM_BYTES = 32
KEY_LENGTH = len(KEY_PREFIX) + 43
DISPLAY_PREFIX_LENGTH = 10
DEFAULT_RPM = 60
RESTRICTION_KINDS = ("model", "type", "provider")
# The documented ranges of a key's limits (rpm and tpm are 32-bit columns).
MAX_RPM = 1_000_000_000
MAX_TPM = 1_000_000_000
MAX_TOKEN_QUOTA = 10**15


def generate_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the hot path needs to know about a key."""

    id: int
    user_id: int
    name: str
    prefix: str
    rpm_limit: int
    tpm_limit: int | None
    token_quota: int | None
    allowed_models: tuple[str, ...] | None
    expires_at: float | None
    revoked: bool
    user_active: bool
    version: dt.datetime | None = None

    def usable_at(self, now: float) -> bool:
        """Whether the key may be used at epoch time ``now``."""
        if self.revoked or not self.user_active:
            return False
        return self.expires_at is None or now < self.expires_at

    def allows(self, model_id: str, model_type: str, providers: Iterable[str]) -> bool:
        """Whether the key's model restrictions admit this model."""
        if self.allowed_models is None:
            return True
        for rule in self.allowed_models:
            kind, _, value = rule.partition(":")
            if not value:
                kind, value = "model", rule
            if kind == "model" and value == model_id:
                return True
            if kind == "type" and value == model_type:
                return True
            if kind == "provider" and value in providers:
                return True
        return False


def normalise_restrictions(
    rules: Sequence[str] | None, offered: Mapping[str, ModelEntry] | None = None
) -> list[str] | None:
    """Validate restriction rules: ``model-id``, ``model:id``, ``type:t``, ``provider:p``.

    With ``offered`` (the gateway's models), every rule must also name a model, a model
    type or a provider that exists, so that a typo cannot make a key that serves nothing.
    """
    if not rules:
        return None
    cleaned = []
    for rule in rules:
        rule = rule.strip()
        kind, sep, value = rule.partition(":")
        if not rule or (sep and (kind not in RESTRICTION_KINDS or not value)):
            raise InvalidRequest(f"invalid model restriction {rule!r}", param="models")
        cleaned.append(rule)
    if offered is not None:
        _check_offered(cleaned, offered)
    return cleaned


def _names_something(rule: str, offered: Mapping[str, ModelEntry]) -> bool:
    kind, _, value = rule.partition(":")
    if not value:
        kind, value = "model", rule
    if kind == "type":
        return value in MODEL_TYPES
    if kind == "provider":
        return any(value in model.providers for model in offered.values())
    return value in offered


def _check_offered(rules: Sequence[str], offered: Mapping[str, ModelEntry]) -> None:
    unknown = [rule for rule in rules if not _names_something(rule, offered)]
    if unknown:
        raise InvalidRequest(
            "model restrictions name no model, type or provider of this gateway: "
            + ", ".join(repr(rule) for rule in unknown),
            param="models",
        )


def check_limits(
    *, rpm: int | None = None, tpm: int | None = None, token_quota: int | None = None
) -> None:
    """Refuse a limit outside its documented range, naming it (400); None is not checked."""
    if rpm is not None:
        check_range(rpm, param="rpm", low=1, high=MAX_RPM)
    if tpm is not None:
        check_range(tpm, param="tpm", low=1, high=MAX_TPM)
    if token_quota is not None:
        check_range(token_quota, param="token_quota", low=0, high=MAX_TOKEN_QUOTA)


def check_expiry(expires_at: dt.datetime | None) -> None:
    """Refuse an expiry that has already passed, for keys made or edited by their owner:
    such a key could never be used (400)."""
    if expires_at is None:
        return
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=dt.UTC)
    if moment <= dt.datetime.now(dt.UTC):
        raise InvalidRequest("the expiry must be in the future", param="expires_at")


def _record_from_row(row: Any) -> KeyRecord:
    expires = row.expires_at.timestamp() if row.expires_at else None
    allowed = tuple(row.allowed_models) if row.allowed_models else None
    return KeyRecord(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        token_quota=row.token_quota,
        allowed_models=allowed,
        expires_at=expires,
        revoked=row.revoked_at is not None,
        user_active=row.is_active,
        version=row.updated_at,
    )


_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.user_id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.rpm_limit,
    api_keys.c.tpm_limit,
    api_keys.c.token_quota,
    api_keys.c.allowed_models,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
    api_keys.c.key_hash,
    api_keys.c.updated_at,
    users.c.is_active,
)


def _key_query() -> Any:
    return select(*_KEY_COLUMNS).join(users, users.c.id == api_keys.c.user_id)


async def find_key_by_id(engine: AsyncEngine, key_id: int) -> KeyRecord | None:
    """The current record of key ``key_id``, read from the database (usable or not)."""
    if not is_row_id(key_id):
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(_key_query().where(api_keys.c.id == key_id))).first()
    return _record_from_row(row) if row else None


async def create_key(
    engine: AsyncEngine,
    *,
    user_id: int,
    name: str,
    rpm_limit: int = DEFAULT_RPM,
    tpm_limit: int | None = None,
    token_quota: int | None = None,
    allowed_models: Sequence[str] | None = None,
    expires_at: dt.datetime | None = None,
    offered: Mapping[str, ModelEntry] | None = None,
) -> tuple[str, KeyRecord]:
    """Store a new key for ``user_id``; return its plaintext (shown once) and record.

    With ``offered``, model restrictions must name what the gateway offers.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest("key name must be 1-100 characters", param="name")
    check_limits(rpm=rpm_limit, tpm=tpm_limit, token_quota=token_quota)
    restrictions = normalise_restrictions(allowed_models, offered)
    key = generate_key()
    now = dt.datetime.now(dt.UTC)
    row = {
        "user_id": user_id,
        "name": name,
        "key_hash": hash_key(key),
        "prefix": key[:DISPLAY_PREFIX_LENGTH],
        "rpm_limit": rpm_limit,
        "tpm_limit": tpm_limit,
        "token_quota": token_quota,
        "allowed_models": restrictions,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }
    async with engine.begin() as conn:
        key_id = await conn.execute(insert(api_keys).values(row).returning(api_keys.c.id))
        new_id = key_id.scalar_one()
        created = (await conn.execute(_key_query().where(api_keys.c.id == new_id))).one()
    return key, _record_from_row(created)


async def revoke_key(engine: AsyncEngine, key_id: int, *, user_id: int | None = None) -> None:
    """Revoke a key (of ``user_id`` when given); NotFound if there is no such live key."""
    if not is_row_id(key_id):
        raise NotFound(f"no active API key with id {key_id}", code="key_not_found")
    now = dt.datetime.now(dt.UTC)
    query = (
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now, updated_at=now)
    )
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    async with engine.begin() as conn:
        if (await conn.execute(query)).rowcount == 0:
            raise NotFound(f"no active API key with id {key_id}", code="key_not_found")


class KeyCache:
    """Resolves presented keys to records without a database round trip once warm.

    Found keys are cached by hash. Unknown hashes are remembered too (bounded), which is
    safe because a random key cannot be presented before it exists. Changes made by other
    processes (revocation, edits) are picked up by ``sync_changes``, which the app runs
    every few seconds; changes made in this process call ``forget`` at once.
    """

    def __init__(self, engine: AsyncEngine, *, max_unknown: int = 10_000) -> None:
        self._engine = engine
        self._by_hash: dict[str, KeyRecord] = {}
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._max_unknown = max_unknown
        self._watermark = dt.datetime.now(dt.UTC)

    async def authenticate(self, presented: str | None) -> KeyRecord:
        """The record of a usable key, or AuthenticationFailed."""
        if not presented:
            raise AuthenticationFailed(
                "missing API key: send it as 'Authorization: Bearer vg_...'"
            )
        if not presented.startswith(KEY_PREFIX) or len(presented) != KEY_LENGTH:
            raise AuthenticationFailed("invalid API key")
        digest = hash_key(presented)
        record = self._by_hash.get(digest)
        if record is None:
            record = await self._load(digest)
        if record is None:
            raise AuthenticationFailed("invalid API key")
        if not record.usable_at(time.time()):
            raise AuthenticationFailed("API key is revoked, expired or its account disabled")
        return record

    async def _load(self, digest: str) -> KeyRecord | None:
        if digest in self._unknown:
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(_key_query().where(api_keys.c.key_hash == digest))).first()
        if row is None:
            self._unknown[digest] = None
            if len(self._unknown) > self._max_unknown:
                self._unknown.popitem(last=False)
            return None
        record = _record_from_row(row)
        self._by_hash[digest] = record
        return record

    def forget(self, key_id: int) -> None:
        """Drop a key from the cache so its next use reads the database."""
        for digest, record in list(self._by_hash.items()):
            if record.id == key_id:
                del self._by_hash[digest]

    async def sync_changes(self) -> int:
        """Reload cached keys changed since the last sync; return how many changed."""
        # Overlap the window so that a change committed with a slightly older timestamp
        # by another process is still seen.
        since = self._watermark - dt.timedelta(seconds=5)
        started = dt.datetime.now(dt.UTC)
        # A key's record also carries its user's state, so a user changed elsewhere
        # (deactivated) reloads the user's keys too.
        query = _key_query().where(
            or_(api_keys.c.updated_at >= since, users.c.updated_at >= since)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        changed = 0
        for row in rows:
            if row.key_hash in self._by_hash:
                self._by_hash[row.key_hash] = _record_from_row(row)
                changed += 1
        self._watermark = started
        return changed
