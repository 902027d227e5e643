"""The tables of the record: the hash-chained events, their signed checkpoints, and the
outbox of events committed with their change and not yet linked into the chain.

Times are stored as fixed-width ISO-8601 UTC text (see
:func:`sandbox.audit.canonical.format_instant`), not as database timestamps, so
that the bytes that were hashed are the bytes that are stored, identically on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base


class AuditEvent(Base):
    """One event of the chain; ``hash`` commits to it and to every event before it.

    ``seq`` is assigned by :func:`sandbox.audit.record.record` as last + 1.
    ``prev_hash`` is unique: a second event claiming the same predecessor would
    fork the chain, and the database refuses it.
    """

    __tablename__ = "audit_events"
    __table_args__ = (CheckConstraint("seq >= 1", name="seq_positive"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(27))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text)
    #: Canonical JSON text (:func:`sandbox.audit.canonical.canonical_json`).
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))

    def as_dict(self) -> dict[str, int | str]:
        """The event exactly as stored: the form the verifier and the export use."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "object": self.object,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class AuditCheckpoint(Base):
    """An Ed25519 signature over ``canonical({seq, hash, at})`` of the chain's head.

    A checkpoint is not itself an event. Its exported copy, kept by the
    authority, is what catches an operator who rewrites the whole chain.
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(27))
    #: Hex of the 64-byte Ed25519 signature.
    signature: Mapped[str] = mapped_column(String(128))
    #: ``sha256:`` + hex SHA-256 of the raw 32-byte public key that signed.
    key_fingerprint: Mapped[str] = mapped_column(String(71))


class AuditOutbox(Base):
    """An event committed in the same transaction as the change it records, waiting for the
    appender to link it into the chain (:mod:`sandbox.audit.outbox`).

    The change's transaction writes only this row, so it never waits for the chain's lock;
    the appender moves committed rows to ``audit_events`` in ``id`` order, a batch at a
    time, and deletes them in the same transaction. Readers of the record (verify, export,
    checkpoints, pages) see ``audit_events`` only: an event is part of the record once linked.
    """

    __tablename__ = "audit_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: When the change was made (:func:`sandbox.audit.canonical.format_instant`); kept as is.
    at: Mapped[str] = mapped_column(String(27))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text)
    #: Canonical JSON text, as it will be hashed.
    details: Mapped[str] = mapped_column(Text)
