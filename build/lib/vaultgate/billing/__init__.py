"""Prices and the cost of a request."""
