"""Agreements as stored: the database copy is authoritative and versioned."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class AgreementStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    terminated = "terminated"
    expired = "expired"


class AgreementRecord(Base):
    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=AgreementStatus.active)
    version: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[date]
    valid_until: Mapped[date]
    #: The current version's contract, denormalised for queries (researchers, datasets).
    spec: Mapped[dict] = mapped_column(JSON)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    #: Set while suspended for missed security measures (Shanghai Art.26, 36).
    rectification_deadline: Mapped[date | None] = mapped_column(default=None)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgreementVersion(Base):
    """Every version ever in force; an amendment adds one, nothing is overwritten."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    version: Mapped[int]
    spec: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: Dataset versions the agreement was provisioned against ({name: version}).
    dataset_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
