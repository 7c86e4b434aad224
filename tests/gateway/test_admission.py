"""The hold taken when a chat request is admitted: an upper bound on its charge, with
``n`` choices counted as ``n`` prompts (one per call to a one-choice provider)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from vaultgate.accounts.keys import KeyRecord
from vaultgate.billing.pricing import Pricing, parse_price
from vaultgate.billing.reservations import Hold
from vaultgate.errors import InsufficientBalance, RateLimited
from vaultgate.gateway.admission import (
    TOKENS_PER_IMAGE_BOUND,
    admit_chat,
    check_rate_limits,
    plausible_usage,
    prompt_token_bound,
)
from vaultgate.limits.base import Decision
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


def _body(*messages: JsonObject, **extra: object) -> JsonObject:
    return {"model": MODEL.id, "messages": list(messages), **extra}


PAYLOAD = "x" * 400_000
USER: JsonObject = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_body({**USER, "extra": PAYLOAD}), id="extra-message-field"),
        pytest.param(_body(USER, prediction={"type": "content", "content": PAYLOAD}),
                     id="unknown-top-level-parameter"),
        pytest.param(_body({"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + PAYLOAD}}]}), id="image-data-url"),
        pytest.param(_body({"role": "user", "content": [{"type": "input_audio", "input_audio": {
            "data": PAYLOAD, "format": "wav"}}]}), id="audio"),
    ],
)  # fmt: skip
def test_prompt_token_bound_counts_every_forwarded_byte(body: JsonObject) -> None:
    assert prompt_token_bound(body) >= len(PAYLOAD)


def test_prompt_token_bound_uses_received_size_when_known() -> None:
    body = _body(USER)

    assert prompt_token_bound(body, body_bytes=500_000) >= 500_000


def test_prompt_token_bound_short_image_link_gets_per_image_allowance() -> None:
    part = {"type": "image_url", "image_url": {"url": "http://a.example/i.png"}}
    body = _body({"role": "user", "content": [part, part]})

    assert prompt_token_bound(body) >= 2 * TOKENS_PER_IMAGE_BOUND


def test_prompt_token_bound_is_capped_at_context_window() -> None:
    body = _body({**USER, "content": PAYLOAD})

    assert prompt_token_bound(body, context_window=128_000) == 128_000


async def test_admit_chat_hold_beyond_64_bits_is_refused_with_402() -> None:
    costly = dataclasses.replace(
        MODEL, pricing=Pricing(
            input_per_m=parse_price("100000000000", where="test"),
            cached_input_per_m=0,
            output_per_m=parse_price("100000000000", where="test"),
        ),
    )  # fmt: skip
    body = _body(USER, max_tokens=2**31 - 1, n=128)
    holds = RecordingHolds()

    with pytest.raises(InsufficientBalance) as caught:
        await admit_chat(holds, MemoryLimiter(), KEY, costly, body, request_id="r2")

    assert caught.value.status == 402
    assert holds.holds == []


HOLD = Hold("h", 1, 2, amount_micros=5_000, tokens=1_000)


@pytest.mark.parametrize(
    "usage",
    [
        Usage(prompt_tokens=-1, completion_tokens=5),
        Usage(prompt_tokens=5, completion_tokens=-1),
        Usage(prompt_tokens=10**12, completion_tokens=0),
        Usage(prompt_tokens=9_000, completion_tokens=1_001),
    ],
)
def test_plausible_usage_impossible_counts_are_dropped(usage: Usage) -> None:
    assert plausible_usage(usage, HOLD) is None


def test_plausible_usage_up_to_ten_times_the_hold_is_kept() -> None:
    usage = Usage(prompt_tokens=9_000, completion_tokens=1_000)

    assert plausible_usage(usage, HOLD) == usage


class CountingLimiter:
    """Allows everything and remembers each hit's subject and weight."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, int]] = []

    async def hit(self, subject: str, *, limit: int, weight: int, member: str) -> Decision:
        self.hits.append((subject, weight))
        return Decision(allowed=True, limit=limit, remaining=limit - weight, reset_s=60.0)


async def test_check_rate_limits_request_larger_than_tpm_is_429_without_retry_after() -> None:
    limiter = CountingLimiter()
    key = dataclasses.replace(KEY, tpm_limit=100)

    with pytest.raises(RateLimited) as refused:
        await check_rate_limits(limiter, key, request_id="r1", tokens=4096)

    assert refused.value.status == 429
    assert refused.value.error_type == "tokens"
    assert "retry-after" not in (refused.value.headers or {})
    assert "4096 tokens" in refused.value.message
    assert limiter.hits == [("rpm:1", 1)]  # the token window is left untouched


async def test_check_rate_limits_request_within_tpm_is_counted() -> None:
    limiter = CountingLimiter()
    key = dataclasses.replace(KEY, tpm_limit=100)

    await check_rate_limits(limiter, key, request_id="r1", tokens=100)

    assert limiter.hits == [("rpm:1", 1), ("tpm:1", 100)]
