"""The admin command line: a user and a key made with the CLI work through the SDK."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from tests.gateway.helpers import run_cli
from tests.support.server import ServerProcess
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import api_keys

KEY_PATTERN = re.compile(r"^vg_[A-Za-z0-9_-]{43}$")
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "made by the cli"}]


def _key_row(database_url: str, key_id: int) -> dict[str, object]:
    async def fetch() -> dict[str, object]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                query = select(api_keys).where(api_keys.c.id == key_id)
                return dict((await conn.execute(query)).mappings().one())
        finally:
            await engine.dispose()

    return asyncio.run(fetch())


def test_cli_created_user_and_key_work_with_sdk(tmp_path: Path, database_url: str) -> None:
    made = run_cli(
        ["users", "create", "--email", "cli@example.com", "--username", "cli"],
        database_url=database_url,
        data_dir=tmp_path,
        env={"VAULTGATE_PASSWORD": "a long enough password"},
    )
    assert made.returncode == 0, made.stderr
    assert "cli@example.com" in made.stdout
    keyed = run_cli(
        [
            "keys", "create", "--email", "cli@example.com", "--name", "from the cli",
            "--rpm", "120", "--token-quota", "500000",
            "--models", "offline-small-text,type:image",
        ],
        database_url=database_url,
        data_dir=tmp_path,
    )  # fmt: skip
    assert keyed.returncode == 0, keyed.stderr
    lines = keyed.stdout.strip().splitlines()
    key = lines[-1]
    assert KEY_PATTERN.match(key)
    assert key not in "\n".join(lines[:-1])
    found = re.search(r"created key (\d+)", keyed.stdout)
    assert found
    key_id = int(found.group(1))
    row = _key_row(database_url, key_id)
    assert (row["rpm_limit"], row["token_quota"]) == (120, 500000)
    assert key not in str(row)

    server = ServerProcess(tmp_path / "data", database_url).start()
    try:
        with openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0) as sdk:
            reply = sdk.chat.completions.create(model="offline-small-text", messages=PROMPT)
            ids = {model.id for model in sdk.models.list()}
            picture = sdk.images.generate(
                model="offline-painter-image", prompt="x", size="256x256"
            )
            with pytest.raises(openai.PermissionDeniedError):
                sdk.chat.completions.create(model="offline-omni-hybrid", messages=PROMPT)
    finally:
        server.stop()

    assert (reply.choices[0].message.content or "").startswith("You said: made by the cli")
    assert ids == {"offline-small-text", "offline-painter-image"}
    assert picture.data is not None


def test_cli_key_for_unknown_email_fails_cleanly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    result = run_cli(
        ["keys", "create", "--email", "nobody@example.com", "--name", "k"],
        database_url=url,
        data_dir=tmp_path,
    )

    assert result.returncode == 1
    assert "no user with email nobody@example.com" in result.stderr
    assert "Traceback" not in result.stderr
    assert "vg_" not in result.stdout


def test_cli_keys_list_shows_ids_prefixes_and_states(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"VAULTGATE_PASSWORD": "a long enough password"}
    common = {"database_url": url, "data_dir": tmp_path}
    run_cli(
        ["users", "create", "--email", "l@example.com", "--username", "lister"], **common, env=env
    )
    first = run_cli(["keys", "create", "--email", "l@example.com", "--name", "first"], **common)
    second = run_cli(
        ["keys", "create", "--email", "l@example.com", "--name", "second", "--rpm", "7"],
        **common,
    )
    first_id = re.search(r"created key (\d+)", first.stdout)
    assert first_id
    assert second.returncode == 0
    assert run_cli(["keys", "revoke", first_id.group(1)], **common).returncode == 0

    listed = run_cli(["keys", "list", "--email", "l@example.com"], **common)

    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.strip().splitlines()[1:]]
    assert [(row[2], row[3], row[-1]) for row in rows] == [
        ("second", "7", "active"),
        ("first", "60", "revoked"),
    ]
    assert all(row[1].startswith("vg_") for row in rows)
    assert second.stdout.strip().splitlines()[-1] not in listed.stdout


def test_cli_key_with_expiry_in_the_past_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    common = {"database_url": url, "data_dir": tmp_path}
    env = {"VAULTGATE_PASSWORD": "a long enough password"}
    run_cli(
        ["users", "create", "--email", "p@example.com", "--username", "pastor"], **common, env=env
    )

    result = run_cli(
        ["keys", "create", "--email", "p@example.com", "--name", "k", "--expires", "2020-01-01"],
        **common,
    )

    assert result.returncode == 1
    assert "--expires is in the past" in result.stderr
    assert "vg_" not in result.stdout
