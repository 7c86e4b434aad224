"""Money and accounts: balances, the ledger, reservations, redeem codes, sessions, alerts,
and token limits on keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def _users_fk(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{name}_user_id_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    """Add the money tables and the key columns."""
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("tpm_limit", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("tokens_used", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("tokens_reserved", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(
            sa.Column("charged_micros", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "balances",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _users_fk("balances"),
        sa.PrimaryKeyConstraint("user_id", name="pk_balances"),
        sa.CheckConstraint("balance_micros >= 0", name="ck_balances_not_negative"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("external_ref", sa.String(120), nullable=True),
        sa.Column("key_id", BIG_ID, nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("prices", sa.JSON(), nullable=True),
        sa.Column("estimated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("actor_id", BIG_ID, nullable=True),
        _users_fk("ledger_entries"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("request_id", name="uq_ledger_entries_request_id"),
        sa.UniqueConstraint("external_ref", name="uq_ledger_entries_external_ref"),
    )
    op.execute(
        "INSERT INTO balances (user_id, balance_micros, updated_at) "
        "SELECT id, 0, CURRENT_TIMESTAMP FROM users"
    )
    op.create_index("ix_ledger_entries_user_id_id", "ledger_entries", ["user_id", "id"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("key_id", BIG_ID, nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
    )
    op.create_index("ix_reservations_created_at", "reservations", ["created_at"])
    op.create_table(
        "redeem_codes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("batch", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", BIG_ID, nullable=True),
        sa.Column("redeemed_by", BIG_ID, nullable=True),
        sa.Column("redeemed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_redeem_codes"),
        sa.UniqueConstraint("code_hash", name="uq_redeem_codes_code_hash"),
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        _users_fk("sessions"),
        sa.PrimaryKeyConstraint("id_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_id", BIG_ID, nullable=True),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("read_at", TIMESTAMP, nullable=True),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
        _users_fk("notifications"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])
    op.create_table(
        "alert_states",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_id", BIG_ID, nullable=False),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("crossed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id", "threshold", name="pk_alert_states"),
    )


def downgrade() -> None:
    """Drop what the upgrade added."""
    for table in (
        "alert_states",
        "notifications",
        "sessions",
        "redeem_codes",
        "reservations",
        "ledger_entries",
        "balances",
    ):
        op.drop_table(table)
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("charged_micros")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tokens_reserved")
        batch.drop_column("tokens_used")
        batch.drop_column("tpm_limit")
