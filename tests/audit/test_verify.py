"""Tampering with the stored record through raw SQL, as an operator could, and naming it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit import verify
from sandbox.audit.canonical import event_hash
from sandbox.audit.checkpoint import load_signing_key, make_checkpoint, public_key_hex, signed
from sandbox.audit.verify import Problem, stream_events, verify_chain
from sandbox.db.base import transaction
from tests.audit.conftest import append


def _kinds(factory: sessionmaker[Session], checkpoints=()) -> list[tuple[int, str]]:
    with factory() as session:
        result = verify_chain(session, checkpoints)
    assert result.ok is (not result.problems)
    return [(problem.seq, problem.kind) for problem in result.problems]


def _sql(factory: sessionmaker[Session], statement: str, **params: object) -> None:
    with transaction(factory) as session:
        session.execute(text(statement), params)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"n":4,"reason":"none","share":0.25}'),
        ("details", '{"n": 4, "reason": "投诉待核实", "share": 0.25}'),  # same data, reformatted
        ("actor", "mallory"),
        ("action", "agreement.approve"),
        ("object", "agreement:AGR-2026-9999"),
        ("at", "2020-01-01T00:00:00.000000Z"),
        ("prev_hash", "f" * 64),
        ("hash", "0" * 63 + "1"),
    ],
)
def test_an_edited_column_names_its_event(
    factory: sessionmaker[Session], column: str, value: str
) -> None:
    append(factory, 8)
    _sql(factory, f"UPDATE audit_events SET {column} = :value WHERE seq = 5", value=value)
    assert _kinds(factory) == [(5, "edited")]


def test_a_deleted_event_leaves_a_named_gap(factory: sessionmaker[Session]) -> None:
    append(factory, 8)
    _sql(factory, "DELETE FROM audit_events WHERE seq IN (4, 5)")
    with factory() as session:
        result = verify_chain(session)
    assert result.count == 6
    assert result.problems == [
        Problem(6, "gap", "seq 4..5 missing before seq 6: events were deleted")
    ]


def test_swapped_events_are_reported_as_reordered(factory: sessionmaker[Session]) -> None:
    append(factory, 8)
    _swap_contents(factory, 4, 6)
    assert _kinds(factory) == [(4, "reordered"), (6, "reordered")]


def test_an_event_rewritten_with_its_own_hash_breaks_the_next_link(
    factory: sessionmaker[Session],
) -> None:
    append(factory, 8)
    with factory() as session:
        event = next(e for e in stream_events(session) if e["seq"] == 3)
    forged = {**event, "actor": "mallory"}
    _store_with_recomputed_hash(factory, forged)
    assert _kinds(factory) == [(4, "broken-link")]


def test_an_inserted_event_is_found(factory: sessionmaker[Session]) -> None:
    """Shift events 5.. up by one and slip a well-formed forgery in at 5."""
    append(factory, 8)
    _sql(factory, "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 5")
    _sql(factory, "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000")
    forged = {
        "seq": 5,
        "at": "2026-01-01T00:00:00.000000Z",
        "actor": "mallory",
        "action": "export.approve",
        "object": "export:1",
        "details": "{}",
        "prev_hash": "e" * 64,  # the true predecessor's hash is taken (no forks)
    }
    _store_with_recomputed_hash(factory, forged, insert=True)
    assert _kinds(factory) == [(5, "broken-link")] + [(s, "reordered") for s in range(6, 10)]


def test_verification_streams_across_batches(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "BATCH_SIZE", 3)
    append(factory, 10)
    _sql(factory, "UPDATE audit_events SET actor = 'x' WHERE seq = 7")
    _sql(factory, "DELETE FROM audit_events WHERE seq = 4")
    with factory() as session:
        result = verify_chain(session)
    assert result.count == 9
    assert [(p.seq, p.kind) for p in result.problems] == [(5, "gap"), (7, "edited")]


def test_a_consistent_rewrite_passes_the_chain_but_not_the_checkpoint(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = load_signing_key(tmp_path / "keys")
    append(factory, 6)
    with transaction(factory) as session:
        kept = signed(make_checkpoint(session, key), public_key_hex(key))
    append(factory, 2)
    _rewrite_consistently(factory, seq=3, actor="mallory")
    assert _kinds(factory) == []  # without a checkpoint the forgery is perfect
    assert _kinds(factory, [kept]) == [(6, "checkpoint")]


def test_a_truncated_record_fails_its_checkpoint(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = load_signing_key(tmp_path / "keys")
    append(factory, 5)
    with transaction(factory) as session:
        kept = signed(make_checkpoint(session, key), public_key_hex(key))
    _sql(factory, "DELETE FROM audit_events WHERE seq >= 4")
    with factory() as session:
        result = verify_chain(session, [kept])
    assert [(p.seq, p.kind) for p in result.problems] == [(5, "checkpoint")]
    assert "record ends at seq 3" in result.problems[0].message


def test_a_checkpoint_with_a_forged_signature_is_reported(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = load_signing_key(tmp_path / "keys")
    other = load_signing_key(tmp_path / "other-keys")
    append(factory, 3)
    with transaction(factory) as session:
        genuine = signed(make_checkpoint(session, key), public_key_hex(key))
    claimed = replace(genuine, public_key=public_key_hex(other))
    assert _kinds(factory, [genuine]) == []
    assert _kinds(factory, [claimed]) == [(3, "checkpoint")]


def _swap_contents(factory: sessionmaker[Session], a: int, b: int) -> None:
    """Exchange everything but ``seq`` between two events (keeping prev_hash unique)."""
    with factory() as session:
        rows = {e["seq"]: e for e in stream_events(session) if e["seq"] in (a, b)}
    for seq in (a, b):
        _sql(
            factory,
            "UPDATE audit_events SET prev_hash = :tmp WHERE seq = :seq",
            tmp=str(seq).rjust(64, "9"),
            seq=seq,
        )
    for seq, source in ((a, rows[b]), (b, rows[a])):
        content = {k: v for k, v in source.items() if k != "seq"}
        assignments = ", ".join(f"{column} = :{column}" for column in content)
        _sql(factory, f"UPDATE audit_events SET {assignments} WHERE seq = :seq", seq=seq, **content)


def _store_with_recomputed_hash(
    factory: sessionmaker[Session], event: dict, insert: bool = False
) -> str:
    """Write ``event`` with the hash its content really has; return that hash."""
    fields = {k: v for k, v in event.items() if k != "hash"}
    row = {**fields, "hash": event_hash(**fields)}
    if insert:
        columns = ", ".join(row)
        values = ", ".join(f":{column}" for column in row)
        _sql(factory, f"INSERT INTO audit_events ({columns}) VALUES ({values})", **row)
    else:
        assignments = ", ".join(f"{column} = :{column}" for column in row if column != "seq")
        _sql(factory, f"UPDATE audit_events SET {assignments} WHERE seq = :seq", **row)
    return row["hash"]


def _rewrite_consistently(factory: sessionmaker[Session], *, seq: int, actor: str) -> None:
    """What an operator with database access can do: edit one event, re-hash all after it."""
    with factory() as session:
        events = list(stream_events(session))
    prev_hash = events[seq - 2]["hash"]
    for event in events[seq - 1 :]:
        changed = {**event, "prev_hash": prev_hash}
        if event["seq"] == seq:
            changed["actor"] = actor
        prev_hash = _store_with_recomputed_hash(factory, changed)
