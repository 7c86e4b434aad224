"""Server-side login sessions: random ids in an HttpOnly cookie, stored only as hashes.

Each session carries its own CSRF token, which a browser client sends back in the
``X-CSRF-Token`` header on every state-changing request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.users import User
from vaultgate.storage.tables import sessions, users

SESSION_LIFETIME = dt.timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Session:
    """A live session and its user."""

    user: User
    csrf_token: str
    expires_at: dt.datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(engine: AsyncEngine, user_id: int) -> tuple[str, str]:
    """Start a session; returns the cookie value and the session's CSRF token."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = dt.datetime.now(dt.UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(sessions).values(
                id_hash=_hash(session_id), user_id=user_id, csrf_token=csrf, created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )  # fmt: skip
    return session_id, csrf


async def find_session(engine: AsyncEngine, session_id: str) -> Session | None:
    """The live session behind a cookie value, or None."""
    now = dt.datetime.now(dt.UTC)
    query = (
        select(sessions.c.csrf_token, sessions.c.expires_at, users.c.id, users.c.email,
               users.c.username, users.c.is_admin, users.c.is_active)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.id_hash == _hash(session_id), sessions.c.revoked_at.is_(None),
               sessions.c.expires_at > now, users.c.is_active.is_(True))
    )  # fmt: skip
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    user = User(row.id, row.email, row.username, row.is_admin, row.is_active)
    return Session(user, row.csrf_token, row.expires_at)


async def revoke_session(engine: AsyncEngine, session_id: str) -> None:
    """End one session."""
    async with engine.begin() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id_hash == _hash(session_id), sessions.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )


async def revoke_all_sessions(engine: AsyncEngine, user_id: int) -> int:
    """End every session of a user (sign out everywhere); returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
    return int(result.rowcount)
