"""Real databases for the record's tests: a SQLite file and, when one is given, PostgreSQL.

Each PostgreSQL test gets a schema of its own (through ``search_path`` in the
URL), so tests never see each other's chains and the URL can be handed to
child processes as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.models import AuditCheckpoint, AuditEvent, AuditOutbox
from sandbox.audit.record import record
from sandbox.db.base import Base, make_engine, make_sessionmaker, transaction
from tests.resources import require_postgres

AUDIT_TABLES = [AuditEvent.__table__, AuditCheckpoint.__table__, AuditOutbox.__table__]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    base = make_url(require_postgres())
    schema = f"audit_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def create_audit_tables(url: str) -> None:
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=AUDIT_TABLES)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database holding the audit tables, on each backend."""
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'audit.db'}")
    else:
        database = postgres_schema()
    with database as url:
        create_audit_tables(url)
        yield url


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def append(factory: sessionmaker[Session], count: int, actor: str = "alice") -> None:
    """Record ``count`` events, each in its own transaction, as the platform does."""
    for i in range(count):
        with transaction(factory) as session:
            record(
                session,
                actor=actor,
                action="agreement.suspend",
                object=f"agreement:AGR-2026-{i:04d}",
                details={"reason": "投诉待核实", "n": i, "share": 0.25},
            )
