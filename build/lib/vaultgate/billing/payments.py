"""Stripe Checkout top-ups through the official SDK.

A checkout session carries the account id as ``client_reference_id``; the webhook verifies
Stripe's signature, and credits ``checkout.session.completed`` events that are paid,
exactly once per event id (the ledger's unique external reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from vaultgate.billing.ledger import TOPUP, AlreadyApplied, credit
from vaultgate.errors import InvalidRequest, UpstreamError

log = logging.getLogger("vaultgate.billing")

MICROS_PER_CENT = 10_000
# Stripe sends the first for card payments, the second when a delayed payment clears;
# both carry the paid session, and the ledger's event-id reference credits it once.
CREDITED_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
MIN_TOPUP_CENTS = 100
MAX_TOPUP_CENTS = 1_000_000


@dataclass(frozen=True, slots=True)
class StripeConfig:
    """What talking to Stripe needs; ``api_base`` lets tests use a local server."""

    secret_key: str
    webhook_secret: str
    success_url: str
    cancel_url: str
    api_base: str | None = None
    currency: str = "usd"


def _client(config: StripeConfig) -> stripe.StripeClient:
    if config.api_base:
        return stripe.StripeClient(config.secret_key, base_addresses={"api": config.api_base})
    return stripe.StripeClient(config.secret_key)


async def create_checkout(config: StripeConfig, *, user_id: int, amount_cents: int) -> str:
    """A Checkout session for a top-up; returns the URL to send the user to."""
    if not MIN_TOPUP_CENTS <= amount_cents <= MAX_TOPUP_CENTS:
        raise InvalidRequest(
            f"top-up must be between {MIN_TOPUP_CENTS / 100:.2f} and {MAX_TOPUP_CENTS / 100:.2f}",
            param="amount",
        )
    params: Any = {
        "mode": "payment",
        "client_reference_id": str(user_id),
        "success_url": config.success_url,
        "cancel_url": config.cancel_url,
        "line_items": [{
            "quantity": 1,
            "price_data": {"currency": config.currency, "unit_amount": amount_cents,
                           "product_data": {"name": "VaultGate credit"}},
        }],
        "metadata": {"vaultgate_user_id": str(user_id)},
    }  # fmt: skip
    try:
        session = await _client(config).v1.checkout.sessions.create_async(params=params)
    except stripe.StripeError as exc:
        raise UpstreamError(f"payment provider error: {type(exc).__name__}") from None
    return str(session.url)


def verify_event(config: StripeConfig, payload: bytes, signature: str | None) -> Any:
    """The event, if Stripe's signature over the raw payload is valid; else 400."""
    if not signature:
        raise InvalidRequest("missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, signature, config.webhook_secret)
    except (stripe.SignatureVerificationError, ValueError):
        raise InvalidRequest("invalid webhook signature or payload") from None
    # A plain dict: the SDK's event objects are not dicts (they have no ``.get``).
    return event.to_dict()


async def apply_event(engine: AsyncEngine, event: Any, *, currency: str = "usd") -> str:
    """Credit a paid checkout; returns what was done ("credited", "duplicate", "ignored")."""
    if event["type"] not in CREDITED_EVENTS:
        return "ignored"
    session = event["data"]["object"]
    if session.get("payment_status") != "paid":
        return "ignored"  # an async payment is credited by its succeeded event
    if str(session.get("currency", "")).lower() != currency:
        log.error(
            "checkout in an unexpected currency", extra={"fields": {"event_id": event["id"]}}
        )
        return "ignored"
    try:
        user_id = int(session["client_reference_id"])
        cents = int(session["amount_total"])
        if cents <= 0:
            raise ValueError(cents)
    except (KeyError, TypeError, ValueError):
        log.error(
            "checkout event without user or amount", extra={"fields": {"event_id": event["id"]}}
        )
        return "ignored"
    try:
        await credit(
            engine,
            user_id=user_id,
            kind=TOPUP,
            amount_micros=cents * MICROS_PER_CENT,
            external_ref=f"stripe:{event['id']}",
            note="Stripe Checkout",
        )
    except AlreadyApplied:
        return "duplicate"
    return "credited"
