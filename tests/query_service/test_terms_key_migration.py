"""Revision 0005 (the query log's digest of each query's WHERE conjuncts) fills the digest of
the rows logged before it, so the differencing warning compares a new query with them as it
did; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from query_guard.early_warning.detect import Observation, differencing
from query_guard.service.fingerprint import terms_key
from query_guard.service.models import QueryLog
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import alembic_config
from tests.databases import fresh_postgres_database

NOW = datetime.now(UTC)
#: (shape, WHERE conjuncts) as revision 0004 logged them, oldest first: one set repeated.
OLD = [("S", ["a"])] * 5 + [("S", ["a", "b"])] * 3 + [(None, [])]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        database = fresh_postgres_database()
    with database as url:
        yield url


def test_0005_fills_the_digest_and_differencing_still_sees_earlier_queries(
    empty_url: str,
) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0004")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for n, (shape, terms) in enumerate(OLD):
                conn.execute(
                    text(
                        "INSERT INTO query_log (agreement_id, researcher, at, action, mode, rows,"
                        " duration_ms, shape, where_terms) VALUES ('AGR-1', 'alice', :at,"
                        " 'allow', 'aggregate', 3, 5, :shape, :terms)"
                    ),
                    {
                        "at": NOW - timedelta(minutes=30 - n),
                        "shape": shape,
                        "terms": json.dumps(terms),
                    },
                )
        command.upgrade(config, "head")

        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            logged = session.scalars(select(QueryLog).order_by(QueryLog.id)).all()
            assert [r.terms_key for r in logged] == [
                terms_key(terms) if shape else None for shape, terms in OLD
            ]
            newest_narrower = logged[7].id  # the last of the three ["a", "b"]
            entry = QueryLog(
                agreement_id="AGR-1",
                researcher="alice",
                action="allow",
                mode="aggregate",
                shape="S",
                where_terms=["a", "b", "c"],
                terms_key=terms_key(["a", "b", "c"]),
            )
            session.add(entry)
            session.flush()
            seen = Observation(entry, None, NOW, NOW, NOW.date().isoformat())  # type: ignore[arg-type]
            found = differencing(session, seen)
        assert found is not None and found["query_log_ids"] == [newest_narrower, entry.id]
        assert found["predicates_differing"] == 1
    finally:
        engine.dispose()
