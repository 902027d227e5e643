"""Violations, tip-offs, quality tasks and data demands, with their handling states."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sandbox.catalog.models import Dataset
from sandbox.db.base import Base, utcnow
from sandbox.db.sealed import Sealed


class Handled:
    """What every case shares: where it stands, the answer given, and when it last moved."""

    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ViolationStatus(StrEnum):
    """Shanghai Art.28: recorded, then a measure; Art.36: rectify or service ends."""

    recorded = "recorded"
    closed = "closed"  # recorded only, no measure on access
    rectifying = "rectifying"  # access limited or closed until rectified
    rectified = "rectified"  # rectified in time, access restored
    terminated = "terminated"  # service ended


class Violation(Handled, Base):
    __tablename__ = "violations"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    researcher: Mapped[str] = mapped_column(String(64))
    #: The researcher's organisation when recorded: what the public register names.
    organisation: Mapped[str] = mapped_column(String(200))
    #: Which item of Shanghai Art.28 (see ``violations.KINDS``).
    kind: Mapped[str] = mapped_column(String(32))
    #: alert | tipoff | review (found in a review of the record, an export or a report)
    source: Mapped[str] = mapped_column(String(16))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), unique=True)
    tipoff_id: Mapped[int | None] = mapped_column(ForeignKey("tipoffs.id"), unique=True)
    evidence: Mapped[str] = mapped_column(Text)
    #: Where the evidence is: audit sequence numbers, query-log ids, documents.
    references: Mapped[list] = mapped_column(JSON, default=list)
    recorded_by: Mapped[str] = mapped_column(String(64))
    #: limit | close | terminate | record_only; empty until decided.
    #: The reason for the latest measure is the case's ``answer``.
    measure: Mapped[str] = mapped_column(String(16), default="")
    measured_by: Mapped[str] = mapped_column(String(64), default="")
    measured_on: Mapped[date | None] = mapped_column(default=None)
    rectification_deadline: Mapped[date | None] = mapped_column(default=None)
    published_on: Mapped[date | None] = mapped_column(default=None)
    published_by: Mapped[str] = mapped_column(String(64), default="")


class TipOffStatus(StrEnum):
    received = "received"
    handling = "handling"
    answered = "answered"
    dismissed = "dismissed"
    converted = "converted"  # recorded as a violation


class TipOff(Handled, Base):
    """A report of misuse (举报, Shanghai Art.27) or of a security problem (Wuxi Art.17)."""

    __tablename__ = "tipoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: misuse | security_problem
    kind: Mapped[str] = mapped_column(String(24))
    reporter: Mapped[str] = mapped_column(String(200), default="")
    contact: Mapped[str] = mapped_column(Sealed("tipoffs.contact"), default="")
    description: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), default=None)
    agreement_id: Mapped[str | None] = mapped_column(ForeignKey("agreements.id"), default=None)
    #: The provider it is routed to; empty when it concerns no dataset (authority only).
    provider: Mapped[str] = mapped_column(String(200), default="")
    #: SHA-256 of the receipt code the reporter reads the answer with.
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    handled_by: Mapped[str] = mapped_column(String(64), default="")
    dataset: Mapped[Dataset | None] = relationship()


class QualityTaskStatus(StrEnum):
    open = "open"
    answered = "answered"  # the provider responded; rectification under way
    closed = "closed"


class QualityTask(Handled, Base):
    """整改任务 (Wuxi Art.13): raised by the authority, answered within 10 working days."""

    __tablename__ = "quality_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    provider: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    objection_id: Mapped[int | None] = mapped_column(ForeignKey("objections.id"), unique=True)
    #: Closing needs a dataset version newer than ``version_at_raise``.
    require_new_version: Mapped[bool] = mapped_column(default=False)
    version_at_raise: Mapped[int] = mapped_column(default=0)
    closed_version: Mapped[int | None] = mapped_column(default=None)
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_on: Mapped[date]
    due_on: Mapped[date]
    dataset: Mapped[Dataset] = relationship()


class DemandStatus(StrEnum):
    received = "received"
    answered = "answered"
    declined = "declined"
    fulfilled = "fulfilled"  # a dataset answering it is published


class Demand(Handled, Base):
    """A request to open data not in the catalogue (Shanghai Art.10; Wuxi Art.9)."""

    __tablename__ = "demands"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(Sealed("demands.contact"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    domain: Mapped[str] = mapped_column(String(64), default="")
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), default=None)
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    handled_by: Mapped[str] = mapped_column(String(64), default="")
    dataset: Mapped[Dataset | None] = relationship()
