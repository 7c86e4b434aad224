"""Prometheus metrics: cheap counters on the request path, rendered at ``GET /metrics``."""
