"""An application for data (需求申请, Wuxi Art.15) and its review outcome."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class ApplicationStatus(StrEnum):
    draft = "draft"
    under_review = "under_review"
    approved = "approved"
    refused = "refused"
    withdrawn = "withdrawn"


class ApplicationType(StrEnum):
    """The channel asked for (Wuxi Art.15(1)): download, interface, or the data sandbox."""

    dataset = "dataset"
    interface = "interface"
    sandbox = "sandbox"


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(200), default="")
    application_type: Mapped[str] = mapped_column(String(16), default=ApplicationType.sandbox)
    title: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    scenario: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    #: {dataset name: [column, ...]} chosen from the catalogue.
    datasets: Mapped[dict] = mapped_column(JSON, default=dict)
    usage_from: Mapped[date | None] = mapped_column(default=None)
    usage_until: Mapped[date | None] = mapped_column(default=None)
    output_forms: Mapped[list] = mapped_column(JSON, default=list)
    mode: Mapped[str] = mapped_column(String(16), default="aggregate")
    #: Evidence that the applicant meets the published access conditions.
    conditions_evidence: Mapped[str] = mapped_column(Text, default="")
    commitment_signed: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.draft)
    received_on: Mapped[date | None] = mapped_column(default=None)
    review_deadline: Mapped[date | None] = mapped_column(default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Approval: the purpose and scope of use; refusal: reason and legal basis (Wuxi Art.15(3)).
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    approved_scope: Mapped[str] = mapped_column(Text, default="")
    agreement_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
