"""Indexes for the logs page: each filter of one user's rows, paged by id, has an index.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_request_logs_user_id_status_id": ["user_id", "status", "id"],
    "ix_request_logs_user_id_model_id": ["user_id", "model", "id"],
    "ix_request_logs_user_id_created_at": ["user_id", "created_at"],
    "ix_request_logs_request_id": ["request_id"],
}


def upgrade() -> None:
    """Create the indexes."""
    for name, columns in INDEXES.items():
        op.create_index(name, "request_logs", columns)


def downgrade() -> None:
    """Drop the indexes."""
    for name in INDEXES:
        op.drop_index(name, table_name="request_logs")
