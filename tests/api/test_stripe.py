"""Stripe top-ups: signed webhooks credit once per event, forged or unpaid ones credit
nothing, and Checkout creation sends the SDK's request to a local payment server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.api.helpers import (
    Accounts,
    ApiSession,
    RecordingServer,
    assert_openai_error,
    stripe_signature,
)
from tests.conftest import FAKE_UPSTREAM_KEY, Gateway, start_gateway
from tests.support.fake_openai import FakeOpenAI

SECRET_KEY = "sk_test_x"
WEBHOOK_SECRET = "whsec_test"
CHECKOUT_URL = "https://checkout.stripe.test/c/pay/cs_test_123"
WEBHOOK_PATH = "/api/billing/stripe/webhook"


@dataclass
class StripeSetup:
    """A gateway with Stripe configured, its payment server and its clients."""

    gateway: Gateway
    payments: RecordingServer
    accounts: Accounts


@pytest.fixture
def stripe_setup(
    tmp_path: Path, database_url: str, fake_upstream: FakeOpenAI
) -> Iterator[StripeSetup]:
    """VaultGate (SQLite and PostgreSQL) talking to a local stand-in for Stripe's API."""
    reply = {"id": "cs_test_123", "object": "checkout.session", "url": CHECKOUT_URL,
             "mode": "payment", "payment_status": "unpaid", "status": "open"}  # fmt: skip
    payments = RecordingServer(reply).start()
    env = {
        "VAULTGATE_STRIPE_SECRET_KEY": SECRET_KEY,
        "VAULTGATE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "VAULTGATE_STRIPE_API_BASE": payments.base_url,
    }
    try:
        gateway = start_gateway(tmp_path, database_url, fake_upstream.base_url, env)
    except BaseException:
        payments.stop()
        raise
    accounts = Accounts(gateway.base_url)
    yield StripeSetup(gateway, payments, accounts)
    accounts.close()
    gateway.server.stop()
    payments.stop()


def _event(user_id: int | str, cents: int, *, paid: bool = True, kind: str = "") -> bytes:
    session = {
        "id": "cs_test_" + uuid.uuid4().hex[:12], "object": "checkout.session",
        "client_reference_id": str(user_id), "amount_total": cents, "currency": "usd",
        "payment_status": "paid" if paid else "unpaid", "mode": "payment",
    }  # fmt: skip
    event = {
        "id": "evt_" + uuid.uuid4().hex, "object": "event", "api_version": "2024-06-20",
        "created": int(time.time()), "type": kind or "checkout.session.completed",
        "data": {"object": session},
    }  # fmt: skip
    return json.dumps(event).encode()


