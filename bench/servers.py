"""The processes under test: the bench upstream and VaultGate behind uvicorn or granian.

VaultGate gets a fresh data directory, an operator config that routes ``bench-text`` to the
bench upstream, and a user with one API key made through the ``vaultgate`` command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from procs import Child, free_port

BENCH_DIR = Path(__file__).resolve().parent
MODEL_ID = "bench-text"
UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-bench-upstream-0123456789"
USER_EMAIL = "bench@example.com"
FLUSH_INTERVAL_S = 0.25
BENCH_RPM = 1_000_000_000
BENCH_CREDIT_USD = "1000000"
# The chat request every scenario sends, to the gateway and to the upstream directly.
CHAT_BODY = {
    "model": MODEL_ID,
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say hello and introduce yourself in one sentence."},
    ],
    "max_tokens": 64,
    "temperature": 0.2,
}
STREAM_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}


@dataclass(frozen=True)
class ServerVariant:
    """One way to serve the VaultGate app."""

    name: str
    server: str
    log_level: str


VARIANTS = {
    "uvicorn": ServerVariant("uvicorn", "uvicorn", "WARNING"),
    "granian": ServerVariant("granian", "granian", "WARNING"),
    "uvicorn-info": ServerVariant("uvicorn-info", "uvicorn", "INFO"),
}


def start_upstream(work_dir: Path, chunks: int) -> tuple[Child, int]:
    """Start the bench upstream; returns it and its port."""
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port)]
    argv += ["--chunks", str(chunks)]
    child = Child("upstream", argv, dict(os.environ), work_dir / "upstream.log").start()
    child.wait_ready(port, None)
    return child, port


def write_config(path: Path, upstream_port: int) -> None:
    """The operator TOML: one OpenAI-format provider and the ``bench-text`` model."""
    path.write_text(
        "\n".join(
            [
                "[providers.bench]",
                'format = "openai"',
                f'base_url = "http://127.0.0.1:{upstream_port}/v1"',
                f'api_key_env = "{UPSTREAM_KEY_ENV}"',
                "",
                "[[models]]",
                f'id = "{MODEL_ID}"',
                'provider = "bench"',
                'upstream = "bench-upstream"',
                'pricing = { input = "1.00", output = "2.00" }',
                "",
            ]
        )
    )


class VaultGateSetup:
    """The data directory, config and environment shared by every server variant.

    ``src_dir`` puts another VaultGate source tree first on ``PYTHONPATH`` (for example
    an exported older commit), in place of the installed one.
    """

    def __init__(self, work_dir: Path, upstream_port: int, src_dir: Path | None = None) -> None:
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.config_path = work_dir / "vaultgate.toml"
        write_config(self.config_path, upstream_port)
        self.env = {
            **os.environ,
            **({"PYTHONPATH": str(src_dir)} if src_dir else {}),
            "VAULTGATE_DATA_DIR": str(self.data_dir),
            "VAULTGATE_CONFIG": str(self.config_path),
            "VAULTGATE_HOST": "127.0.0.1",
            "VAULTGATE_ADMIN_PASSWORD": "bench-admin-password",
            "VAULTGATE_REQUEST_LOG_FLUSH_INTERVAL_S": str(FLUSH_INTERVAL_S),
            UPSTREAM_KEY_ENV: UPSTREAM_KEY,
        }

    def _cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vaultgate", *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"vaultgate {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def create_key(self) -> str:
        """Migrate the database, create the bench user and return a new API key.

        The key's rate limit is set far above what the benchmark sends, and the account
        gets ample credit when the command line offers credit grants.
        """
        env = {**self.env, "VAULTGATE_PASSWORD": "bench-password-123"}
        self._cli("users", "create", "--email", USER_EMAIL, "--username", "bench", env=env)
        out = self._cli(
            "keys", "create", "--email", USER_EMAIL, "--name", "bench", "--rpm", str(BENCH_RPM)
        )
        if "credits" in self._cli("--help"):
            self._cli("credits", "grant", "--email", USER_EMAIL, "--amount", BENCH_CREDIT_USD)
        return out.strip().splitlines()[-1]

    def start(
        self, variant: ServerVariant, python_args: tuple[str, ...] = ()
    ) -> tuple[Child, int]:
        """Start VaultGate as ``variant``; returns it once /readyz answers, and its port.

        ``python_args`` go between the interpreter and ``-m vaultgate serve`` (uvicorn
        only), e.g. ``("-m", "cProfile", "-o", "out.prof")``.
        """
        port = free_port()
        env = {**self.env, "VAULTGATE_PORT": str(port), "VAULTGATE_LOG_LEVEL": variant.log_level}
        if variant.server == "granian":
            argv = [
                sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                "--workers", "1", "--no-ws", "--log-level", "warning",
                "vaultgate.asgi:build",
            ]  # fmt: skip
        else:
            argv = [sys.executable, *python_args, "-m", "vaultgate", "serve"]
        log_path = self.work_dir / f"vaultgate-{variant.name}.log"
        child = Child(variant.name, argv, env, log_path).start()
        try:
            child.wait_ready(port, "/readyz")
        except RuntimeError:
            child.stop()
            raise
        return child, port
