"""Tests of vaultgate.storage."""
