"""Creating and finding user accounts."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.passwords import hash_password, verify_password
from vaultgate.billing.ledger import GRANT, open_balance, post_entry
from vaultgate.errors import InvalidRequest
from vaultgate.storage.tables import users

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, slots=True)
class User:
    """A user account, without its password hash."""

    id: int
    email: str
    username: str
    is_admin: bool
    is_active: bool


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively; they are stored lower-cased and trimmed."""
    return email.strip().lower()


def validate_new_user(email: str, username: str, password: str) -> None:
    """Raise InvalidRequest naming the first field that is not acceptable."""
    if not EMAIL_PATTERN.match(email):
        raise InvalidRequest("email is not a valid address", param="email")
    if not USERNAME_PATTERN.match(username):
        raise InvalidRequest(
            "username must be 2-64 letters, digits, '_', '.' or '-'", param="username"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", param="password"
        )


async def create_user(
    engine: AsyncEngine,
    *,
    email: str,
    username: str,
    password: str,
    is_admin: bool = False,
    starter_credit_micros: int = 0,
) -> User:
    """Create an account with its balance and starter grant; InvalidRequest if taken."""
    email = normalise_email(email)
    username = username.strip()
    validate_new_user(email, username, password)
    now = dt.datetime.now(dt.UTC)
    row = {
        "email": email,
        "username": username,
        "password_hash": hash_password(password),
        "is_admin": is_admin,
        "is_active": True,
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with engine.begin() as conn:
            result = await conn.execute(insert(users).values(row).returning(users.c.id))
            user_id = result.scalar_one()
            await open_balance(conn, user_id)
            if starter_credit_micros:
                await post_entry(
                    conn,
                    user_id=user_id,
                    kind=GRANT,
                    amount_micros=starter_credit_micros,
                    note="starter credit",
                )
    except IntegrityError:
        taken = "email" if await find_user_by_email(engine, email) else "username"
        raise InvalidRequest(f"a user with that {taken} exists", param=taken) from None
    return User(user_id, email, username, is_admin, True)


async def find_user_by_email(engine: AsyncEngine, email: str) -> User | None:
    """The account with this email (any letter case), or None."""
    query = select(
        users.c.id, users.c.email, users.c.username, users.c.is_admin, users.c.is_active
    ).where(users.c.email == normalise_email(email))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return User(*row) if row else None


async def count_users(engine: AsyncEngine) -> int:
    """How many accounts exist."""
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def find_user_by_id(engine: AsyncEngine, user_id: int) -> User | None:
    """The account with this id, or None."""
    query = select(
        users.c.id, users.c.email, users.c.username, users.c.is_admin, users.c.is_active
    ).where(users.c.id == user_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return User(*row) if row else None


async def password_hash_of(engine: AsyncEngine, email: str) -> tuple[User, str] | None:
    """The account with this email and its password hash, for signing in."""
    query = select(
        users.c.id, users.c.email, users.c.username, users.c.is_admin, users.c.is_active,
        users.c.password_hash,
    ).where(users.c.email == normalise_email(email))  # fmt: skip
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return User(*row[:5]), row.password_hash


async def _taken_field(engine: AsyncEngine, user_id: int, email: str | None) -> str:
    """Which unique field of a refused profile change another account holds."""
    holder = await find_user_by_email(engine, email) if email is not None else None
    return "email" if holder is not None and holder.id != user_id else "username"


async def update_user(
    engine: AsyncEngine,
    user_id: int,
    *,
    username: str | None = None,
    email: str | None = None,
    password: str | None = None,
) -> User:
    """Change profile fields; InvalidRequest for bad or taken values."""
    values: dict[str, object] = {"updated_at": dt.datetime.now(dt.UTC)}
    if username is not None:
        if not USERNAME_PATTERN.match(username.strip()):
            raise InvalidRequest(
                "username must be 2-64 letters, digits, '_', '.' or '-'", param="username"
            )
        values["username"] = username.strip()
    if email is not None:
        if not EMAIL_PATTERN.match(normalise_email(email)):
            raise InvalidRequest("email is not a valid address", param="email")
        values["email"] = normalise_email(email)
    if password is not None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequest(
                f"password must have at least {MIN_PASSWORD_LENGTH} characters",
                param="password",
            )
        values["password_hash"] = hash_password(password)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(values))
    except IntegrityError:
        taken = await _taken_field(engine, user_id, email)
        raise InvalidRequest(f"that {taken} is taken", param=taken) from None
    found = await find_user_by_id(engine, user_id)
    if found is None:
        raise InvalidRequest("no such user")
    return found


# Checked against when the email is unknown, so both cases take the same time.
_DUMMY_PASSWORD_HASH = hash_password("not-a-real-password")


async def check_password(engine: AsyncEngine, email: str, password: str) -> User | None:
    """The active account whose password this is, or None (unknown email included).

    The memory-hard hash runs in a thread so the event loop keeps serving meanwhile.
    """
    found = await password_hash_of(engine, email)
    stored = found[1] if found else _DUMMY_PASSWORD_HASH
    valid = await asyncio.to_thread(verify_password, stored, password)
    if found is None or not valid or not found[0].is_active:
        return None
    return found[0]
