"""A throwaway PostgreSQL database on a server that already runs here, for one test run.

``make test`` uses what the machine has: without ``SANDBOX_TEST_POSTGRES_URL`` the run
looks for a server that accepts the current user without a password (Debian's socket
directory, ``/tmp``, then 127.0.0.1:5432; ``PGHOST`` and ``PGPORT`` as for psql), creates
a database of its own there, points ``SANDBOX_TEST_POSTGRES_URL`` at it for every test
and worker, and drops it at the end with any per-test database left in it. It never
writes to a database it did not create. A URL that is set (``.ci/run``) is used as it is.
"""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from tests.databases import drop_databases

URL_VARIABLE = "SANDBOX_TEST_POSTGRES_URL"
#: Where Debian's and upstream's servers put their socket (``PGHOST`` first when it names
#: a directory), then the loopback port; the port is ``PGPORT`` or 5432, as for psql.
SOCKET_DIRS = (Path("/var/run/postgresql"), Path("/tmp"))
LOOPBACK = "127.0.0.1"


@dataclass
class LocalPostgres:
    """What the search found: the database created for this run and where, or why there is
    none."""

    url: str | None = None
    created: str | None = None
    place: str = ""
    why_not: str = ""

    def where(self) -> str:
        """What the tests ran on, without a password, for the summary line."""
        if self.created is not None:
            return f"database {self.created} on {self.place}, dropped at the end"
        return make_url(self.url or "").render_as_string(hide_password=True)


def _candidates(user: str) -> list[tuple[str, URL]]:
    """Each place a local server may answer, named as the summary names it."""
    port = int(os.environ.get("PGPORT") or 5432)
    pghost = os.environ.get("PGHOST", "")
    directories = ([Path(pghost)] if pghost.startswith("/") else []) + list(SOCKET_DIRS)
    base = URL.create("postgresql+psycopg", username=user, database="postgres")
    found = []
    for directory in directories:
        socket = directory / f".s.PGSQL.{port}"
        if socket.exists():
            query = {"host": str(directory), "port": str(port), "connect_timeout": "3"}
            found.append((str(socket), base.update_query_dict(query)))
    tcp = base.set(host=LOOPBACK, port=port).update_query_dict({"connect_timeout": "3"})
    found.append((f"{LOOPBACK}:{port}", tcp))
    return found


def _why(exc: Exception) -> str:
    """The server's or the socket's own words, without libpq's preamble."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
    return lines[0].rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip()


def find_and_create() -> LocalPostgres:
    """Create this run's database on the first local server that lets the current user do
    so, or say for each place tried why not."""
    user = getpass.getuser()
    tried = []
    for place, url in _candidates(user):
        name = f"sbxtest_{uuid.uuid4().hex[:10]}"
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # refused, no such role, no CREATEDB: try the next place
            tried.append(f"{place}: {_why(exc)}")
            continue
        finally:
            engine.dispose()
        database = url.set(database=name).render_as_string(hide_password=False)
        return LocalPostgres(url=database, created=name, place=place)
    return LocalPostgres(
        why_not=f"no local server let user {user!r} create a database ({'; '.join(tried)})"
    )


def start() -> LocalPostgres:
    """The configured URL, or a fresh database on a local server, exported to every test."""
    configured = os.environ.get(URL_VARIABLE)
    if configured:
        return LocalPostgres(url=configured)
    found = find_and_create()
    if found.url is not None:
        os.environ[URL_VARIABLE] = found.url
    return found


def finish(found: LocalPostgres) -> None:
    """Drop the database this run created, and the per-test ones a killed test left."""
    if found.created is None or found.url is None:
        return
    admin = make_url(found.url).set(database="postgres")
    drop_databases(admin, [found.created], prefix=f"t_{found.created}_")
