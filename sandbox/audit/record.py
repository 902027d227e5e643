"""Appending to the record, inside the caller's transaction.

The change and the event that records it commit together or not at all, so
the record can never miss a change that happened (Shanghai Art.44: failing to
keep the record is itself a breach).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash, format_instant
from sandbox.audit.models import AuditEvent
from sandbox.db.base import utcnow
from sandbox.errors import SandboxError, ValidationFailed

#: Key of the PostgreSQL transaction-level advisory lock that queues appenders
#: (an arbitrary constant, ASCII "AUDITCHN", owned by this module alone).
ADVISORY_LOCK_KEY = 0x4155_4449_5443_484E


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain in ``session``'s transaction; never commits.

    ``actor`` is who acted (a username, or ``system``), ``action`` what was done
    (``agreement.suspend``), ``object`` what it was done to
    (``agreement:AGR-2026-0001``). ``details`` must be canonically encodable
    (see :mod:`sandbox.audit.canonical`) and must not hold protected data values.

    Appenders take turns: on PostgreSQL an advisory lock held until the
    transaction ends, on SQLite the write lock our engines take at ``BEGIN
    IMMEDIATE``. The transaction must read at READ COMMITTED (the default) so it
    sees the head appended by whoever held the lock before it; should it not,
    the unique ``seq``/``prev_hash`` constraints refuse the event rather than
    fork the chain.
    """
    for name, value in (("actor", actor), ("action", action), ("object", object)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"audit event {name} must be a non-empty string, got {value!r}")
    details_text = canonical_json(details or {})
    take_turn(session)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    at = format_instant(utcnow())
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        object=object,
        details=details_text,
        prev_hash=prev_hash,
        hash=event_hash(
            prev_hash=prev_hash,
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            object=object,
            details=details_text,
        ),
    )
    session.add(event)
    session.flush()
    return event


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
