"""Password hashing with argon2id."""

from __future__ import annotations

from vaultgate.accounts.passwords import hash_password, verify_password


def test_hash_password_is_salted_argon2id() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")

    assert first.startswith("$argon2id$")
    assert first != second
    assert "correct horse battery" not in first


def test_verify_password_right_password_is_accepted() -> None:
    assert verify_password(hash_password("pässwörd ✓"), "pässwörd ✓") is True


def test_verify_password_wrong_password_is_rejected() -> None:
    assert (
        verify_password(hash_password("correct horse battery"), "Correct horse battery") is False
    )


def test_verify_password_malformed_hash_is_rejected() -> None:
    assert verify_password("not-a-hash", "anything") is False
    assert verify_password("", "anything") is False
