"""Sign-in throttling, the same for the management API and the sign-in page.

Each attempt, right or wrong, counts in two sliding one-minute windows of the app's limiter
(kept in Redis when it is configured, so that every process counts together):

- per account and client address: guessing one account's password from one address stops
  after a few tries, yet the owner signing in from any other address is not locked out;
- per client address, over every account and more loosely: one address cannot spread its
  guesses over many accounts.
"""

from __future__ import annotations

import secrets

from vaultgate.accounts.users import normalise_email
from vaultgate.limits.base import Decision, SlidingWindowLimiter

ATTEMPTS_PER_ACCOUNT_AND_ADDRESS = 10
ATTEMPTS_PER_ADDRESS = 30


def _pair_subject(email: str, address: str) -> str:
    # The email's length keeps the pair unambiguous: both parts may contain ':'.
    return f"login:pair:{len(email)}:{email}:{address}"


async def sign_in_refusal(
    limiter: SlidingWindowLimiter, *, email: str, address: str
) -> Decision | None:
    """Count one sign-in attempt; the refusing decision when it is over a limit, else None."""
    # Unique per attempt: the Redis limiter keeps one entry per member.
    member = secrets.token_hex(8)
    by_address = await limiter.hit(
        f"login:ip:{address}", limit=ATTEMPTS_PER_ADDRESS, weight=1, member=member
    )
    if not by_address.allowed:
        return by_address
    by_pair = await limiter.hit(
        _pair_subject(normalise_email(email), address),
        limit=ATTEMPTS_PER_ACCOUNT_AND_ADDRESS,
        weight=1,
        member=member,
    )
    return None if by_pair.allowed else by_pair
