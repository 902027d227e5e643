"""The control-plane fixtures (SQLite and PostgreSQL, users, catalogue, HTTP client), plus a
published catalogue with one signed agreement: alice's AGR-T-0001 with the health provider."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.db.base import transaction
from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    client,
    db_url,
    factory,
    settings,
    users,
)
from tests.control_plane.helpers import agreement, publish_all


@pytest.fixture
def signed(factory: sessionmaker[Session], users: dict[str, User], settings, catalog_dir):  # noqa: ANN001
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    return users
