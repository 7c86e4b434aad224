"""Tests of vaultgate.accounts."""
