"""Usage rollups: hourly sums of the request log, filled from the rows already there; and an
index on the status class of one user's rows, in id order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUS_CLASS_INDEX = "ix_request_logs_user_id_status_class_id"
ROLLUP_KEY = ("user_id", "hour", "key_id", "model", "provider", "status_class")

# The hour of a timestamp, as each database stores it: SQLite keeps UTC text in the form
# SQLAlchemy writes ('2025-01-31 13:00:00.000000'), PostgreSQL keeps timestamptz.
HOUR = {
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', created_at)",
    "postgresql": "date_trunc('hour', created_at, 'UTC')",
}

BACKFILL = """
INSERT INTO usage_rollups (
    user_id, hour, key_id, model, provider, status_class, requests, prompt_tokens,
    completion_tokens, cost_micros, charged_micros, min_log_id, max_log_id
)
SELECT user_id, {hour}, coalesce(key_id, 0), coalesce(model, ''), coalesce(provider, ''),
       status / 100, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_micros),
       sum(charged_micros), min(id), max(id)
FROM request_logs
WHERE user_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""


def upgrade() -> None:
    """Create the rollup table and the index, then sum the existing log into it."""
    op.create_table(
        "usage_rollups",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("status_class", sa.SmallInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("charged_micros", sa.BigInteger(), nullable=False),
        sa.Column("min_log_id", sa.BigInteger(), nullable=False),
        sa.Column("max_log_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*ROLLUP_KEY, name="pk_usage_rollups"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        STATUS_CLASS_INDEX, "request_logs", ["user_id", sa.text("(status / 100)"), "id"]
    )
    dialect = op.get_bind().dialect.name
    op.execute(BACKFILL.format(hour=HOUR[dialect]))


def downgrade() -> None:
    """Drop the index and the rollup table."""
    op.drop_index(STATUS_CLASS_INDEX, table_name="request_logs")
    op.drop_table("usage_rollups")
