"""Tests of vaultgate.billing."""
