"""Tests of vaultgate.providers."""
