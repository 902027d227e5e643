"""The control-plane fixtures (SQLite and PostgreSQL, demo users, a tiny catalogue)."""

from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    cli_env,
    client,
    db_url,
    factory,
    settings,
    users,
)
