"""Helpers shared by the end-to-end tests: error shapes, SSE bodies, PNGs, the request log
and servers with a custom operator config."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tests.conftest import Gateway
from tests.support.server import ServerProcess, make_user_and_key, prepare_database
from vaultgate.storage.database import create_engine
from vaultgate.storage.tables import request_logs

ERROR_KEYS = {"message", "type", "param", "code"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
LOG_WAIT_S = 5.0
FAKE_PRICE_IN = 1_000_000
FAKE_PRICE_OUT = 2_000_000
REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_error_object(error: Any) -> dict[str, Any]:
    """Check one ``{"message", "type", "param", "code"}`` object; return it."""
    assert isinstance(error, dict)
    assert set(error) == ERROR_KEYS
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return error


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check status and the exact OpenAI error shape; return the inner error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["error"]
    return assert_error_object(body["error"])


def token_cost(prompt: int, completion: int, input_per_m: int, output_per_m: int) -> int:
    """Micros for a chat answer: prices per million tokens, rounded up to a whole micro."""
    return -(-(prompt * input_per_m + completion * output_per_m) // 1_000_000)


def fake_cost(prompt: int, completion: int) -> int:
    """Cost at the conftest prices of the ``fake-*`` models (1.00 in, 2.00 out)."""
    return token_cost(prompt, completion, FAKE_PRICE_IN, FAKE_PRICE_OUT)


def parse_event_stream(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Strictly parse an OpenAI SSE body: every event is ``data: {json}`` then a blank
    line, and ``data: [DONE]`` appears at most once, as the last event.

    Returns the JSON payloads and whether the stream ended with ``[DONE]``.
    """
    assert raw.endswith(b"\n\n"), raw[-200:]
    events = raw[:-2].split(b"\n\n")
    payloads: list[dict[str, Any]] = []
    done = False
    for index, event in enumerate(events):
        assert b"\n" not in event, event
        assert b"\r" not in event, event
        assert event.startswith(b"data: "), event
        data = event[len(b"data: ") :]
        if data == b"[DONE]":
            assert index == len(events) - 1, "[DONE] is not the last event"
            done = True
            continue
        payload = json.loads(data)
        assert isinstance(payload, dict)
        payloads.append(payload)
    return payloads, done


def stream_text(chunks: Sequence[dict[str, Any]]) -> str:
    """The content of choice 0 across parsed stream chunks."""
    parts = []
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its chunks, CRCs and pixel data length."""
    assert data[:8] == PNG_SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    position = 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + payload) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        position += 12 + length
    assert position == len(data)
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert interlace == 0
    row_bytes = 1 + (width * PNG_CHANNELS[colour] * depth + 7) // 8
    pixels = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    assert len(pixels) == row_bytes * height
    return width, height


def wait_for_log_rows(
    database_url: str, request_ids: Sequence[str], timeout: float = LOG_WAIT_S
) -> dict[str, dict[str, Any]]:
    """The request-log rows of ``request_ids``, polling while the batched writer catches up."""
    wanted = set(request_ids)

    async def poll() -> dict[str, dict[str, Any]]:
        engine = create_engine(database_url)
        query = select(request_logs).where(request_logs.c.request_id.in_(wanted))
        deadline = time.monotonic() + timeout
        try:
            while True:
                async with engine.connect() as conn:
                    rows = (await conn.execute(query)).mappings().all()
                found = {row["request_id"]: dict(row) for row in rows}
                if set(found) == wanted or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.05)
        finally:
            await engine.dispose()

    found = asyncio.run(poll())
    assert set(found) == wanted, f"no request-log rows after {timeout}s for {wanted - set(found)}"
    return found


def count_log_rows(database_url: str, request_ids: Sequence[str]) -> int:
    """How many of ``request_ids`` have a row right now."""

    async def count() -> int:
        engine = create_engine(database_url)
        query = select(request_logs.c.id).where(request_logs.c.request_id.in_(request_ids))
        try:
            async with engine.connect() as conn:
                return len((await conn.execute(query)).all())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def new_key(database_url: str, **key_options: object) -> tuple[str, int, int]:
    """A key for a new user of ``database_url``; returns the key, its id and the user's id."""
    email = f"u{uuid.uuid4().hex[:12]}@example.com"
    user, key, key_id = make_user_and_key(
        database_url,
        email=email,
        **key_options,  # type: ignore[arg-type]
    )
    return key, key_id, user.id


def sqlite_url(directory: Path) -> str:
    """A migrated SQLite database in ``directory``."""
    url = f"sqlite+aiosqlite:///{directory / 'vaultgate.db'}"
    prepare_database(url)
    return url


def start_with_config(
    tmp_path: Path,
    config_text: str,
    *,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Gateway:
    """A VaultGate with a given operator config, one user and one key."""
    database_url = database_url or sqlite_url(tmp_path)
    config = tmp_path / "operator.toml"
    config.write_text(config_text)
    user, key, key_id = make_user_and_key(database_url)
    env = {"VAULTGATE_CONFIG": str(config), **(extra_env or {})}
    server = ServerProcess(tmp_path / "data", database_url, env=env).start()
    return Gateway(server, key, key_id, user.id, database_url)


def run_cli(
    args: Sequence[str], *, database_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vaultgate ARGS`` against ``database_url``."""
    full_env = {
        **os.environ,
        "VAULTGATE_DATABASE_URL": database_url,
        "VAULTGATE_DATA_DIR": str(data_dir),
        **(env or {}),
    }
    full_env.pop("VAULTGATE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "vaultgate", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=data_dir,
    )
