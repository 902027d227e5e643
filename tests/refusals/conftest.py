"""The control-plane tests' platform (a fresh database on SQLite and PostgreSQL, its users
and catalogue) for refusals provoked through the services."""

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.settings import Settings
from tests.control_plane.conftest import catalog_dir, db_url, factory, settings, users  # noqa: F401
from tests.control_plane.helpers import publish_all
from tests.refusals.provoke import Users


@pytest.fixture
def published(
    factory: sessionmaker[Session],  # noqa: F811
    users: Users,  # noqa: F811
    settings: Settings,  # noqa: F811
    catalog_dir: Path,  # noqa: F811
) -> Users:
    """The platform's users with the catalogue published."""
    publish_all(factory, users, settings, catalog_dir)
    return users
