"""The hold taken when a chat request is admitted: an upper bound on its charge, with
``n`` choices counted as ``n`` prompts (one per call to a one-choice provider)."""

from __future__ import annotations

import datetime as dt

import pytest

from vaultgate.accounts.keys import KeyRecord
from vaultgate.billing.pricing import Pricing, parse_price
from vaultgate.billing.reservations import Hold
from vaultgate.gateway.admission import admit_chat, prompt_token_bound
from vaultgate.limits.memory import MemoryLimiter
from vaultgate.providers.base import JsonObject, Usage
from vaultgate.providers.catalog import Deployment, ModelEntry

pytestmark = pytest.mark.anyio

KEY = KeyRecord(
    id=1, user_id=2, name="k", prefix="vg-", rpm_limit=100, tpm_limit=None, token_quota=None,
    allowed_models=None, expires_at=None, revoked=False, user_active=True,
)  # fmt: skip
MODEL = ModelEntry(
    id="claude-text",
    type="text",
    deployments=(Deployment("anthropic", "claude"),),
    pricing=Pricing(
        input_per_m=parse_price("3", where="test"),
        cached_input_per_m=parse_price("0.3", where="test"),
        output_per_m=parse_price("15", where="test"),
    ),
    max_output_tokens=1000,
)


class RecordingHolds:
    """Grants every hold and remembers it."""

    def __init__(self) -> None:
        self.holds: list[Hold] = []

    async def reserve(
        self, *, user_id: int, key_id: int, amount_micros: int, tokens: int,
        key_version: dt.datetime | None,
    ) -> Hold:  # fmt: skip
        """Grant the hold."""
        self.holds.append(Hold(f"h{len(self.holds)}", user_id, key_id, amount_micros, tokens))
        return self.holds[-1]

    async def aclose(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("n", [1, 3])
async def test_admit_chat_hold_counts_prompt_and_output_once_per_choice(n: int) -> None:
    body: JsonObject = {"model": MODEL.id, "messages": [{"role": "user", "content": "hi"}], "n": n}
    holds = RecordingHolds()

    admission = await admit_chat(holds, MemoryLimiter(), KEY, MODEL, body, request_id="r1")

    prompt = prompt_token_bound(body) * n
    expected = MODEL.pricing.token_cost(Usage(prompt_tokens=prompt, completion_tokens=1000 * n))
    assert admission.hold.amount_micros == expected
    assert admission.hold.tokens == prompt + 1000 * n
