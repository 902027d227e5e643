"""The control-plane tests' platform (a fresh database on SQLite and PostgreSQL, its users
and catalogue) for refusals provoked through the services."""

from tests.control_plane.conftest import catalog_dir, db_url, factory, settings, users  # noqa: F401
