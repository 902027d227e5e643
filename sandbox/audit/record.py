"""Appending to the record: one event with the change it records, in the caller's transaction.

The change and the event that records it commit together or not at all, so
the record can never miss a change that happened (Shanghai Art.44: failing to
keep the record is itself a breach). Two ways, one chain:

* inside :func:`sandbox.audit.advance.advance` the event is written to the outbox
  (``audit_outbox``) in the change's own transaction, which takes no lock of the record;
  the appender links it into the chain just after the commit (:func:`link_outbox`);
* elsewhere the event is linked at once, holding the chain's lock until the transaction
  ends; committed outbox events are linked first, so the chain keeps commit order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash, format_instant
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.db.base import utcnow
from sandbox.errors import SandboxError, ValidationFailed

#: Key of the PostgreSQL transaction-level advisory lock that queues appenders
#: (an arbitrary constant, ASCII "AUDITCHN", owned by this module alone).
ADVISORY_LOCK_KEY = 0x4155_4449_5443_484E
#: ``session.info`` key set by :func:`sandbox.audit.advance.advance`: the events this
#: transaction wrote to the outbox (their count), instead of linking them itself.
OUTBOX_SESSION = "sandbox_audit_outbox"
#: Outbox events linked per statement batch.
LINK_BATCH = 500


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent | AuditOutbox:
    """Append one event in ``session``'s transaction; never commits.

    ``actor`` is who acted (a username, or ``system``), ``action`` what was done
    (``agreement.suspend``), ``object`` what it was done to
    (``agreement:AGR-2026-0001``). ``details`` must be canonically encodable
    (see :mod:`sandbox.audit.canonical`) and must not hold protected data values.

    In a transaction of :func:`~sandbox.audit.advance.advance` the event is an outbox row
    (returned as such, without ``seq`` or ``hash``). Otherwise appenders take turns: on
    PostgreSQL an advisory lock held until the transaction ends, on SQLite the write lock
    our engines take at ``BEGIN IMMEDIATE``. The transaction must read at READ COMMITTED
    (the default) so it sees the head appended by whoever held the lock before it; should
    it not, the unique ``seq``/``prev_hash`` constraints refuse the event rather than fork
    the chain.
    """
    for name, value in (("actor", actor), ("action", action), ("object", object)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"audit event {name} must be a non-empty string, got {value!r}")
    details_text = canonical_json(details or {})
    if OUTBOX_SESSION in session.info:
        entry = AuditOutbox(
            at=format_instant(utcnow()),
            actor=actor,
            action=action,
            object=object,
            details=details_text,
        )
        session.add(entry)
        session.flush()
        session.info[OUTBOX_SESSION] += 1
        return entry
    take_turn(session)
    while link_outbox(session, LINK_BATCH) == LINK_BATCH:
        pass
    return append_linked(
        session,
        at=format_instant(utcnow()),
        actor=actor,
        action=action,
        object=object,
        details=details_text,
    )


def append_linked(
    session: Session, *, at: str, actor: str, action: str, object: str, details: str
) -> AuditEvent:
    """Add one event after the chain's head; the caller holds the turn (:func:`take_turn`)
    and ``details`` is canonical JSON text."""
    entry = AuditOutbox(at=at, actor=actor, action=action, object=object, details=details)
    return _chain(session, [entry])[0]


def link_outbox(session: Session, limit: int) -> int:
    """Move up to ``limit`` committed outbox events into the chain, oldest first, and delete
    them from the outbox, in ``session``'s transaction; how many were linked.

    The caller holds the turn (:func:`take_turn`), so no other appender runs meanwhile and,
    at READ COMMITTED, every event committed before this statement is seen: an event is
    linked no later than any event that committed after it (within one batch, in the order
    they were written).
    """
    waiting = session.scalars(select(AuditOutbox).order_by(AuditOutbox.id).limit(limit)).all()
    if not waiting:
        return 0
    _chain(session, waiting)
    session.execute(
        delete(AuditOutbox).where(AuditOutbox.id.in_([e.id for e in waiting])),
        execution_options={"synchronize_session": False},
    )
    for entry in waiting:
        session.expunge(entry)
    return len(waiting)


def _chain(session: Session, entries: list[AuditOutbox]) -> list[AuditEvent]:
    """The events of ``entries`` after the head, each hash over its predecessor's."""
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    events = []
    for entry in entries:
        seq += 1
        event = AuditEvent(
            seq=seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object=entry.object,
            details=entry.details,
            prev_hash=prev_hash,
            hash=event_hash(
                prev_hash=prev_hash,
                seq=seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                object=entry.object,
                details=entry.details,
            ),
        )
        events.append(event)
        prev_hash = event.hash
    session.add_all(events)
    session.flush()
    return events


def take_turn(session: Session) -> None:
    """Hold the record's append lock until ``session``'s transaction ends."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    elif dialect != "sqlite":
        # SQLite needs nothing here: make_engine's BEGIN IMMEDIATE already
        # holds the write lock for the whole transaction.
        raise SandboxError(
            f"the audit record supports SQLite and PostgreSQL, not {dialect}",
            rule="audit-database",
        )
