"""Objections, rights complaints and usage reports, with their handling states."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow
from sandbox.db.sealed import Sealed


class ObjectionStatus(StrEnum):
    """数据纠错 (Shanghai Art.21): confirmed marks the dataset at once; then answered."""

    received = "received"
    confirmed = "confirmed"
    rejected = "rejected"
    resolved = "resolved"


class ComplaintStatus(StrEnum):
    """权益保护 (Shanghai Art.22): suspend where needed, verify, then withdraw/restore/reopen."""

    received = "received"
    suspended = "suspended"
    withdrawn = "withdrawn"
    restored = "restored"
    dismissed = "dismissed"


class Objection(Base):
    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    submitter: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(Sealed("objections.contact"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ObjectionStatus.received)
    answer: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    complainant: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(Sealed("complaints.contact"))
    #: privacy | trade_secret | other lawful rights
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ComplaintStatus.received)
    answer: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageReport(Base):
    """How a researcher used the data under one agreement (Shanghai Art.25)."""

    __tablename__ = "usage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    researcher: Mapped[str] = mapped_column(String(64))
    period_end: Mapped[date]
    due_on: Mapped[date]
    summary: Mapped[str] = mapped_column(Text, default="")
    #: Products, reports or papers built on the data, each naming its source.
    outputs: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
