"""Relational storage: tables, the engine factory and migrations."""
