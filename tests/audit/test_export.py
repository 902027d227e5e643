"""The authority's copy: exported, verified offline by the same code, tampering found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.canonical import GENESIS_HASH, event_hash
from sandbox.audit.checkpoint import load_signing_key, make_checkpoint, public_key_hex, signed
from sandbox.audit.export import export_record, verify_export
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import stream_events
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.errors import ValidationFailed
from tests.audit.conftest import append, create_audit_tables


@pytest.fixture
def exported(factory: sessionmaker[Session], tmp_path: Path) -> Path:
    append(factory, 6)
    out = tmp_path / "record.jsonl"
    export_record(factory, load_signing_key(tmp_path / "keys"), out)
    return out


def test_the_export_holds_every_event_as_stored_and_verifies(
    exported: Path, factory: sessionmaker[Session]
) -> None:
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    with factory() as session:
        assert lines[1:] == list(stream_events(session))
    assert lines[0]["checkpoint"]["seq"] == 6
    result = verify_export(exported)
    assert result.ok and result.count == 6


def test_an_edited_line_is_named(exported: Path) -> None:
    lines = exported.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[3])
    event["object"] = "agreement:other"
    lines[3] = json.dumps(event, ensure_ascii=False)
    exported.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [(p.seq, p.kind) for p in verify_export(exported).problems] == [(3, "edited")]


def test_a_removed_tail_fails_the_files_own_checkpoint(exported: Path) -> None:
    lines = exported.read_text(encoding="utf-8").splitlines()
    exported.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert [(p.seq, p.kind) for p in verify_export(exported).problems] == [(6, "checkpoint")]


def test_a_later_export_of_a_rewritten_record_fails_the_kept_checkpoint(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The operator re-signs a rewritten chain; the authority's earlier checkpoint disagrees."""
    key = load_signing_key(tmp_path / "keys")
    append(factory, 4)
    with transaction(factory) as session:
        kept = signed(make_checkpoint(session, key), public_key_hex(key))
    other = tmp_path / "other"
    append(factory, 4)
    with factory() as session:
        events = list(stream_events(session))
    events[1]["actor"] = "mallory"
    _write_resigned_export(other, events, tmp_path)
    assert verify_export(other).ok  # self-consistent, re-signed by the operator
    assert [(p.seq, p.kind) for p in verify_export(other, [kept]).problems] == [(4, "checkpoint")]


def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"seq": 1}\n')
    with pytest.raises(ValidationFailed, match="not an audit record export"):
        verify_export(path)


def _write_resigned_export(out: Path, events: list[dict], tmp_path: Path) -> None:
    """Re-hash ``events`` into a consistent chain and export it under a fresh checkpoint."""
    prev = GENESIS_HASH
    url = f"sqlite:///{tmp_path / 'forged.db'}"
    create_audit_tables(url)
    engine = make_engine(url)
    forged = make_sessionmaker(engine)
    with transaction(forged) as session:
        for event in events:
            fields = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
            digest = event_hash(**fields, prev_hash=prev)
            session.add(AuditEvent(**fields, prev_hash=prev, hash=digest))
            prev = digest
    export_record(forged, load_signing_key(tmp_path / "keys"), out)
    engine.dispose()
