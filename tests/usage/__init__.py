"""Tests of vaultgate.usage."""
