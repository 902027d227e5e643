"""Appending: the chain it builds, its refusals, and its place in the caller's transaction."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.canonical import GENESIS_HASH
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.audit.verify import stream_events, verify_chain
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.errors import ValidationFailed
from tests.audit.conftest import append, create_audit_tables, postgres_schema


def test_events_form_a_chain_from_genesis(factory: sessionmaker[Session]) -> None:
    append(factory, 3)
    with factory() as session:
        events = list(stream_events(session))
        result = verify_chain(session)
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[0]["prev_hash"] == GENESIS_HASH
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert events[0]["at"].endswith("Z") and len(events[0]["at"]) == 27
    assert result.ok and result.count == 3 and result.problems == []


def test_event_commits_with_the_change_or_not_at_all(factory: sessionmaker[Session]) -> None:
    append(factory, 1)
    with pytest.raises(RuntimeError), transaction(factory) as session:
        record(session, actor="bob", action="agreement.approve", object="agreement:AGR-1")
        raise RuntimeError("the change failed after its event was recorded")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1
    append(factory, 1)  # the chain continues where the committed head left it
    with factory() as session:
        result = verify_chain(session)
    assert result.ok and result.count == 2


def test_a_second_event_on_the_same_predecessor_is_refused(
    factory: sessionmaker[Session],
) -> None:
    append(factory, 2)
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.execute(
            text(
                "INSERT INTO audit_events"
                " (seq, at, actor, action, object, details, prev_hash, hash)"
                " SELECT 3, at, actor, action, object, details, prev_hash, hash"
                " FROM audit_events WHERE seq = 2"
            )
        )


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"actor": ""}, "actor must be a non-empty string"),
        ({"action": "  "}, "action must be a non-empty string"),
        ({"details": {"ratio": float("nan")}}, "$.ratio is nan"),
    ],
)
def test_malformed_events_are_refused_and_nothing_is_written(
    factory: sessionmaker[Session], fields: dict, complaint: str
) -> None:
    event = {"actor": "alice", "action": "a.b", "object": "x:1", **fields}
    with (
        pytest.raises(ValidationFailed, match=re.escape(complaint)),
        transaction(factory) as session,
    ):
        record(session, **event)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_identical_events_have_identical_bytes_on_sqlite_and_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sandbox.audit.record.utcnow", lambda: datetime(2026, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    )
    sqlite_url = f"sqlite:///{tmp_path / 'audit.db'}"
    create_audit_tables(sqlite_url)
    with postgres_schema() as postgres_url:
        create_audit_tables(postgres_url)
        stored = [_record_sample(sqlite_url), _record_sample(postgres_url)]
    assert stored[0] == stored[1]
    assert stored[0][1]["details"] == '{"amount":"12.50","note":"中止开放","ratio":0.1}'


def _record_sample(url: str) -> list[dict]:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    for amount in (Decimal("12.50"), Decimal("12.50")):
        with transaction(factory) as session:
            details = {"note": "中止开放", "amount": amount, "ratio": 0.1}
            record(
                session, actor="provider-1", action="dataset.suspend", object="d:x", details=details
            )
    with factory() as session:
        events = list(stream_events(session))
    engine.dispose()
    return events
