"""Admitting a request: rate limits, then holding its maximum cost and tokens.

The hold is an upper bound, so the actual charge can never exceed it. Prompt tokens are
bounded by the size of everything forwarded — the request body's bytes, since a byte-level
tokenizer never makes more tokens than bytes, so unknown parameters, extra message fields
and base64 data all count — plus per-message and tool-use overhead and, for each image or
file part, the most a provider bills for one (an image given by a short URL can cost far
more than its bytes). The whole is capped at the model's context window, beyond which no
provider takes a prompt. Completion tokens are bounded by ``max_tokens`` (or the model's
output limit). Both count once for each of the ``n`` choices: a provider that answers one
choice per request is sent the prompt ``n`` times, and bills it each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from vaultgate.accounts.keys import KeyRecord
from vaultgate.billing.hold_stores import HoldStore
from vaultgate.billing.reservations import Hold
from vaultgate.errors import InsufficientBalance, RateLimited
from vaultgate.limits.base import Decision, SlidingWindowLimiter, format_reset
from vaultgate.providers.base import JsonObject, Usage
from vaultgate.providers.catalog import ModelEntry
from vaultgate.providers.tokens import estimate_prompt_tokens

DEFAULT_MAX_OUTPUT_TOKENS = 4096
TOKENS_PER_MESSAGE_BOUND = 8
PROMPT_OVERHEAD_BOUND = 16
# The largest per-image charge any provider documents: gpt-4o-mini bills a high-detail
# image at 2,833 tokens plus 5,667 per 512-px tile, and an image has at most 8 tiles
# (https://platform.openai.com/docs/guides/images-vision#calculating-costs). Others bill
# far less (Claude about 1,600, GPT-4.1 patches at most 3,779). A 1-px data URL or a short
# link can cost that much, so it is added to the bytes the part takes.
TOKENS_PER_IMAGE_BOUND = 48_169
# A file (a PDF) is billed by its pages' text and page images, neither bounded by its
# size: it may fill the whole context window, so it counts as the largest window any
# catalog model declares, which the model's own window then caps.
TOKENS_PER_FILE_BOUND = 2_000_000
# Tools add a hidden system prompt on some providers: Anthropic documents up to 346
# tokens (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview#pricing).
TOOL_USE_OVERHEAD_BOUND = 1000
# Reported usage above this multiple of the hold's tokens is no honest count (a provider
# bug or a hostile upstream): it is replaced by a local estimate.
PLAUSIBLE_USAGE_FACTOR = 10
# Holds are stored in signed 64-bit columns.
MAX_HOLD = 2**63 - 1
# Top-level parameters validated as small values that never become prompt text (the model
# id is replaced by the upstream's): their bytes are taken off the body's size.
CONTROL_PARAMS = (
    "model", "stream", "stream_options", "n", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "top_logprobs",
    "logprobs",
)  # fmt: skip


def _control_bytes(body: JsonObject) -> int:
    """What the control parameters take in compact JSON, each with its comma: no encoding
    of the body spends fewer bytes on them."""
    return sum(
        len(orjson.dumps(name)) + len(orjson.dumps(body[name])) + 2
        for name in CONTROL_PARAMS
        if name in body
    )


def _media_bound(messages: list[Any]) -> int:
    """Tokens the image and file parts may cost beyond their bytes."""
    total = 0
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type")
            if kind == "image_url":
                total += TOKENS_PER_IMAGE_BOUND
            elif kind == "file":
                total += TOKENS_PER_FILE_BOUND
    return total


def prompt_token_bound(
    body: JsonObject, *, body_bytes: int | None = None, context_window: int | None = None
) -> int:
    """An upper bound on the prompt tokens of one call for a validated chat body.

    ``body_bytes`` is the size the body arrived in (serialised here when unknown); JSON
    escapes and whitespace only make it larger than the text it encodes. Control
    parameters (``CONTROL_PARAMS``) are not counted.
    """
    size = len(orjson.dumps(body)) if body_bytes is None else body_bytes
    size -= _control_bytes(body)
    messages = body["messages"]
    total = PROMPT_OVERHEAD_BOUND + TOKENS_PER_MESSAGE_BOUND * len(messages) + size
    total += _media_bound(messages)
    if body.get("tools") or body.get("functions"):
        total += TOOL_USE_OVERHEAD_BOUND
    return min(total, context_window) if context_window else total


def plausible_usage(usage: Usage | None, hold: Hold | None) -> Usage | None:
    """``usage`` unless no provider could honestly report it: a negative count, or more
    than ``PLAUSIBLE_USAGE_FACTOR`` times the tokens the hold allowed for."""
    if usage is None:
        return None
    counts = (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    if min(counts) < 0:
        return None
    if hold is not None and usage.total_tokens > PLAUSIBLE_USAGE_FACTOR * max(hold.tokens, 1):
        return None
    return usage


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


def _too_large_for_limit(limit: int, tokens: int, headers: dict[str, str]) -> RateLimited:
    # As OpenAI answers a request too large for a tokens-per-minute limit: a 429 without
    # retry-after, because waiting cannot help; nothing is counted against the window.
    error = RateLimited(
        f"Request too large for this key's limit of {limit} tokens per minute: it may use up "
        f"to {tokens} tokens. Lower max_tokens or shorten the prompt, or raise the limit.",
        headers=headers,
    )
    error.error_type = "tokens"
    return error


async def check_rate_limits(
    limiter: SlidingWindowLimiter, key: KeyRecord, *, request_id: str, tokens: int
) -> dict[str, str]:
    """Count the request against the key's limits; RateLimited (429) when over."""
    requests = await limiter.hit(f"rpm:{key.id}", limit=key.rpm_limit, weight=1, member=request_id)
    headers = _limit_headers("requests", requests)
    if not requests.allowed:
        raise _refuse("requests", requests, headers)
    if key.tpm_limit and tokens > key.tpm_limit:
        raise _too_large_for_limit(key.tpm_limit, tokens, headers)
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
    body_bytes: int | None = None,
) -> Admission:
    """Rate limits, then the hold for a chat request (``body_bytes``: see
    ``prompt_token_bound``)."""
    completion = completion_token_bound(body, model)
    choices = int(body.get("n") or 1)
    # The token estimate is only needed by a tokens-per-minute limit.
    requested = (
        estimate_prompt_tokens(body["messages"], body.get("tools")) * choices + completion
        if key.tpm_limit
        else 0
    )
    headers = await check_rate_limits(limiter, key, request_id=request_id, tokens=requested)
    bound = prompt_token_bound(body, body_bytes=body_bytes, context_window=model.context_window)
    prompt = bound * choices
    amount = model.pricing.token_cost(Usage(prompt_tokens=prompt, completion_tokens=completion))
    if max(amount, prompt + completion) > MAX_HOLD:
        raise InsufficientBalance("This request could cost more than any balance can hold.")
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
