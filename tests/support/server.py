"""Running VaultGate as a real server process for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx

from vaultgate.accounts.keys import create_key
from vaultgate.accounts.users import User, create_user
from vaultgate.storage import migrate
from vaultgate.storage.database import create_engine

POSTGRES_ADMIN_DSN = os.environ.get(
    "VAULTGATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> bool:
    """Whether the test PostgreSQL server answers."""

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def create_postgres_database() -> str:
    """A new empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"vg_test_{uuid.uuid4().hex[:12]}"

    async def make() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(make())
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name


def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database``."""
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def prepare_database(url: str) -> None:
    """Run the migrations on ``url``."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def make_user_and_key(
    url: str,
    *,
    email: str = "user@example.com",
    credit_micros: int = 100_000_000,
    **key_options: object,
) -> tuple[User, str, int]:
    """A user and an API key for it; returns the user, the key and the key's id."""

    async def run() -> tuple[User, str, int]:
        engine = create_engine(url)
        try:
            user = await create_user(
                engine,
                email=email,
                username=email.split("@")[0],
                password="correct horse battery",
                starter_credit_micros=credit_micros,
            )
            key, record = await create_key(
                engine,
                user_id=user.id,
                name="test",
                **key_options,  # type: ignore[arg-type]
            )
            return user, key, record.id
        finally:
            await engine.dispose()

    return asyncio.run(run())


@dataclass
class ServerProcess:
    """A ``vaultgate serve`` child process on 127.0.0.1."""

    data_dir: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log_file: BinaryIO | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        """Start the server and wait until /readyz answers 200."""
        env = {
            **os.environ,
            "VAULTGATE_DATA_DIR": str(self.data_dir),
            "VAULTGATE_DATABASE_URL": self.database_url,
            "VAULTGATE_PORT": str(self.port),
            "VAULTGATE_HOST": "127.0.0.1",
            "VAULTGATE_OFFLINE_TOKEN_DELAY_MS": "0",
            "VAULTGATE_OFFLINE_FIRST_TOKEN_DELAY_MS": "0",
            "VAULTGATE_REQUEST_LOG_FLUSH_INTERVAL_S": "0.05",
            "VAULTGATE_KEY_SYNC_INTERVAL_S": "0.2",
            # Shared test servers must not open breakers across unrelated tests; the
            # breaker tests set their own threshold.
            "VAULTGATE_BREAKER_FAILURE_THRESHOLD": "1000000",
            "VAULTGATE_ADMIN_PASSWORD": "admin-password-123",
            **self.env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vaultgate", "serve"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"vaultgate exited early:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"vaultgate did not become ready:\n{self.logs()}")

    def logs(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop the server; returns its exit code."""
        try:
            if self.process is None or self.process.poll() is not None:
                return self.process.returncode if self.process else None
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
