"""Bring a database to the current schema with Alembic (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from sandbox.keys.fields import FieldKeys

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def ensure_schema(url: str, field_keys: FieldKeys | None = None) -> None:
    """Upgrade to head; an empty database gets the whole schema. Migrations that seal
    existing values use ``field_keys`` (else the configured settings' key store)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(url)
    config.attributes["field_keys"] = field_keys
    command.upgrade(config, "head")
