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

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.orm import Session

from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash, format_instant
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.db.base import column_values, insert_row, utcnow
from sandbox.db.committed import count_on_commit
from sandbox.errors import SandboxError, ValidationFailed

#: Key of the PostgreSQL transaction-level advisory lock that queues appenders
#: (an arbitrary constant, ASCII "AUDITCHN", owned by this module alone).
ADVISORY_LOCK_KEY = 0x4155_4449_5443_484E
#: ``session.info`` key set by :func:`sandbox.audit.advance.advance`: the events this
#: transaction wrote to the outbox (their count), instead of linking them itself.
OUTBOX_SESSION = "sandbox_audit_outbox"
#: Outbox events linked per statement batch.
LINK_BATCH = 500

_EVENTS = AuditEvent.__table__
_OUTBOX = AuditOutbox.__table__
_TO_CHAIN = insert(_EVENTS)
_OLDEST_WAITING = select(_OUTBOX).order_by(_OUTBOX.c.id).limit(bindparam("limit"))
_UNWAIT = delete(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
_HEAD = select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)


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
        insert_row(session, entry)
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
    [event] = _linked(session, [entry])
    session.add(event)
    session.flush()
    return event


def link_outbox(session: Session, limit: int) -> int:
    """Move up to ``limit`` committed outbox events into the chain, oldest first, and delete
    them from the outbox, in ``session``'s transaction; how many were linked.

    The caller holds the turn (:func:`take_turn`), so no other appender runs meanwhile and,
    at READ COMMITTED, every event committed before this statement is seen: an event is
    linked no later than any event that committed after it (within one batch, in the order
    they were written). Core statements: this runs after every commit that records.
    """
    connection = session.connection()
    waiting = connection.execute(_OLDEST_WAITING, {"limit": limit}).all()
    if not waiting:
        return 0
    linked = _linked(session, waiting)
    connection.execute(_TO_CHAIN, [column_values(event) for event in linked])
    connection.execute(_UNWAIT, {"ids": [entry.id for entry in waiting]})
    for _ in linked:
        count_on_commit(session, "audit")
    return len(waiting)


def _linked(session: Session, entries: Sequence[Any]) -> list[AuditEvent]:
    """The events of ``entries`` (outbox rows) after the head, each hash over its
    predecessor's; not added to ``session``."""
    head = session.connection().execute(_HEAD).first()
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
