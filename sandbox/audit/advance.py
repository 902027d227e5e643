"""One commit for a change and its record: the step every state change takes.

``advance(sessions, step, change)`` runs ``change`` in one transaction in which every
:func:`~sandbox.audit.record.record` call writes its event to the outbox, commits the change
with its events, links them into the chain and only then returns ``change``'s value. So a
change is never committed without its events nor its events without it, and no value it
returns leaves before that commit or before its events are in the chain (Shanghai Art.19-20,
44).

Where the link happens depends on how the database takes turns to write:

* PostgreSQL makes transactions side by side, and the chain's lock (an advisory lock) is
  held for the append alone, never across a change: the events are linked just after the
  commit, by the appender (:mod:`sandbox.audit.outbox`), many commits' events in one pass;
* SQLite writes one transaction at a time, so the write lock every change's transaction
  holds until its commit *is* the chain's lock: the transaction links its events itself
  (with any a killed process left in the outbox), just before its commit, and a batch of
  changes costs one commit instead of two. The lock is not held longer for it, and never
  across a query: the guard and the engine have run before the step begins.

A killed process leaves either nothing (before the commit) or the change with its events in
the chain or, on PostgreSQL, in the outbox, which the next appender links. Each database
commit here is preceded by a fault point named after the step (:mod:`sandbox.audit.faults`),
and a commit that links by ``audit.link.commit`` too, which is how the fault-injection test
kills a worker at every one of them.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.faults import FAULT_POINTS, UnlistedFaultPoint, fault_point
from sandbox.audit.outbox import committed, link_pending
from sandbox.audit.record import LINKS_OWN, OUTBOX_SESSION, link_waiting
from sandbox.db.base import writer_turn
from sandbox.errors import Kind, SandboxError

log = logging.getLogger("sandbox.audit.advance")

T = TypeVar("T")


class Unrecorded(SandboxError):
    """A step committed nothing to the record: a change the record would miss (R7)."""

    rule = "audit-unrecorded"
    article = "Shanghai Art.44"
    kind = Kind.internal


#: Changes one transaction takes at most.
BATCH = 64


@dataclass(eq=False)
class _Pending:
    """One caller's change, waiting for a transaction; then its value or its error."""

    step: str
    change: Callable[[Session], Any]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    #: Set when the change is done, or when this caller is to lead the next batch.
    turn: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    value: Any = None
    error: BaseException | None = None


class _Group:
    """The changes of one engine's callers, committed a batch per transaction.

    Under load, callers arrive while a transaction is being made: rather than each waiting
    for the database's write lock and paying its own commit (a disk flush each), they
    queue, and one of them (the leader) makes a transaction of all that wait, each change
    in its own savepoint so that one that fails is undone alone (a change alone needs
    none: it fails with its transaction). When it has linked and committed, the leader
    hands the lead to the first caller still waiting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._leading = False

    def run(self, sessions: sessionmaker[Session], pending: _Pending) -> None:
        with self._lock:
            self._waiting.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.turn.wait()
            if pending.done:
                return
        with self._lock:
            batch = self._waiting[:BATCH]
            del self._waiting[:BATCH]
        try:
            _commit(sessions, batch)
        finally:
            for other in batch:
                other.done = True
                other.turn.set()
            with self._lock:
                if self._waiting:
                    self._waiting[0].turn.set()  # it leads the next batch
                else:
                    self._leading = False


_GROUPS: weakref.WeakKeyDictionary[Engine, _Group] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()
_INSIDE = threading.local()


def _group(sessions: sessionmaker[Session]) -> _Group:
    with _GROUPS_LOCK:
        return _GROUPS.setdefault(sessions.kw["bind"], _Group())


def _one_writer(sessions: sessionmaker[Session]) -> bool:
    """Whether the database writes one transaction at a time (SQLite)."""
    return sessions.kw["bind"].dialect.name == "sqlite"


def _run(session: Session, pending: _Pending) -> None:
    """Run one change in ``session``'s transaction; refuse it if it recorded nothing."""
    before = len(session.info[OUTBOX_SESSION])
    pending.value = pending.context.run(pending.change, session)
    if len(session.info[OUTBOX_SESSION]) == before:
        raise Unrecorded(
            f"step {pending.step!r} records no audit event; every change is recorded with it"
        )


def _make(session: Session, pending: _Pending) -> None:
    """Run one change of a batch in a savepoint of its transaction; keep its value or
    error."""
    recorded = session.info[OUTBOX_SESSION]
    before = len(recorded)
    try:
        with session.begin_nested():
            _run(session, pending)
    except Exception as exc:  # undone alone: the savepoint rolled back, and its events go
        pending.error = exc
        del recorded[before:]


def _commit(sessions: sessionmaker[Session], batch: list[_Pending]) -> None:
    """Make every change of ``batch`` in one transaction, commit it, link its events
    (SQLite: in that transaction, just before the commit)."""
    links_inside = _one_writer(sessions)
    outer, _INSIDE.active = getattr(_INSIDE, "active", False), True
    try:
        with sessions() as session, writer_turn(sessions):
            session.info[OUTBOX_SESSION] = []
            session.info[LINKS_OWN] = links_inside
            with session.begin():
                if len(batch) == 1:
                    _run(session, batch[0])  # what it raises rolls the transaction back
                else:
                    for pending in batch:
                        _make(session, pending)
                made = [pending for pending in batch if pending.error is None]
                for pending in made:
                    fault_point(f"{pending.step}.commit")
                if made and links_inside:
                    link_waiting(session)
                    fault_point("audit.link.commit")
    except BaseException as exc:  # the transaction failed: nothing of the batch is made
        for pending in batch:
            if pending.error is None:
                pending.error = exc
        if not isinstance(exc, Exception):
            raise
        return
    finally:
        _INSIDE.active = outer
    made = [pending for pending in batch if pending.error is None]
    for pending in made:
        fault_point(f"{pending.step}.committed")
    if not made or links_inside:
        return
    ticket = committed(sessions)
    try:
        link_pending(sessions, ticket=ticket)
    except Exception:  # committed all the same; the next appender links it
        log.exception(
            "linking the audit events of %d steps failed; they wait in the outbox", len(made)
        )


def advance(sessions: sessionmaker[Session], step: str, change: Callable[[Session], T]) -> T:
    """Make ``change`` and record it in one commit, link its events, and return its value.

    ``step`` names the fault points ``{step}.commit`` (just before the commit) and
    ``{step}.committed`` (after it; on PostgreSQL before the link); both must be listed in
    :data:`~sandbox.audit.faults.FAULT_POINTS`. ``change`` must record at least one event;
    whatever it raises undoes it and is raised again. On SQLite, which writes one
    transaction at a time, changes of several callers may share one transaction
    (:class:`_Group`), each in its own savepoint; ``change`` runs in the caller's context
    variables, possibly in another thread. A change that itself advances (a step inside a
    step) gets a transaction of its own, as every change does on PostgreSQL. There, a link
    that fails after the commit is logged, not raised: the events are committed and the
    next appender links them.
    """
    for point in (f"{step}.commit", f"{step}.committed"):
        if point not in FAULT_POINTS:
            raise UnlistedFaultPoint(
                f"step {step!r} has no fault point {point!r} in sandbox.audit.faults.FAULT_POINTS"
            )
    pending = _Pending(step, change)
    if _one_writer(sessions) and not getattr(_INSIDE, "active", False):
        _group(sessions).run(sessions, pending)
    else:  # PostgreSQL makes transactions side by side: grouping only queued them
        _commit(sessions, [pending])
    if pending.error is not None:
        raise pending.error
    return pending.value
