"""End-to-end tests of the management API under /api."""
