"""The control-plane tests' platform (a fresh database on SQLite and PostgreSQL, its users
and catalogue) for refusals provoked through the services, and the guard tests' built
agreement databases for the guard's own."""

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.agreements.service import import_agreement
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    client,
    db_url,
    factory,
    settings,
    users,
)
from tests.control_plane.helpers import agreement, publish_all
from tests.query_guard.conftest import aggregate, record, world  # noqa: F401
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


@pytest.fixture
def signed(factory: sessionmaker[Session], published: Users) -> Users:  # noqa: F811
    """The catalogue published and alice's agreement AGR-T-0001 with the health provider."""
    with transaction(factory) as session:
        import_agreement(session=session, actor=published["health"], agreement=agreement())
    return published
