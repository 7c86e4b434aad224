"""The management API under /api: accounts, keys, credit, usage and admin, as JSON."""
