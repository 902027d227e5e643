"""Parallel writers in real processes never fork the chain nor leave a gap."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.db.base import make_engine, make_sessionmaker
from tests.audit.conftest import append

WRITERS = 4
EVENTS_EACH = 30


def _writer(url: str, name: str, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    start.wait()  # all writers begin together, so their transactions overlap
    append(make_sessionmaker(engine), EVENTS_EACH, actor=name)
    engine.dispose()


def test_parallel_writers_build_one_unbroken_chain(
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
    began = time.perf_counter()
    for process in writers:
        process.join()
    elapsed = time.perf_counter() - began
    assert [process.exitcode for process in writers] == [0] * WRITERS

    total = WRITERS * EVENTS_EACH
    with factory() as session:
        result = verify_chain(session)
        seqs = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        per_writer = dict(
            session.execute(select(AuditEvent.actor, func.count()).group_by(AuditEvent.actor)).all()
        )
    assert result.ok, result.problems
    assert seqs == list(range(1, total + 1))
    assert per_writer == {f"writer-{i}": EVENTS_EACH for i in range(WRITERS)}
    dialect = make_engine(db_url).dialect.name
    print(f"\n{dialect}: {total} events by {WRITERS} processes, {total / elapsed:.0f} events/s")
