"""One commit for a change and its record: the step every state change takes.

``advance(sessions, step, change)`` runs ``change`` in one transaction in which every
:func:`~sandbox.audit.record.record` call writes its event to the outbox, commits the change
with its events, and only then links them into the chain (:mod:`sandbox.audit.outbox`) and
returns ``change``'s value. So a change is never committed without its events nor its events
without it; no value it returns leaves before that commit; and the chain's lock is held for
the append alone, never across the change (Shanghai Art.19-20, 44).

A killed process leaves either nothing (before the commit) or the change with its events in
the outbox (after it), which the next appender links. Each database commit here is preceded
by a fault point named after the step (:mod:`sandbox.audit.faults`), which is how the
fault-injection test kills a worker at every one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.faults import FAULT_POINTS, UnlistedFaultPoint, fault_point
from sandbox.audit.outbox import committed, link_pending
from sandbox.audit.record import OUTBOX_SESSION
from sandbox.db.base import writer_turn
from sandbox.errors import SandboxError

log = logging.getLogger("sandbox.audit.advance")

T = TypeVar("T")


class Unrecorded(SandboxError):
    """A step committed nothing to the record: a change the record would miss (R7)."""

    rule = "audit-unrecorded"
    article = "Shanghai Art.44"
    status_code = 500


def advance(sessions: sessionmaker[Session], step: str, change: Callable[[Session], T]) -> T:
    """Make ``change`` and record it in one commit, link its events, and return its value.

    ``step`` names the fault points ``{step}.commit`` (just before the commit) and
    ``{step}.committed`` (after it, before the link); both must be listed in
    :data:`~sandbox.audit.faults.FAULT_POINTS`. ``change`` must record at least one event;
    whatever it raises rolls everything back and is raised again. A link that fails after
    the commit is logged, not raised: the events are committed and the next appender links
    them.
    """
    for point in (f"{step}.commit", f"{step}.committed"):
        if point not in FAULT_POINTS:
            raise UnlistedFaultPoint(
                f"step {step!r} has no fault point {point!r} in sandbox.audit.faults.FAULT_POINTS"
            )
    with sessions() as session, writer_turn(sessions):
        session.info[OUTBOX_SESSION] = 0
        with session.begin():
            value = change(session)
            if not session.info[OUTBOX_SESSION]:
                raise Unrecorded(
                    f"step {step!r} records no audit event; every change is recorded with it"
                )
            fault_point(f"{step}.commit")
    ticket = committed(sessions)
    fault_point(f"{step}.committed")
    try:
        link_pending(sessions, ticket=ticket)
    except Exception:  # committed all the same; the next appender links it
        log.exception("linking the audit events of step %s failed; they wait in the outbox", step)
    return value
