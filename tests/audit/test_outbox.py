"""``advance()``: a change and its events commit together, and the appender links them into
one chain afterwards, in order, one at a time — on SQLite and PostgreSQL, in real processes.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sandbox.audit.advance import Unrecorded, advance
from sandbox.audit.checkpoint import load_signing_key, make_checkpoint
from sandbox.audit.export import export_record, verify_export
from sandbox.audit.faults import UnlistedFaultPoint
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.audit.outbox import link_pending, waiting
from sandbox.audit.record import OUTBOX_SESSION, record
from sandbox.audit.verify import verify_chain
from sandbox.cli.audit import audit_app
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from tests.audit.conftest import append, create_audit_tables
from tests.waiting import eventually

#: A stand-in for any state a step changes (a charge, an export request, a query log row).
CHANGES = Table("changes", MetaData(), Column("id", Integer, primary_key=True))

WRITERS = 4
STEPS_EACH = 25


@pytest.fixture
def factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    CHANGES.create(factory.kw["bind"])
    return factory


def _change(session: Session, actor: str = "alice", n: int = 0) -> int:
    changed = session.execute(insert(CHANGES).values()).inserted_primary_key
    assert changed is not None
    record(
        session, actor=actor, action="change.make", object=f"change:{changed[0]}", details={"n": n}
    )
    return changed[0]


def _committed_unlinked(factory: sessionmaker[Session], count: int) -> None:
    """What a process killed between its commit and its link leaves: outbox rows."""
    for n in range(count):
        with factory() as session:
            session.info[OUTBOX_SESSION] = []
            with session.begin():
                _change(session, actor="killed", n=n)


def _actions(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    with factory() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.details).order_by(AuditEvent.seq)
        )
        return [(actor, json.loads(details).get("n")) for actor, details in rows]


def test_a_step_commits_its_change_with_its_event_and_links_it(
    factory: sessionmaker[Session],
) -> None:
    changed = advance(factory, "query", _change)
    with factory() as session:
        events = session.scalars(select(AuditEvent)).all()
        assert session.scalar(select(func.count()).select_from(AuditOutbox)) == 0
        assert session.scalar(select(func.count()).select_from(CHANGES)) == 1
    assert [e.object for e in events] == [f"change:{changed}"]
    assert events[0].seq == 1


def test_a_failed_change_leaves_neither_change_nor_event(factory: sessionmaker[Session]) -> None:
    def failing(session: Session) -> None:
        _change(session)
        raise RuntimeError("the change failed after its event was written")

    with pytest.raises(RuntimeError):
        advance(factory, "query", failing)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CHANGES)) == 0
        assert session.scalar(select(func.count()).select_from(AuditOutbox)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_change_without_an_event_is_refused_and_rolled_back(
    factory: sessionmaker[Session],
) -> None:
    with pytest.raises(Unrecorded, match="records no audit event") as caught:
        advance(factory, "query", lambda s: s.execute(insert(CHANGES).values()))
    assert caught.value.rule == "audit-unrecorded"
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CHANGES)) == 0


def test_a_step_without_a_listed_fault_point_is_refused(factory: sessionmaker[Session]) -> None:
    with pytest.raises(UnlistedFaultPoint, match="no fault point 'export.review.commit'"):
        advance(factory, "export.review", _change)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CHANGES)) == 0


def test_unlinked_events_are_outside_the_record_until_the_appender_links_them_in_order(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    append(factory, 2)
    _committed_unlinked(factory, 3)
    key = load_signing_key(tmp_path / "keys")
    with transaction(factory) as session:
        assert make_checkpoint(session, key).seq == 2  # signs the linked head only
        assert verify_chain(session).count == 2
    exported = tmp_path / "record.jsonl"
    assert export_record(factory, key, exported).seq == 2
    assert verify_export(exported).count == 2
    assert waiting(factory) == 3
    assert link_pending(factory, batch=2) == 3  # two short transactions
    assert waiting(factory) == 0 and link_pending(factory) == 0
    assert _actions(factory)[2:] == [("killed", 0), ("killed", 1), ("killed", 2)]
    with factory() as session:
        result = verify_chain(session)
    assert result.ok and result.count == 5


def test_an_event_linked_at_once_comes_after_those_committed_before_it(
    factory: sessionmaker[Session],
) -> None:
    """``record()`` outside a step links what waits first, so the chain keeps commit order."""
    _committed_unlinked(factory, 2)
    append(factory, 1)
    assert [actor for actor, _ in _actions(factory)] == ["killed", "killed", "alice"]
    assert waiting(factory) == 0


def _writer(url: str, name: str, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    start.wait()  # all writers begin together, so their steps and links overlap
    for n in range(STEPS_EACH):
        advance(factory, "query", lambda session, n=n: _change(session, actor=name, n=n))
    engine.dispose()


def test_parallel_steps_build_one_unbroken_chain_each_event_once(
    db_url: str, factory: sessionmaker[Session]
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS + 1)
    writers = [
        context.Process(target=_writer, args=(db_url, f"writer-{i}", start)) for i in range(WRITERS)
    ]
    for process in writers:
        process.start()
    start.wait()
    for process in writers:
        process.join()
    assert [process.exitcode for process in writers] == [0] * WRITERS
    total = WRITERS * STEPS_EACH
    events = _actions(factory)
    with factory() as session:
        result = verify_chain(session)
        seqs = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert result.ok, result.problems
    assert seqs == list(range(1, total + 1)) and waiting(factory) == 0
    assert sorted(events) == sorted(
        (f"writer-{i}", n) for i in range(WRITERS) for n in range(STEPS_EACH)
    )
    for i in range(WRITERS):  # each writer's steps in the order it made them
        assert [n for actor, n in events if actor == f"writer-{i}"] == list(range(STEPS_EACH))


def test_verify_checks_the_linked_chain_and_notes_what_waits(
    db_url: str, factory: sessionmaker[Session]
) -> None:
    append(factory, 2)
    _committed_unlinked(factory, 3)
    result = CliRunner().invoke(audit_app, ["verify", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "OK: 2 events verified" in result.stdout
    assert "note: 3 committed events wait in the outbox" in result.stderr
    link_pending(factory)
    linked = CliRunner().invoke(audit_app, ["verify", "--db", db_url])
    assert "OK: 5 events verified" in linked.stdout and "wait" not in linked.stderr


def test_steps_that_queue_share_a_transaction_and_a_failed_one_is_undone_alone(
    tmp_path: Path,
) -> None:
    """On SQLite, which writes one transaction at a time, threads of one process whose
    steps arrive while one is being made queue and are made in one transaction, each change
    in its own savepoint: a change that raises, and one that records nothing, are undone
    alone and raise in their own caller; the others commit with their events, linked in
    the same commit, and each caller gets its own value. (PostgreSQL makes them side by
    side.)"""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    create_audit_tables(url)
    engine = make_engine(url)
    CHANGES.create(engine)
    factory = make_sessionmaker(engine)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    entered, release = threading.Event(), threading.Event()

    def first(session: Session) -> int:
        entered.set()
        release.wait(60)  # the others queue meanwhile
        return _change(session, actor="first")

    def failing(session: Session) -> int:
        _change(session, actor="failing")
        raise ValueError("this change fails after writing")

    steps = [lambda s, n=n: _change(s, actor="queued", n=n) for n in range(5)] + [
        failing,
        lambda s: s.execute(insert(CHANGES).values()),
    ]
    outcomes: dict[int, object] = {}

    def call(i: int, change: Callable[[Session], object]) -> None:
        try:
            outcomes[i] = advance(factory, "query", change)
        except (ValueError, Unrecorded) as exc:
            outcomes[i] = type(exc)

    leader = threading.Thread(target=call, args=(-1, first))
    leader.start()
    assert entered.wait(60)
    queued = [threading.Thread(target=call, args=(i, s)) for i, s in enumerate(steps)]
    for thread in queued:
        thread.start()
    eventually(lambda: _queue_length(factory) == len(steps), "the others to queue", limit=60)
    commits.clear()
    release.set()
    for thread in [leader, *queued]:
        thread.join(60)

    assert outcomes[5] is ValueError and outcomes[6] is Unrecorded
    made = [outcomes[i] for i in range(5)]
    assert len(set(made)) == 5 and all(isinstance(v, int) for v in made)
    with factory() as session:
        changed = set(session.scalars(select(CHANGES.c.id)))
        assert verify_chain(session).ok
    assert changed == {outcomes[-1], *made}  # nothing of the failed ones is left
    assert [actor for actor, _ in _actions(factory)] == ["first"] + ["queued"] * 5
    # The first step's commit, then one commit for all queued steps; each links its own.
    assert len(commits) == 2


def _queue_length(factory: sessionmaker[Session]) -> int:
    from sandbox.audit.advance import _group

    return len(_group(factory)._waiting)
