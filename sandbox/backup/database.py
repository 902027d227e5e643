"""A consistent copy of the platform database while it runs, and loading one back.

SQLite is copied with its online backup API, which reads one snapshot however
many writers are busy. PostgreSQL is dumped with ``pg_dump`` from a snapshot
this module exports and keeps open, so that the same snapshot can be read to
decide which files and keys belong with the dump.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from sandbox.errors import Conflict, SandboxError

#: The archive member holding the database, by dialect.
DUMP_NAMES = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}


def dialect_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in DUMP_NAMES:
        raise SandboxError(f"backups support SQLite and PostgreSQL, not {name}", rule="backup-db")
    return name


@contextmanager
def snapshot(url: str, dump_path: Path) -> Iterator[Session]:
    """Write a consistent dump of ``url`` to ``dump_path``; yield a session reading that state."""
    if dialect_of(url) == "sqlite":
        _sqlite_copy(make_url(url).database or "", dump_path)
        engine = create_engine(f"sqlite:///{dump_path}")
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()
        return
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            # The snapshot is taken at the transaction's first statement and
            # stays fixed for pg_dump and for our reads until the rollback.
            snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            dump = ["pg_dump", "--format=custom", f"--snapshot={snapshot_id}", "-f", str(dump_path)]
            _run(dump, url)
            with Session(bind=conn) as session:
                yield session
            conn.rollback()
    finally:
        engine.dispose()


def _sqlite_copy(source: str, dump_path: Path) -> None:
    """Copy the whole database in one step of the online backup API, as one snapshot."""
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(dump_path)
    try:
        src.backup(dst)
        # A self-contained file: no write-ahead log beside it in the archive.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def load(dump_path: Path, url: str) -> None:
    """Load a dump into the empty database at ``url`` (SQLite: a new file), all or nothing."""
    if dialect_of(url) == "sqlite":
        target = Path(make_url(url).database or "")
        if target.exists():
            raise Conflict(
                f"{target} already exists; restore into a new place", rule="restore-empty"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(dump_path, partial)
        os.replace(partial, target)
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if inspect(conn).get_table_names():
                raise Conflict(
                    "the target database is not empty; restore into an empty one",
                    rule="restore-empty",
                )
    finally:
        engine.dispose()
    _run(
        [
            "pg_restore",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--dbname={make_url(url).database}",
            str(dump_path),
        ],
        url,
    )


def empty(url: str) -> None:
    """Undo a load whose restore failed afterwards (PostgreSQL; SQLite files are just removed)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def _run(command: list[str], url: str) -> None:
    """Run a PostgreSQL client tool on ``url``; the password goes in the environment, not argv."""
    u = make_url(url)
    # A socket directory and its port come as ?host=/dir&port=N (libpq's way in a URL).
    env = {
        **os.environ,
        "PGHOST": u.host or str(u.query.get("host", "")),
        "PGPORT": str(u.port or u.query.get("port") or 5432),
        "PGUSER": u.username or "",
        "PGDATABASE": u.database or "",
    }
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SandboxError(f"{command[0]} failed: {done.stderr.strip()[:500]}", rule="backup-db")
