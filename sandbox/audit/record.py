"""Appending to the record: one event with the change it records, in the caller's transaction.

The change and the event that records it commit together or not at all, so
the record can never miss a change that happened (Shanghai Art.44: failing to
keep the record is itself a breach). Two ways, one chain:

* inside :func:`sandbox.audit.advance.advance` the event is kept with the change's own
  transaction, which takes no lock of the record: on PostgreSQL it is written to the outbox
  (``audit_outbox``) and the appender links it into the chain just after the commit
  (:func:`link_outbox`); on SQLite, whose transaction holds the one write lock anyway, it
  waits in the session and the transaction links it itself before committing
  (:func:`link_waiting`);
* elsewhere the event is linked at once, holding the chain's lock until the transaction
  ends; committed outbox events are linked first, so the chain keeps commit order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.orm import Session

from sandbox.audit.canonical import GENESIS_HASH, canonical_json, event_hash, format_instant
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.db.base import utcnow
from sandbox.db.committed import count_on_commit
from sandbox.errors import SandboxError, ValidationFailed

#: Key of the PostgreSQL transaction-level advisory lock that queues appenders
#: (an arbitrary constant, ASCII "AUDITCHN", owned by this module alone).
ADVISORY_LOCK_KEY = 0x4155_4449_5443_484E
#: ``session.info`` key set by :func:`sandbox.audit.advance.advance`: the events this
#: transaction recorded (a list), instead of linking each at once.
OUTBOX_SESSION = "sandbox_audit_outbox"
#: ``session.info`` key set by :func:`~sandbox.audit.advance.advance` where the transaction
#: links its own events before committing (SQLite): they wait in the list, not the outbox.
LINKS_OWN = "sandbox_audit_links_own"
#: Outbox events linked per statement batch.
LINK_BATCH = 500
#: What an event holds before it is linked: the fields its hash covers but its place.
FIELDS = ("at", "actor", "action", "object", "details")

_EVENTS = AuditEvent.__table__
_OUTBOX = AuditOutbox.__table__
_TO_CHAIN = insert(_EVENTS)
_TO_OUTBOX = insert(_OUTBOX)
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
) -> AuditEvent | None:
    """Append one event in ``session``'s transaction; never commits.

    ``actor`` is who acted (a username, or ``system``), ``action`` what was done
    (``agreement.suspend``), ``object`` what it was done to
    (``agreement:AGR-2026-0001``). ``details`` must be canonically encodable
    (see :mod:`sandbox.audit.canonical`) and must not hold protected data values.

    In a transaction of :func:`~sandbox.audit.advance.advance` the event is linked when
    that transaction commits, and ``None`` is returned. Otherwise it is linked now and
    returned: appenders take turns, on PostgreSQL by an advisory lock held until the
    transaction ends, on SQLite by the write lock our engines take at ``BEGIN IMMEDIATE``.
    The transaction must read at READ COMMITTED (the default) so it sees the head appended
    by whoever held the lock before it; should it not, the unique ``seq``/``prev_hash``
    constraints refuse the event rather than fork the chain.
    """
    for name, value in (("actor", actor), ("action", action), ("object", object)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed(f"audit event {name} must be a non-empty string, got {value!r}")
    entry = {
        "at": format_instant(utcnow()),
        "actor": actor,
        "action": action,
        "object": object,
        "details": canonical_json(details or {}),
    }
    if OUTBOX_SESSION in session.info:
        if not session.info.get(LINKS_OWN):
            session.connection().execute(_TO_OUTBOX, entry)
        session.info[OUTBOX_SESSION].append(entry)
        return None
    link_waiting(session)
    [event] = _linked(session, [entry])
    row = AuditEvent(**event)
    session.add(row)
    session.flush()
    return row


def link_waiting(session: Session) -> None:
    """Take the turn and link every event waiting in the outbox, then (where it links its
    own, :data:`LINKS_OWN`) those ``session``'s transaction recorded: with what commits
    with them, they are then in the chain in commit order."""
    take_turn(session)
    while link_outbox(session, LINK_BATCH) == LINK_BATCH:
        pass
    if session.info.get(LINKS_OWN):
        _chain(session, session.info[OUTBOX_SESSION])


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
    _chain(session, [row._mapping for row in waiting])
    connection.execute(_UNWAIT, {"ids": [row.id for row in waiting]})
    return len(waiting)


def _chain(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``entries`` into the chain after its head (the caller holds the turn)."""
    if entries:
        session.connection().execute(_TO_CHAIN, _linked(session, entries))
        for _ in entries:
            count_on_commit(session, "audit")


def _linked(session: Session, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The column values of ``entries``' events after the head, each hash over its
    predecessor's."""
    head = session.connection().execute(_HEAD).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    events = []
    for entry in entries:
        seq += 1
        fields = {name: entry[name] for name in FIELDS}
        digest = event_hash(prev_hash=prev_hash, seq=seq, **fields)
        events.append({"seq": seq, **fields, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
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
