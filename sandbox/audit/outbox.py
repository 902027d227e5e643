"""The appender: links committed outbox events into the chain, a batch per short transaction.

A change and its event commit together in the change's own transaction, which writes the
event to ``audit_outbox`` and takes no lock of the record (:func:`sandbox.audit.advance.
advance`). This module moves those events into the hash chain, in order, one appender at a
time: the chain's lock (PostgreSQL advisory lock; SQLite's write lock) is held for the
append alone. It runs

* on PostgreSQL, just after each commit of ``advance()``, so the event is in the chain
  before the answer leaves (on SQLite that commit has linked its events itself);
* when a process starts, for what a process killed between its commit and the link left;
* from the platform's checkpoint timer every second, for what a dead worker left.

Threads of one process wait for each other on a lock of this process rather than on the
database, and whoever holds it links everything committed so far: under load one
transaction links the events of many queries, and a thread whose events a pass that began
after its commit has linked returns without touching the database.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.faults import fault_point
from sandbox.audit.models import AuditOutbox
from sandbox.audit.record import LINK_BATCH, link_outbox, take_turn
from sandbox.db.base import read_only, writer_turn


class _Appender:
    """This process's appender for one database: one linking pass at a time, and how far
    the commits of this process are known to be linked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counter = threading.Lock()
        #: Commits of advance() in this process so far, and how many of them a finished
        #: pass is known to have linked (every commit counted before it began).
        self.committed = 0
        self.linked = 0

    def ticket(self) -> int:
        with self._counter:
            self.committed += 1
            return self.committed


_APPENDERS: dict[str, _Appender] = {}
_APPENDERS_GUARD = threading.Lock()


def _appender(sessions: sessionmaker[Session]) -> _Appender:
    engine: Engine = sessions.kw["bind"]
    key = engine.url.render_as_string(hide_password=True)
    with _APPENDERS_GUARD:
        return _APPENDERS.setdefault(key, _Appender())


def committed(sessions: sessionmaker[Session]) -> int:
    """Count a commit that wrote outbox events, just after it; the ticket to pass to
    :func:`link_pending`."""
    return _appender(sessions).ticket()


def link_pending(
    sessions: sessionmaker[Session], *, ticket: int | None = None, batch: int = LINK_BATCH
) -> int:
    """Link every outbox event committed so far into the chain; how many this call linked.

    With the ``ticket`` of a commit, return as soon as a pass that began after that commit
    has finished: it saw the commit's events and linked them. Without one (a process
    starting, the timer), look first, without a write lock, whether anything waits.
    """
    appender = _appender(sessions)
    if ticket is None and not waiting(sessions):
        return 0
    linked = 0
    with appender.lock:
        if ticket is not None and appender.linked >= ticket:
            return 0  # linked by another thread's pass
        target = appender.committed  # commits counted so far are visible to the pass
        while True:
            with sessions() as session, writer_turn(sessions), session.begin():
                take_turn(session)
                count = link_outbox(session, batch)
                fault_point("audit.link.commit")
            linked += count
            if count < batch:
                break
        appender.linked = max(appender.linked, target)
    return linked


def waiting(sessions: sessionmaker[Session]) -> int:
    """How many committed events wait in the outbox (a read: takes no write lock)."""
    with read_only(sessions) as session:
        return session.scalar(select(func.count()).select_from(AuditOutbox)) or 0
