"""Alerts: a key crossing 80% and 100% of its token quota, and an account's balance
falling below the threshold, each notify once per crossing, on the dashboard and by one
webhook POST, however many requests follow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import (
    Accounts,
    ApiSession,
    RecordingServer,
    chat,
    new_email,
    wait_for,
)
from tests.conftest import Gateway, operator_config, start_gateway
from tests.support.fake_openai import FakeOpenAI
from tests.support.server import make_user_and_key, prepare_database

# The fake upstream reports more tokens than any hold here (yet within the tenfold bound past
# which the gateway distrusts reported usage), so each request is charged exactly its hold: a
# fixed step of tokens and money.
OVER_REPORTING_MODEL = "fake-overreport-text"
LOW_BALANCE_MICROS = 950
MAX_LOW_BALANCE_REQUESTS = 40
PAYLOAD_FIELDS = {"type", "user_id", "subject_id", "threshold", "message"}


@dataclass
class AlertSetup:
    """A gateway whose alerts post to ``webhook``."""

    gateway: Gateway
    webhook: RecordingServer
    accounts: Accounts


@pytest.fixture(scope="module")
def alert_setup(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeOpenAI
) -> Iterator[AlertSetup]:
    """VaultGate on SQLite with an over-reporting model and an alert webhook."""
    tmp_path: Path = tmp_path_factory.mktemp("alerts")
    url = f"sqlite+aiosqlite:///{tmp_path / 'vaultgate.db'}"
    prepare_database(url)
    config = tmp_path / "alerts.toml"
    config.write_text(
        operator_config(fake_upstream.base_url)
        + "\n[[models]]\n"
        + f'id = "{OVER_REPORTING_MODEL}"\nprovider = "fake"\nupstream = "usage-200-200"\n'
        + 'pricing = { input = "1.00", output = "2.00" }\n'
    )
    webhook = RecordingServer({"ok": True}).start()
    env = {
        "VAULTGATE_CONFIG": str(config),
        "VAULTGATE_ALERT_WEBHOOK_URL": webhook.base_url + "/hook",
        "VAULTGATE_ALERT_BALANCE_MICROS": str(LOW_BALANCE_MICROS),
    }
    try:
        gateway = start_gateway(tmp_path, url, fake_upstream.base_url, env)
    except BaseException:
        webhook.stop()
        raise
    accounts = Accounts(gateway.base_url)
    yield AlertSetup(gateway, webhook, accounts)
    accounts.close()
    gateway.server.stop()
    webhook.stop()


def _key(session: ApiSession, **fields: object) -> dict[str, Any]:
    response = session.post("/keys", json={"name": "k", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _tokens_used(session: ApiSession, key_id: int) -> int:
    return int(session.get(f"/keys/{key_id}").json()["tokens_used"])


def _spend(setup: AlertSetup, session: ApiSession, key: dict[str, Any], expected: int) -> None:
    """One request, then wait until its tokens are settled (so each is its own batch)."""
    answer = chat(setup.gateway.base_url, key["key"], OVER_REPORTING_MODEL, max_tokens=1)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: _tokens_used(session, key["id"]), lambda n: n == expected, "settlement")


def _hooks(setup: AlertSetup, kind: str, subject_id: int) -> list[dict[str, Any]]:
    found = [r.json() for r in setup.webhook.received]
    return [p for p in found if p["type"] == kind and p["subject_id"] == subject_id]


def _settle_everything(setup: AlertSetup, session: ApiSession, key: dict[str, Any]) -> None:
    """A last request: once it is settled, every earlier batch has been
    checked for alerts (the request-log writer handles batches in order)."""
    before = _tokens_used(session, key["id"])
    answer = chat(setup.gateway.base_url, key["key"], OVER_REPORTING_MODEL, max_tokens=1)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: _tokens_used(session, key["id"]), lambda n: n > before, "the sentinel")


def test_alert_key_quota_notifies_once_per_threshold(alert_setup: AlertSetup) -> None:
    session = alert_setup.accounts.register()
    probe = _key(session)
    answer = chat(alert_setup.gateway.base_url, probe["key"], OVER_REPORTING_MODEL, max_tokens=1)
    assert answer.status_code == 200, answer.text
    step = wait_for(lambda: _tokens_used(session, probe["id"]), lambda n: n > 0, "the probe")
    limited = _key(session, token_quota=10 * step)

    for done in range(1, 11):
        _spend(alert_setup, session, limited, done * step)
    exhausted = chat(alert_setup.gateway.base_url, limited["key"], OVER_REPORTING_MODEL)
    _settle_everything(alert_setup, session, probe)
    hooks = wait_for(
        lambda: _hooks(alert_setup, "key_quota", limited["id"]), lambda h: len(h) >= 2, "hooks"
    )

    assert exhausted.status_code == 429
    notes = [n for n in session.get("/notifications").json() if n["kind"] == "key_quota"]
    assert sorted(n["threshold"] for n in notes) == ["100%", "80%"]
    assert sorted(h["threshold"] for h in hooks) == ["100%", "80%"]
    for hook in hooks:
        assert set(hook) == PAYLOAD_FIELDS
        assert hook["user_id"] == session.user["id"]
        assert hook["message"] in {n["message"] for n in notes}
    assert all(r.method == "POST" and r.path == "/hook" for r in alert_setup.webhook.received)


def test_alert_low_balance_notifies_once(alert_setup: AlertSetup) -> None:
    email = new_email("poor")
    user, key, key_id = make_user_and_key(
        alert_setup.gateway.database_url, email=email, credit_micros=LOW_BALANCE_MICROS + 100
    )
    session = alert_setup.accounts.login(email)
    record = {"key": key, "id": key_id}
    balances = [session.balance_micros()]

    while sum(b < LOW_BALANCE_MICROS for b in balances) < 3:
        assert len(balances) < MAX_LOW_BALANCE_REQUESTS
        answer = chat(alert_setup.gateway.base_url, key, OVER_REPORTING_MODEL, max_tokens=1)
        assert answer.status_code == 200, answer.text
        balances.append(session.balance_micros())
        assert balances[-1] < balances[-2]
    _settle_everything(alert_setup, session, record)
    hooks = wait_for(
        lambda: _hooks(alert_setup, "low_balance", user.id), lambda h: len(h) >= 1, "hook"
    )

    assert balances[1] >= LOW_BALANCE_MICROS
    notes = [n for n in session.get("/notifications").json() if n["kind"] == "low_balance"]
    assert len(notes) == 1
    assert len(hooks) == 1
    assert set(hooks[0]) == PAYLOAD_FIELDS
    assert (hooks[0]["user_id"], hooks[0]["threshold"]) == (user.id, notes[0]["threshold"])
    assert hooks[0]["message"] == notes[0]["message"]
