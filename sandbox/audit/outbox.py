"""The appender: links committed outbox events into the chain, a batch per short transaction.

A change and its event commit together in the change's own transaction, which writes the
event to ``audit_outbox`` and takes no lock of the record (:func:`sandbox.audit.advance.
advance`). This module moves those events into the hash chain, in order, one appender at a
time: the chain's lock (PostgreSQL advisory lock; SQLite's write lock) is held for the
append alone. It runs

* just after each commit of ``advance()``, so the event is normally in the chain before the
  answer leaves;
* when a process starts, for what a process killed between its commit and the link left;
* from the platform's checkpoint timer every second, for what a dead worker left.

Threads of one process wait for each other on a lock of this process rather than on the
database, and whoever holds it links everything committed so far: under load one
transaction links the events of many queries, and the others only find nothing left.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.faults import fault_point
from sandbox.audit.models import AuditOutbox
from sandbox.audit.record import LINK_BATCH, link_outbox, take_turn
from sandbox.db.base import read_only

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(engine: Engine) -> threading.Lock:
    key = engine.url.render_as_string(hide_password=True)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def link_pending(sessions: sessionmaker[Session], *, batch: int = LINK_BATCH) -> int:
    """Link every outbox event committed so far into the chain; how many this call linked."""
    engine = sessions.kw["bind"]
    linked = 0
    with _process_lock(engine):
        while waiting(sessions):
            with sessions() as session, session.begin():
                take_turn(session)
                count = link_outbox(session, batch)
                fault_point("audit.link.commit")
            linked += count
    return linked


def waiting(sessions: sessionmaker[Session]) -> int:
    """How many committed events wait in the outbox (a read: takes no write lock)."""
    with read_only(sessions) as session:
        return session.scalar(select(func.count()).select_from(AuditOutbox)) or 0
