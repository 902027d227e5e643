"""Early-warning alerts (R12; Shanghai Art.37, Rizhao Art.21)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class AlertKind(StrEnum):
    repeated_blocks = "repeated_blocks"
    differencing = "differencing"
    bulk_extraction = "bulk_extraction"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"


class Alert(Base):
    """One anomaly raised for the provider and the operator to look at.

    ``details`` says what was seen (counts, thresholds, query-log ids and audit
    sequence numbers), never query text or data values.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_agreement_kind", "agreement_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    researcher: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.open)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)


class DayRows(Base):
    """Rows returned per agreement and calendar day (the platform's time zone), kept as a
    running total with each query so the bulk-extraction warning reads one row instead of
    summing the day's log again after every query."""

    __tablename__ = "query_day_rows"

    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ISO date in the platform's time zone.
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
