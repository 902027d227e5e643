"""A fresh PostgreSQL database per test, on the server of ``SANDBOX_TEST_POSTGRES_URL``.

``.ci/run`` sets that URL; otherwise ``make test`` creates a throwaway database on a
local server (tests/local_postgres.py). Without either the test skips, saying why —
unless ``SANDBOX_REQUIRE_POSTGRES=1`` (CI), where it fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from tests.resources import require_postgres


def drop_databases(admin_url: URL, names: Iterable[str], prefix: str = "") -> None:
    """Drop ``names`` and every database whose name starts with ``prefix`` (when given),
    ending their client connections first, over a connection to ``admin_url``."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            doomed = list(names)
            if prefix:
                doomed += conn.execute(
                    text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"),
                    {"p": prefix},
                ).scalars()
            for name in doomed:
                # Only client connections: an autovacuum worker runs as the superuser,
                # cannot be terminated by us, and DROP DATABASE stops it by itself.
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :n AND backend_type = 'client backend'"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards.

    It is named after the run's database (``t_<database>_<random>``) and created over a
    connection to that database, so a run touches no database but its own."""
    server = make_url(require_postgres())
    name = f"t_{server.database}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        drop_databases(server, [name])
