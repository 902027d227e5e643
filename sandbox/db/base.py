"""Declarative base and engine/session helpers shared by every model module."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Insert,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Execution option marking a transaction that only reads (see :func:`read_only`).
READ_ONLY = "sandbox_read_only"


def make_engine(url: str) -> Engine:
    """An engine with the settings our transactions rely on.

    SQLite gets a busy timeout and foreign keys; ``BEGIN IMMEDIATE`` is issued
    by :func:`write_transaction` callers through ``session.connection()`` so that
    concurrent writers queue instead of failing.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=20,  # a file handle each: enough for every thread of a loaded worker
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at BEGIN: read-then-write transactions (the
            # audit chain, the budget ledger) then serialise instead of deadlocking.
            # Long reads (verifying the record) say so and take no write lock.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    # Enough connections kept for a worker's threads: an overflow connection is closed
    # after each use, and opening one cost more than the query it served.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


#: Seconds a writer waits for its turn, as long as SQLite's busy timeout lets it wait.
WRITER_WAIT_S = 30.0
_WRITER_TURNS: dict[str, threading.Lock] = {}
_WRITER_TURNS_GUARD = threading.Lock()


class WriterWaitedTooLong(RuntimeError):
    """Another write transaction of this process held SQLite's write lock too long."""


@contextmanager
def writer_turn(factory: sessionmaker[Session]) -> Iterator[None]:
    """On SQLite, hold this process's turn to write for the block; elsewhere nothing.

    SQLite lets one write transaction at a time, and a connection that finds the lock taken
    sleeps in growing steps (up to 100 ms) before it looks again: under load, threads of one
    process slept far longer than the transactions they waited for. Taking turns on a lock
    of the process first, they queue instead, and SQLite's wait is left to other processes.
    """
    engine: Engine = factory.kw["bind"]
    if engine.dialect.name != "sqlite":
        yield
        return
    key = engine.url.render_as_string(hide_password=True)
    with _WRITER_TURNS_GUARD:
        turn = _WRITER_TURNS.setdefault(key, threading.Lock())
    if not turn.acquire(timeout=WRITER_WAIT_S):
        raise WriterWaitedTooLong(
            f"no turn to write to the platform database within {WRITER_WAIT_S:g} s"
        )
    try:
        yield
    finally:
        turn.release()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with factory() as session, writer_turn(factory), session.begin():
        yield session


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that only reads and never blocks writers (SQLite: no write lock);
    anything it changed is rolled back."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def read_only_connection(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """:func:`read_only` on a Core connection, with no session: for reads made on every
    request, where making and ending a session cost more than the statements."""
    engine: Engine = factory.kw["bind"]
    with engine.connect() as connection:
        transaction = connection.execution_options(**{READ_ONLY: True}).begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def column_values(row: Base) -> dict[str, Any]:
    """The values of ``row``'s columns (a model instance not added to any session), its
    database-made primary key left out: what a Core insert of its table takes."""
    table = row.__table__
    return {
        column.key: getattr(row, column.key)
        for column in table.columns
        if column is not table.autoincrement_column
    }


def insert_row(session: Session, row: Base) -> None:
    """Insert ``row`` with one Core statement in ``session``'s transaction and set its primary
    key; ``row`` stays out of the session. For the hottest paths (a query's log row and its
    audit event), where the ORM's flush cost more than the insert."""
    written = session.connection().execute(_insert_into(row.__table__), column_values(row))
    [key] = row.__table__.primary_key.columns
    setattr(row, key.key, written.inserted_primary_key[0])


@functools.cache
def _insert_into(table: Table) -> Insert:
    return insert(table)
