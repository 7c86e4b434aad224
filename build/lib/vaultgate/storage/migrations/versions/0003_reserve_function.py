"""PostgreSQL: the ``vaultgate_reserve`` function, so that taking a hold is one round trip.

It applies the same conditional updates as ``billing.reservations.reserve`` inside the
calling statement's transaction and returns 'ok', 'key' (key revoked, expired, edited or
out of quota: nothing changed) or 'balance' (balance too low: nothing changed). SQLite needs
no function: its fast path runs the statements on a local connection.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RESERVE_FUNCTION = """
CREATE OR REPLACE FUNCTION vaultgate_reserve(
    p_id text, p_user bigint, p_key bigint, p_amount bigint, p_tokens bigint,
    p_version timestamptz, p_now timestamptz
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE api_keys SET tokens_reserved = tokens_reserved + p_tokens
     WHERE id = p_key
       AND revoked_at IS NULL
       AND (expires_at IS NULL OR expires_at > p_now)
       AND (p_version IS NULL OR updated_at = p_version)
       AND (token_quota IS NULL OR tokens_used + tokens_reserved + p_tokens <= token_quota);
    IF NOT FOUND THEN
        RETURN 'key';
    END IF;
    IF p_amount > 0 THEN
        UPDATE balances SET balance_micros = balance_micros - p_amount
         WHERE user_id = p_user AND balance_micros >= p_amount;
        IF NOT FOUND THEN
            UPDATE api_keys SET tokens_reserved = tokens_reserved - p_tokens WHERE id = p_key;
            RETURN 'balance';
        END IF;
    END IF;
    INSERT INTO reservations (id, user_id, key_id, amount_micros, tokens, created_at)
    VALUES (p_id, p_user, p_key, p_amount, p_tokens, p_now);
    RETURN 'ok';
END;
$$;
"""


def upgrade() -> None:
    """Create the function on PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RESERVE_FUNCTION)


def downgrade() -> None:
    """Drop the function on PostgreSQL."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS vaultgate_reserve(text, bigint, bigint, bigint, bigint, "
            "timestamptz, timestamptz)"
        )
