"""Persistence: SQLAlchemy 2 models on SQLite (default) or PostgreSQL (by URL)."""
