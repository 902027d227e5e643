"""Filings with the authority (备案): what the regulations say must be notified.

- a move of a dataset to a stricter open class (R1; Shanghai Art.11)
- each signed data-use agreement (R5; Rizhao Art.20)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from sandbox.audit.record import record
from sandbox.db.base import Base, utcnow


class Filing(Base):
    __tablename__ = "filings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    object: Mapped[str] = mapped_column(String(200))
    article: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(64))
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)


def file_with_authority(
    session: Session, *, kind: str, object: str, article: str, summary: str, actor: str
) -> Filing:
    """Record a filing in the caller's transaction, with its audit event."""
    filing = Filing(kind=kind, object=object, article=article, summary=summary, filed_by=actor)
    session.add(filing)
    session.flush()
    record(
        session,
        actor=actor,
        action="filing.create",
        object=object,
        details={"filing": filing.id, "kind": kind, "article": article},
    )
    return filing


def list_filings(session: Session) -> list[Filing]:
    return list(session.scalars(select(Filing).order_by(Filing.id.desc())))
