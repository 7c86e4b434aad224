"""What the routing tests share: operator configs over the faulty upstream, VaultGate servers
with an admin key, chat calls that record how the answer arrived, and the books."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Gateway
from tests.gateway.helpers import fake_cost, parse_event_stream, stream_text, wait_for_log_rows
from tests.support.faulty_upstream import PROMPT_TOKENS, REPLY_WORDS, FaultyUpstream
from tests.support.money import settled_requests
from tests.support.server import ServerProcess, make_user_and_key
from vaultgate.accounts.keys import create_key
from vaultgate.accounts.users import create_user
from vaultgate.providers.tokens import estimate_prompt_tokens, estimate_text_tokens
from vaultgate.storage.database import create_engine

# One credential per operator provider, so a leak names its provider.
SECRETS = {
    "p1": "sk-faulty-p1-secret-7f3a9c2e11",
    "p2": "sk-faulty-p2-secret-0b5d8e4f22",
    "p3": "sk-faulty-p3-secret-c91e6a7d33",
    "patient": "sk-faulty-patient-secret-44ab",
}
# Small limits, so hangs turn into timeouts within a test; ``patient`` waits long.
TIMEOUTS = {
    "p1": "{ connect = 2, first_byte = 1, idle = 1, total = 20 }",
    "p2": "{ connect = 2, first_byte = 1, idle = 1, total = 20 }",
    "p3": "{ connect = 2, first_byte = 1, idle = 1, total = 20 }",
    "patient": "{ connect = 2, first_byte = 30, idle = 30, total = 60 }",
}
FULL_REPLY = "".join(REPLY_WORDS)
MESSAGES = [{"role": "user", "content": "route this request somewhere healthy"}]
MAX_TOKENS = 64
ROOMY_RPM = 1_000_000
REQUEST_TIMEOUT_S = 30.0

Deployments = Sequence[tuple[str, str] | tuple[str, str, int] | tuple[str, str, int, int]]


def operator_config(faulty: FaultyUpstream, models: dict[str, Deployments]) -> str:
    """Providers p1, p2, p3 and ``patient`` on the faulty server; ``models`` maps a model id
    to its deployments as (provider, upstream[, weight[, priority]])."""
    lines: list[str] = []
    for name in SECRETS:
        lines += [
            f"[providers.{name}]",
            'format = "openai"',
            f'base_url = "{faulty.base_url(name)}"',
            f'api_key_env = "FAULTY_{name.upper()}_KEY"',
            f"timeouts = {TIMEOUTS[name]}",
            "",
        ]
    for model_id, deployments in models.items():
        lines += [
            "[[models]]",
            f'id = "{model_id}"',
            'pricing = { input = "1.00", output = "2.00" }',
            "deployments = [",
        ]
        for provider, upstream, *rest in deployments:
            extra = f", weight = {rest[0]}" if rest else ""
            extra += f", priority = {rest[1]}" if len(rest) > 1 else ""
            lines.append(f'    {{ provider = "{provider}", upstream = "{upstream}"{extra} }},')
        lines += ["]", ""]
    return "\n".join(lines)


@dataclass
class RoutedGateway:
    """A VaultGate over the faulty upstream, with a user's key and an admin's key."""

    gateway: Gateway
    admin_key: str

    @property
    def base_url(self) -> str:
        """Root URL."""
        return self.gateway.base_url

    def stop(self) -> None:
        """Stop the server process."""
        self.gateway.server.stop()


def start_routed(
    tmp_path: Path,
    database_url: str,
    faulty: FaultyUpstream,
    models: dict[str, Deployments],
    env: dict[str, str] | None = None,
) -> RoutedGateway:
    """Start VaultGate on ``database_url`` serving ``models`` through the faulty upstream."""
    config = tmp_path / "routing.toml"
    config.write_text(operator_config(faulty, models))
    user, key, key_id = make_user_and_key(database_url, rpm_limit=ROOMY_RPM)
    admin_key = make_admin_key(database_url)
    full_env = {"VAULTGATE_CONFIG": str(config), **(env or {})}
    full_env.update({f"FAULTY_{name.upper()}_KEY": value for name, value in SECRETS.items()})
    server = ServerProcess(tmp_path / "data", database_url, env=full_env).start()
    return RoutedGateway(Gateway(server, key, key_id, user.id, database_url), admin_key)


def make_admin_key(database_url: str) -> str:
    """An API key of a new admin user, for the management API."""

    async def run() -> str:
        engine = create_engine(database_url)
        try:
            admin = await create_user(
                engine, email="ops@example.com", username="ops",
                password="correct horse battery", is_admin=True,
            )  # fmt: skip
            key, _ = await create_key(engine, user_id=admin.id, name="ops")
            return key
        finally:
            await engine.dispose()

    return asyncio.run(run())


def deployment_health(routed: RoutedGateway, model: str) -> dict[str, dict[str, Any]]:
    """GET /api/admin/deployments for ``model``: ``provider/upstream`` to its row."""
    response = httpx.get(
        routed.base_url + "/api/admin/deployments",
        headers={"authorization": f"Bearer {routed.admin_key}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    rows = response.json()["deployments"]
    return {f"{r['provider']}/{r['upstream']}": r for r in rows if r["model"] == model}


def chat_body(model: str, *, stream: bool = False, usage: bool = False) -> dict[str, Any]:
    """A small chat request for ``model``."""
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return body


@dataclass
class Answer:
    """One chat exchange as the client saw it."""

    status: int
    headers: httpx.Headers
    raw: bytes
    elapsed_s: float

    @property
    def request_id(self) -> str:
        """The id VaultGate gave the request."""
        return self.headers["x-request-id"]

    def json(self) -> Any:
        """The body as JSON."""
        return httpx.Response(self.status, content=self.raw).json()

    def events(self) -> tuple[list[dict[str, Any]], bool]:
        """The SSE payloads, and whether ``[DONE]`` ended them (strictly parsed)."""
        assert self.headers["content-type"].startswith("text/event-stream"), self.raw[:300]
        return parse_event_stream(self.raw)

    def text(self) -> str:
        """The assistant's content, streamed or not."""
        if self.headers["content-type"].startswith("text/event-stream"):
            return stream_text(self.events()[0])
        return str(self.json()["choices"][0]["message"]["content"])


