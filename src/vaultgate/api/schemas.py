"""Request and response bodies of the management API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from vaultgate.accounts.keys import MAX_RPM, MAX_TOKEN_QUOTA, MAX_TPM


class Body(BaseModel):
    """Unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class RegisterBody(Body):
    """A new account."""

    email: str = Field(max_length=320)
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LoginBody(Body):
    """Credentials."""

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class ProfileBody(Body):
    """Profile changes; email and password changes need the current password."""

    username: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=1024)
    current_password: str | None = Field(None, max_length=1024)


class UserOut(BaseModel):
    """An account as its owner (or an admin) sees it."""

    id: int
    email: str
    username: str
    is_admin: bool


class SessionOut(BaseModel):
    """A signed-in session: the user and the CSRF token for later requests."""

    user: UserOut
    csrf_token: str


class KeyCreateBody(Body):
    """A new API key."""

    name: str = Field(min_length=1, max_length=100)
    rpm: int = Field(60, ge=1, le=MAX_RPM)
    tpm: int | None = Field(None, ge=1, le=MAX_TPM)
    token_quota: int | None = Field(None, ge=0, le=MAX_TOKEN_QUOTA)
    models: list[str] | None = Field(None, max_length=200)
    expires_at: dt.datetime | None = Field(None, description="Must be in the future.")


class KeyUpdateBody(Body):
    """Changes to a key; absent fields stay as they are, null clears optional limits."""

    name: str | None = Field(None, min_length=1, max_length=100)
    rpm: int | None = Field(None, ge=1, le=MAX_RPM)
    tpm: int | None = Field(None, ge=1, le=MAX_TPM)
    token_quota: int | None = Field(None, ge=0, le=MAX_TOKEN_QUOTA)
    models: list[str] | None = Field(None, max_length=200)
    expires_at: dt.datetime | None = Field(None, description="Must be in the future.")


class KeyOut(BaseModel):
    """A key as listed: never the key itself."""

    id: int
    name: str
    prefix: str
    rpm: int
    tpm: int | None
    token_quota: int | None
    tokens_used: int
    models: list[str] | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime


class KeyCreatedOut(KeyOut):
    """A new key, with its secret shown this once."""

    key: str


class BalanceOut(BaseModel):
    """Spendable balance and what requests in flight hold."""

    balance_micros: int
    balance: str
    held_micros: int


class LedgerEntryOut(BaseModel):
    """One ledger line."""

    id: int
    kind: str
    amount_micros: int
    amount: str
    created_at: dt.datetime
    request_id: str | None
    model: str | None
    note: str | None
    estimated: bool


class RedeemBody(Body):
    """A redeem code."""

    code: str = Field(min_length=4, max_length=64)


class CreditBody(Body):
    """An admin grant; ``amount`` in USD as a decimal string, e.g. "25" or "0.50"."""

    email: str = Field(max_length=320)
    amount: str = Field(max_length=32)
    note: str | None = Field(None, max_length=500)


class CodesBody(Body):
    """A batch of redeem codes."""

    count: int = Field(ge=1, le=1000)
    amount: str = Field(max_length=32)


class CheckoutBody(Body):
    """A top-up through the payment provider, in USD cents."""

    amount_cents: int = Field(ge=100, le=1_000_000)


class UsageOut(BaseModel):
    """One request-log row."""

    id: int
    created_at: dt.datetime
    request_id: str
    key_id: int | None
    endpoint: str
    model: str | None
    provider: str | None
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    cost_micros: int
    charged_micros: int
    latency_ms: int
    ttft_ms: int | None
    error: str | None


class NotificationOut(BaseModel):
    """A dashboard notification."""

    id: int
    kind: str
    threshold: str
    message: str
    created_at: dt.datetime
    read_at: dt.datetime | None
