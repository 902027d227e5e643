"""Revision 0003 (the audit outbox) upgrades a database made by revision 0002 and keeps its
data: the chain, its checkpoints and the query log; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from query_guard.service.models import QueryLog
from sandbox.audit.advance import advance
from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import alembic_config
from tests.databases import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        database = fresh_postgres_database()
    with database as url:
        yield url


def _events_as_0002_wrote_them(count: int) -> list[dict[str, object]]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "at": f"2026-05-01T08:00:0{seq}.000000Z",
            "actor": "alice",
            "action": "query",
            "object": "agreement:AGR-1",
            "details": canonical_json({"n": seq}),
        }
        digest = event_hash(prev_hash=prev, **fields)  # type: ignore[arg-type]
        events.append({**fields, "prev_hash": prev, "hash": digest})
        prev = digest
    return events


def test_0003_keeps_the_chain_and_the_query_log_and_adds_the_outbox(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0002")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for event in _events_as_0002_wrote_them(2):
                conn.execute(
                    text(
                        "INSERT INTO audit_events (seq, at, actor, action, object, details,"
                        " prev_hash, hash) VALUES (:seq, :at, :actor, :action, :object,"
                        " :details, :prev_hash, :hash)"
                    ),
                    event,
                )
            conn.execute(
                text(
                    "INSERT INTO query_log (agreement_id, researcher, at, action, mode, rows,"
                    " duration_ms, where_terms, audit_seq) VALUES ('AGR-1', 'alice', :at,"
                    " 'allow', 'aggregate', 3, 5, '[]', 2)"
                ),
                {"at": datetime(2026, 5, 1, 8, tzinfo=UTC)},
            )
        command.upgrade(config, "head")

        assert "audit_outbox" in inspect(engine).get_table_names()
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            kept = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
            assert [e.as_dict() for e in kept] == _events_as_0002_wrote_them(2)
            assert session.scalars(select(QueryLog.audit_seq)).all() == [2]

        def later_query(session: Session) -> None:  # logged after the upgrade: no audit_seq
            session.add(
                QueryLog(
                    agreement_id="AGR-1",
                    researcher="alice",
                    action="allow",
                    mode="aggregate",
                    rows=1,
                    duration_ms=1,
                    where_terms=[],
                )
            )
            record(session, actor="alice", action="query", object="agreement:AGR-1")

        advance(factory, "query", later_query)
        with transaction(factory) as session:
            assert session.scalars(select(QueryLog.audit_seq).order_by(QueryLog.id)).all() == [
                2,
                None,
            ]
            result = verify_chain(session)
        assert result.ok and result.count == 3
    finally:
        engine.dispose()
