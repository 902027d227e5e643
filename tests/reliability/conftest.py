"""Fixtures for the reliability tests: the control-plane platform (SQLite, and PostgreSQL
when available) and the query service's world of three provisioned agreements.

Every test ends with the audit chain verified (the ``factory`` fixture): a refused input
never breaks the record.
"""

from __future__ import annotations

from tests.control_plane.conftest import (  # noqa: F401  (fixtures)
    catalog_dir,
    cli_env,
    client,
    db_url,
    factory,
    settings,
    users,
)
from tests.query_service.conftest import qs, world  # noqa: F401  (fixtures)
