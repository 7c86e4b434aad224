"""The database schema, as SQLAlchemy Core tables.

Money is kept in integer micro-units of the account currency (1 USD = 1,000,000 micros);
times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        """Normalise to UTC before writing; naive values are rejected."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        """Attach UTC to values that the driver returns naive (SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("rpm_limit", Integer, nullable=False),
    Column("tpm_limit", Integer, nullable=True),
    Column("token_quota", BigInteger, nullable=True),
    Column("tokens_used", BigInteger, nullable=False, default=0),
    Column("tokens_reserved", BigInteger, nullable=False, default=0),
    Column("allowed_models", JSON, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_api_keys_user_id", "user_id"),
    Index("ix_api_keys_updated_at", "updated_at"),
)

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("request_id", String(40), nullable=False),
    Column("key_id", BigId, nullable=True),
    Column("user_id", BigId, nullable=True),
    Column("endpoint", String(32), nullable=False),
    Column("model", String(128), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("status", Integer, nullable=False),
    Column("stream", Boolean, nullable=False, default=False),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("images", Integer, nullable=False, default=0),
    Column("usage_estimated", Boolean, nullable=False, default=False),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("charged_micros", BigInteger, nullable=False, default=0),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("error", Text, nullable=True),
    Index("ix_request_logs_created_at", "created_at"),
    Index("ix_request_logs_user_id_id", "user_id", "id"),
    Index("ix_request_logs_key_id_id", "key_id", "id"),
    Index("ix_request_logs_model_id", "model", "id"),
    # The logs page filters one user's rows and pages by id: each filter has its own index.
    Index("ix_request_logs_user_id_status_id", "user_id", "status", "id"),
    Index("ix_request_logs_user_id_model_id", "user_id", "model", "id"),
    Index("ix_request_logs_user_id_created_at", "user_id", "created_at"),
    Index("ix_request_logs_request_id", "request_id"),
    # A status class (4xx) is a range of statuses, which the (user_id, status, id) index
    # returns in status order; on the class itself the rows come out in id order. Queries
    # must spell the expression as here (``request_log_status_class``) for SQLite to use it.
    Index("ix_request_logs_user_id_status_class_id", "user_id", text("(status / 100)"), "id"),
)

# The class of a log row's status (2 for 2xx), spelled as the index above spells it: the
# divisor is a literal, since SQLite matches an indexed expression only without parameters.
request_log_status_class = request_logs.c.status.op("/")(literal_column("100"))

# Sums of the request log per user, hour (UTC), key, model, provider and status class,
# updated in the transaction that writes the log rows. A missing key, model or provider is
# stored as 0 or '' so that the key columns are never NULL (NULLs never conflict in an
# upsert). ``min_log_id``/``max_log_id`` bound the ids of the rows summed in each row: the
# logs page turns a date range into an id range with them.
usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("key_id", BigInteger, primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("provider", String(64), primary_key=True),
    Column("status_class", SmallInteger, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("charged_micros", BigInteger, nullable=False),
    Column("min_log_id", BigInteger, nullable=False),
    Column("max_log_id", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

balances = Table(
    "balances",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("balance_micros", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("balance_micros >= 0", name="ck_balances_not_negative"),
)

# The ledger is append-only: the sum of a user's entries is their balance plus whatever is
# held by live reservations.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("request_id", String(40), nullable=True, unique=True),
    Column("external_ref", String(120), nullable=True, unique=True),
    Column("key_id", BigId, nullable=True),
    Column("model", String(128), nullable=True),
    Column("prices", JSON, nullable=True),
    Column("estimated", Boolean, nullable=False, default=False),
    Column("note", String(500), nullable=True),
    Column("actor_id", BigId, nullable=True),
    Index("ix_ledger_entries_user_id_id", "user_id", "id"),
)

# Money and tokens held for requests in flight. A row lives from the moment a request is
# admitted until its settlement is written; rows orphaned by a crash are released.
reservations = Table(
    "reservations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", BigId, nullable=False),
    Column("key_id", BigId, nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_reservations_created_at", "created_at"),
)

redeem_codes = Table(
    "redeem_codes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("batch", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", BigId, nullable=True),
    Column("redeemed_by", BigId, nullable=True),
    Column("redeemed_at", UtcDateTime, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_sessions_user_id", "user_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject_id", BigId, nullable=True),
    Column("threshold", String(32), nullable=False),
    Column("message", String(500), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("read_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index("ix_notifications_user_id_id", "user_id", "id"),
)

# One row per (subject, threshold) that is currently crossed; deleting it re-arms the alert.
alert_states = Table(
    "alert_states",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("subject_id", BigId, primary_key=True),
    Column("threshold", String(32), primary_key=True),
    Column("crossed_at", UtcDateTime, nullable=False),
)

# Chat: each account's conversations. A shared conversation has the SHA-256 of its share
# token (the token itself is shown to the owner once, inside the link).
conversations = Table(
    "conversations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("model", String(128), nullable=True),
    Column("share_token_hash", String(64), nullable=True, unique=True),
    Column("shared_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),
)

# One row per turn. An assistant turn records the model that wrote it, its tokens and cost,
# the request id of its gateway request, and the generated images (base64 PNG) if any.
chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "conversation_id",
        BigId,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("model", String(128), nullable=True),
    Column("images", JSON, nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("request_id", String(40), nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_chat_messages_conversation_id_id", "conversation_id", "id"),
)