def _deliver(setup: StripeSetup, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    response = httpx.post(
        setup.gateway.base_url + WEBHOOK_PATH, content=payload, headers=headers, timeout=30
    )
    setup.accounts.seen.append(response.text)
    return response


def _user(setup: StripeSetup) -> ApiSession:
    return setup.accounts.register()


def test_stripe_paid_checkout_credits_once_per_event(stripe_setup: StripeSetup) -> None:
    user = _user(stripe_setup)
    before = user.balance_micros()
    payload = _event(user.user["id"], 1234)

    first = _deliver(stripe_setup, payload, stripe_signature(payload, WEBHOOK_SECRET))
    again = _deliver(stripe_setup, payload, stripe_signature(payload, WEBHOOK_SECRET))

    assert first.status_code == 200, first.text
    assert first.json() == {"status": "credited"}
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate"}
    assert user.balance_micros() == before + 1234 * 10_000
    topups = [e for e in user.get("/ledger").json() if e["kind"] == "topup"]
    assert [e["amount_micros"] for e in topups] == [12_340_000]


def test_stripe_same_event_delivered_concurrently_credits_once(
    stripe_setup: StripeSetup,
) -> None:
    user = _user(stripe_setup)
    before = user.balance_micros()
    payload = _event(user.user["id"], 500)
    signature = stripe_signature(payload, WEBHOOK_SECRET)

    with httpx.Client(timeout=30) as client:
        responses = [
            client.post(
                stripe_setup.gateway.base_url + WEBHOOK_PATH,
                content=payload,
                headers={"Stripe-Signature": signature},
            )
            for _ in range(3)
        ]

    assert sorted(r.json()["status"] for r in responses) == ["credited", "duplicate", "duplicate"]
    assert user.balance_micros() == before + 500 * 10_000


@pytest.mark.parametrize("forgery", ["wrong-secret", "tampered", "missing", "garbage", "stale"])
def test_stripe_forged_signature_is_400_and_credits_nothing(
    stripe_setup: StripeSetup, forgery: str
) -> None:
    user = _user(stripe_setup)
    before = user.balance_micros()
    payload = _event(user.user["id"], 99_999)
    signature: str | None = stripe_signature(payload, WEBHOOK_SECRET)
    if forgery == "wrong-secret":
        signature = stripe_signature(payload, "whsec_attacker")
    elif forgery == "tampered":
        payload = payload.replace(b"99999", b"99998")
    elif forgery == "missing":
        signature = None
    elif forgery == "garbage":
        signature = "t=notanumber,v1=zz"
    elif forgery == "stale":
        signature = stripe_signature(payload, WEBHOOK_SECRET, int(time.time()) - 3600)

    response = _deliver(stripe_setup, payload, signature)

    assert_openai_error(response, 400)
    assert user.balance_micros() == before
    assert not [e for e in user.get("/ledger").json() if e["kind"] == "topup"]


@pytest.mark.parametrize("kind", ["unpaid", "other-event"])
def test_stripe_unpaid_or_other_event_is_ignored(stripe_setup: StripeSetup, kind: str) -> None:
    user = _user(stripe_setup)
    before = user.balance_micros()
    if kind == "unpaid":
        payload = _event(user.user["id"], 700, paid=False)
    else:
        payload = _event(user.user["id"], 700, kind="payment_intent.succeeded")

    response = _deliver(stripe_setup, payload, stripe_signature(payload, WEBHOOK_SECRET))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored"}
    assert user.balance_micros() == before


def test_stripe_checkout_sends_user_and_amount_to_stripe(stripe_setup: StripeSetup) -> None:
    user = _user(stripe_setup)

    response = user.post("/billing/checkout", json={"amount_cents": 1500})

    assert response.status_code == 200, response.text
    assert response.json() == {"url": CHECKOUT_URL}
    (sent,) = stripe_setup.payments.received
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    form = parse_qs(sent.body.decode())
    assert form["client_reference_id"] == [str(user.user["id"])]
    assert form["mode"] == ["payment"]
    assert form["line_items[0][price_data][unit_amount]"] == ["1500"]
    assert form["line_items[0][price_data][currency]"] == ["usd"]
    assert form["line_items[0][quantity]"] == ["1"]


@pytest.mark.parametrize("cents", [99, 1_000_001])
def test_stripe_checkout_amount_out_of_range_is_400(stripe_setup: StripeSetup, cents: int) -> None:
    user = _user(stripe_setup)

    response = user.post("/billing/checkout", json={"amount_cents": cents})

    assert assert_openai_error(response, 400)["param"] == "amount_cents"
    assert stripe_setup.payments.received == []


def test_stripe_secrets_appear_in_no_response_or_log(stripe_setup: StripeSetup) -> None:
    user = _user(stripe_setup)
    payload = _event(user.user["id"], 300)
    _deliver(stripe_setup, payload, stripe_signature(payload, WEBHOOK_SECRET))
    _deliver(stripe_setup, payload, stripe_signature(payload, "whsec_attacker"))
    user.post("/billing/checkout", json={"amount_cents": 300})
    user.get("/ledger")
    user.get("/balance")

    logs = stripe_setup.gateway.server.logs()
    for secret in (SECRET_KEY, WEBHOOK_SECRET, FAKE_UPSTREAM_KEY, "$argon2"):
        assert secret not in logs
        assert not [body for body in stripe_setup.accounts.seen if secret in body]
    assert len(stripe_setup.accounts.seen) >= 5
