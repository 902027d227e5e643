"""A fresh PostgreSQL database per test, on the server `.ci/run` starts.

The server's URL is ``SANDBOX_TEST_POSTGRES_URL``. Without it the test skips,
saying why — unless ``SANDBOX_REQUIRE_POSTGRES=1`` (CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def postgres_url() -> str:
    url = os.environ.get("SANDBOX_TEST_POSTGRES_URL")
    if not url:
        reason = "PostgreSQL not available: SANDBOX_TEST_POSTGRES_URL is not set"
        if os.environ.get("SANDBOX_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " but SANDBOX_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    return url


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    server = make_url(postgres_url())
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # Only client connections: an autovacuum worker runs as the superuser, cannot be
            # terminated by us, and DROP DATABASE stops it by itself.
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :n AND backend_type = 'client backend'"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
