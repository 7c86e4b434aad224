"""Migrations: an empty database reaches head, and the schema can go down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.storage import migrate
from vaultgate.storage.tables import metadata

pytestmark = pytest.mark.anyio


def scripts() -> ScriptDirectory:
    """The package's migration scripts."""
    return ScriptDirectory.from_config(migrate.alembic_config())


def head() -> str | None:
    """The newest revision."""
    return scripts().get_current_head()


async def table_names(engine: AsyncEngine) -> set[str]:
    """The tables that exist now."""
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


def _downgrade_sync(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database down to ``revision``, the way ``migrate.upgrade`` goes up."""
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade_sync, revision)


def test_migration_scripts_form_one_line_from_0001() -> None:
    assert len(scripts().get_heads()) == 1
    revisions = [script.revision for script in scripts().walk_revisions()]
    assert revisions[-1] == "0001"
    assert revisions[0] == head()


async def test_current_revision_empty_database_is_none(engine: AsyncEngine) -> None:
    assert await migrate.current_revision(engine) is None


async def test_upgrade_empty_database_reaches_head_with_every_table(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    assert await migrate.current_revision(engine) == head()
    assert set(metadata.tables) <= await table_names(engine)


async def test_upgrade_at_head_again_changes_nothing(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    before = await table_names(engine)

    await migrate.upgrade(engine)

    assert await migrate.current_revision(engine) == head()
    assert await table_names(engine) == before


async def test_upgrade_to_first_revision_stops_there(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine, "0001")

    assert await migrate.current_revision(engine) == "0001"
    assert {"users", "api_keys", "request_logs"} <= await table_names(engine)


async def test_downgrade_to_base_then_upgrade_restores_schema(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    at_head = await table_names(engine)

    await downgrade(engine, "base")

    assert await migrate.current_revision(engine) is None
    assert await table_names(engine) <= {"alembic_version"}

    await migrate.upgrade(engine)

    assert await migrate.current_revision(engine) == head()
    assert await table_names(engine) == at_head


async def test_downgrade_one_step_at_a_time_reaches_base(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    for script in scripts().walk_revisions():
        assert await migrate.current_revision(engine) == script.revision
        await downgrade(engine, "-1")

    assert await migrate.current_revision(engine) is None
