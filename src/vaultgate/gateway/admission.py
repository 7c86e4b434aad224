"""Admitting a request: rate limits, then holding its maximum cost and tokens.

The hold is an upper bound, so the actual charge can never exceed it: prompt tokens are
bounded by the prompt's UTF-8 bytes (a byte-level tokenizer never makes more tokens than
bytes) plus per-message overhead, and completion tokens by ``max_tokens`` (or the model's
output limit). Both count once for each of the ``n`` choices: a provider that answers one
choice per request is sent the prompt ``n`` times, and bills it each time.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from vaultgate.accounts.keys import KeyRecord
from vaultgate.billing.hold_stores import HoldStore
from vaultgate.billing.reservations import Hold
from vaultgate.errors import RateLimited
from vaultgate.limits.base import Decision, SlidingWindowLimiter, format_reset
from vaultgate.providers.base import JsonObject, Usage
from vaultgate.providers.catalog import ModelEntry
from vaultgate.providers.tokens import estimate_prompt_tokens

DEFAULT_MAX_OUTPUT_TOKENS = 4096
TOKENS_PER_MESSAGE_BOUND = 8
TOKENS_PER_IMAGE_BOUND = 2000
PROMPT_OVERHEAD_BOUND = 16


def prompt_token_bound(body: JsonObject) -> int:
    """An upper bound on the prompt tokens of a chat body."""
    total = PROMPT_OVERHEAD_BOUND
    for message in body["messages"]:
        total += TOKENS_PER_MESSAGE_BOUND
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += len(str(part.get("text", "")).encode())
                else:
                    total += TOKENS_PER_IMAGE_BOUND
        for key in ("tool_calls", "function_call", "name", "tool_call_id"):
            if message.get(key) is not None:
                total += len(orjson.dumps(message[key]))
    for key in ("tools", "functions", "response_format", "tool_choice"):
        if body.get(key) is not None:
            total += len(orjson.dumps(body[key]))
    return total


def completion_token_bound(body: JsonObject, model: ModelEntry) -> int:
    """An upper bound on the completion tokens of a chat body, over all choices."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None:
        limit = model.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
    return int(limit) * int(body.get("n") or 1)


@dataclass(slots=True)
class Admission:
    """What admitting a request produced: the hold and the rate-limit headers."""

    hold: Hold
    headers: dict[str, str]


def _limit_headers(kind: str, decision: Decision) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(decision.limit),
        f"x-ratelimit-remaining-{kind}": str(decision.remaining),
        f"x-ratelimit-reset-{kind}": format_reset(decision.reset_s),
    }


def _refuse(kind: str, decision: Decision, headers: dict[str, str]) -> RateLimited:
    noun = "requests" if kind == "requests" else "tokens"
    error = RateLimited(
        f"Rate limit reached for this key: {decision.limit} {noun} per minute. "
        f"Try again in {decision.retry_after_s()}s.",
        headers={**headers, "retry-after": str(decision.retry_after_s())},
    )
    error.error_type = noun
    return error


async def check_rate_limits(
    limiter: SlidingWindowLimiter, key: KeyRecord, *, request_id: str, tokens: int
) -> dict[str, str]:
    """Count the request against the key's limits; RateLimited (429) when over."""
    requests = await limiter.hit(f"rpm:{key.id}", limit=key.rpm_limit, weight=1, member=request_id)
    headers = _limit_headers("requests", requests)
    if not requests.allowed:
        raise _refuse("requests", requests, headers)
    if key.tpm_limit:
        token_decision = await limiter.hit(
            f"tpm:{key.id}", limit=key.tpm_limit, weight=max(tokens, 1), member=request_id
        )
        headers.update(_limit_headers("tokens", token_decision))
        if not token_decision.allowed:
            raise _refuse("tokens", token_decision, headers)
    return headers


async def admit_chat(
    holds: HoldStore,
    limiter: SlidingWindowLimiter,
    key: KeyRecord,
    model: ModelEntry,
    body: JsonObject,
    *,
    request_id: str,
) -> Admission:
    """Rate limits, then the hold for a chat request."""
    completion = completion_token_bound(body, model)
    choices = int(body.get("n") or 1)
    # The token estimate is only needed by a tokens-per-minute limit.
    requested = (
        estimate_prompt_tokens(body["messages"], body.get("tools")) * choices + completion
        if key.tpm_limit
        else 0
    )
    headers = await check_rate_limits(limiter, key, request_id=request_id, tokens=requested)
    prompt = prompt_token_bound(body) * choices
    amount = model.pricing.token_cost(Usage(prompt_tokens=prompt, completion_tokens=completion))
    hold = await holds.reserve(
        user_id=key.user_id, key_id=key.id, amount_micros=amount,
        tokens=prompt + completion, key_version=key.version,
    )  # fmt: skip
    return Admission(hold, headers)


async def admit_images(
    holds: HoldStore,
    limiter: SlidingWindowLimiter,
    key: KeyRecord,
    *,
    amount_micros: int,
    request_id: str,
) -> Admission:
    """Rate limits, then the hold for an image request (its exact price)."""
    headers = await check_rate_limits(limiter, key, request_id=request_id, tokens=0)
    hold = await holds.reserve(
        user_id=key.user_id, key_id=key.id, amount_micros=amount_micros, tokens=0,
        key_version=key.version,
    )  # fmt: skip
    return Admission(hold, headers)
