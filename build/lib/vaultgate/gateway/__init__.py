"""The /v1 hot path: key check, validation, routing to a provider, streaming and logging."""
