"""User accounts: creation, validation and lookup."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.accounts.passwords import verify_password
from vaultgate.accounts.users import (
    count_users,
    create_user,
    find_user_by_email,
    normalise_email,
    update_user,
    validate_new_user,
)
from vaultgate.errors import InvalidRequest
from vaultgate.storage.tables import users

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


async def test_create_user_stores_normalised_email_and_returns_user(engine: AsyncEngine) -> None:
    user = await create_user(
        engine, email="  Alice@Example.COM ", username=" alice ", password=PASSWORD
    )

    assert user.email == "alice@example.com"
    assert user.username == "alice"
    assert (user.is_admin, user.is_active) == (False, True)
    assert await find_user_by_email(engine, "ALICE@example.com") == user
    assert await count_users(engine) == 1


async def test_create_user_duplicate_email_in_other_case_is_rejected(
    engine: AsyncEngine,
) -> None:
    await create_user(engine, email="bob@example.com", username="bob", password=PASSWORD)

    with pytest.raises(InvalidRequest) as caught:
        await create_user(engine, email="BOB@Example.com", username="bobby", password=PASSWORD)

    assert caught.value.param == "email"
    assert "exists" in caught.value.message
    assert await count_users(engine) == 1


async def test_create_user_duplicate_username_is_rejected(engine: AsyncEngine) -> None:
    await create_user(engine, email="c1@example.com", username="carol", password=PASSWORD)

    with pytest.raises(InvalidRequest, match="exists"):
        await create_user(engine, email="c2@example.com", username="carol", password=PASSWORD)

    assert await count_users(engine) == 1


async def test_create_user_stores_argon2id_hash_that_verifies(engine: AsyncEngine) -> None:
    user = await create_user(
        engine, email="dan@example.com", username="dan", password=PASSWORD, is_admin=True
    )

    async with engine.connect() as conn:
        stored = (
            await conn.execute(select(users.c.password_hash).where(users.c.id == user.id))
        ).scalar_one()
    assert user.is_admin is True
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")


async def test_find_user_by_email_unknown_gives_none(engine: AsyncEngine) -> None:
    assert await find_user_by_email(engine, "nobody@example.com") is None


@pytest.mark.parametrize(
    ("email", "username", "password", "param", "message"),
    [
        ("not-an-email", "eve", PASSWORD, "email", "email is not a valid address"),
        ("two@@example.com", "eve", PASSWORD, "email", "email is not a valid address"),
        ("sp ace@example.com", "eve", PASSWORD, "email", "email is not a valid address"),
        ("eve@example.com", "e", PASSWORD, "username", "username must be 2-64"),
        ("eve@example.com", "eve smith", PASSWORD, "username", "username must be 2-64"),
        ("eve@example.com", "e" * 65, PASSWORD, "username", "username must be 2-64"),
        ("eve@example.com", "eve", "short", "password", "at least 8 characters"),
    ],
)
def test_validate_new_user_names_first_bad_field(
    email: str, username: str, password: str, param: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_new_user(email, username, password)

    assert caught.value.param == param
    assert message in caught.value.message


def test_validate_new_user_good_fields_pass() -> None:
    validate_new_user("eve.smith+tag@example.co.uk", "eve_smith-1.x", "12345678")


async def test_create_user_invalid_fields_write_nothing(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidRequest):
        await create_user(engine, email="frank@example.com", username="f", password=PASSWORD)

    assert await count_users(engine) == 0


def test_normalise_email_trims_and_lowercases() -> None:
    assert normalise_email("  Mixed.Case@Example.ORG\n") == "mixed.case@example.org"


@pytest.mark.parametrize(
    ("change", "param"),
    [({"username": "taken_name"}, "username"), ({"email": "TAKEN@example.com"}, "email")],
    ids=["username", "email"],
)
async def test_update_user_to_a_taken_value_names_the_taken_field(
    engine: AsyncEngine, change: dict[str, str], param: str
) -> None:
    await create_user(engine, email="taken@example.com", username="taken_name", password=PASSWORD)
    user = await create_user(
        engine, email="mover@example.com", username="mover", password=PASSWORD
    )

    with pytest.raises(InvalidRequest) as caught:
        await update_user(engine, user.id, **change)

    assert caught.value.param == param
