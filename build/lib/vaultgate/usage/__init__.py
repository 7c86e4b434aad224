"""The request log and usage queries."""
