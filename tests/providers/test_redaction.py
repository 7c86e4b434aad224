"""Redacting a provider credential from text a provider sent back: the whole key in any
letter case, its first or last characters, masked echoes, and nothing else."""

from __future__ import annotations

import pytest

from vaultgate.providers.http import MAX_ERROR_MESSAGE, scrub_secret
from vaultgate.providers.redaction import redact_secret

KEY = "sk-FAKESECRETabcdef0123456789xyzwcdef"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"Incorrect API key provided: {KEY}.", "Incorrect API key provided: ***."),
        (f"bad key {KEY.upper()}", "bad key ***"),
        (f"bad key {KEY.lower()}", "bad key ***"),
        ("Incorrect API key provided: sk-FAKES...cdef.", "Incorrect API key provided: ***."),
        ("key sk-FAKES************************cdef", "key ***"),
        ("key SK-FAKES\u2026CDEF was refused", "key *** was refused"),
        (f"Authorization=Bearer{KEY}&x=1", "Authorization=Bearer***&x=1"),
        ("token sk-FAKESECRETab is wrong", "token *** is wrong"),
        ("key ending 789xyzwcdef is wrong", "key ending *** is wrong"),
        (f"{KEY[:20]} and again {KEY[-12:]}", "*** and again ***"),
        ("masked ****wcdef", "masked ***"),
    ],
    ids=[
        "exact", "upper", "lower", "prefix-dots-suffix", "prefix-stars-suffix",
        "ellipsis-upper", "embedded", "prefix", "suffix", "both-ends", "stars-suffix",
    ],
)  # fmt: skip
def test_scrub_secret_echo_of_key_is_redacted(text: str, redacted: str) -> None:
    scrubbed = scrub_secret(text, KEY)

    assert scrubbed == redacted
    assert KEY.lower() not in scrubbed.lower()
    assert "FAKES" not in scrubbed.upper()


@pytest.mark.parametrize(
    "text",
    [
        "The upstream is busy... try again later.",
        "Rate limit reached for sk-... keys of this organisation",
        "**Bold** text, an ellipsis\u2026 and sk-proj-style prose",
        "cdef ... sk-",
        "Invalid value for 'temperature': 7.5",
    ],
)
def test_scrub_secret_ordinary_text_is_unchanged(text: str) -> None:
    assert scrub_secret(text, KEY) == text


def test_scrub_secret_key_after_the_kept_length_cannot_leak_half() -> None:
    text = "x" * (MAX_ERROR_MESSAGE - 10) + KEY

    scrubbed = scrub_secret(text, KEY)

    assert len(scrubbed) <= MAX_ERROR_MESSAGE
    assert scrubbed.endswith("x***")


@pytest.mark.parametrize("secret", [None, "", "abc"])
def test_redact_secret_without_a_usable_secret_changes_nothing(secret: str | None) -> None:
    assert redact_secret("abc sk-xyz ...", secret) == "abc sk-xyz ..."


def test_redact_secret_short_secret_is_redacted_whole_only() -> None:
    assert redact_secret("pin 1234 or PIN-1234", "pin-1234") == "pin 1234 or ***"