def chat(
    gateway: Gateway,
    body: dict[str, Any],
    faulty: FaultyUpstream | None = None,
) -> Answer:
    """POST one chat request and read the whole answer; the first body bytes of a stream
    let ``faulty``'s paused mid-stream faults go on (the client has the content by then)."""
    headers = {"authorization": f"Bearer {gateway.key}"}
    started = time.monotonic()
    with (
        httpx.Client(timeout=REQUEST_TIMEOUT_S) as client,
        client.stream(
            "POST", gateway.base_url + "/v1/chat/completions", json=body, headers=headers
        ) as response,
    ):
        parts = []
        for part in response.iter_raw():
            parts.append(part)
            if faulty is not None:
                faulty.proceed()
    return Answer(response.status_code, response.headers, b"".join(parts),
                  time.monotonic() - started)  # fmt: skip


def ok_cost() -> int:
    """Micros of an ``ok`` answer: the usage it reports, at the configured prices."""
    return fake_cost(PROMPT_TOKENS, len(REPLY_WORDS))


def settled(database_url: str, request_id: str) -> tuple[dict[str, Any], list[int]]:
    """The request-log row of ``request_id`` and its ledger charges (they commit together)."""
    row = wait_for_log_rows(database_url, [request_id])[request_id]
    return row, settled_requests(database_url).charges.get(request_id, [])


def estimated_cost(delivered: str) -> tuple[int, int, int]:
    """Prompt and completion tokens counted locally for ``delivered``, and their cost."""
    prompt = estimate_prompt_tokens(MESSAGES)
    completion = estimate_text_tokens(delivered)
    return prompt, completion, fake_cost(prompt, completion)
