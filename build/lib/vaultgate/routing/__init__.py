"""Choosing deployments for a model and failing over between them."""
