"""Export requests, their files and the reviewers' decisions, as stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from export_review.workflow import ExportStatus
from sandbox.db.base import Base, utcnow
from sandbox.oversight.models import Handled


class ExportRequest(Base):
    __tablename__ = "export_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    author: Mapped[str] = mapped_column(String(64))
    #: Where the content comes from: ``dp``, a differentially private release; ``files``,
    #: files the researcher handed in.
    kind: Mapped[str] = mapped_column(String(8))
    #: The output form it leaves as (``export_review.forms``; agreement clause ``outputs``).
    form: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(Text)
    #: The queries that produced the output (text as submitted).
    queries: Mapped[list] = mapped_column(JSON, default=list)
    #: For ``dp``: the released JSON object (already noisy and charged).
    dp_result: Mapped[dict | None] = mapped_column(JSON, default=None)
    #: For ``figure``: the chart specification the platform draws (``export_review.chart``).
    chart: Mapped[dict | None] = mapped_column(JSON, default=None)
    #: Results of the automatic checks, per file/rule.
    checks: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.draft)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    bundle_path: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExportFile(Base):
    __tablename__ = "export_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("export_requests.id"))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]


class ExportDecision(Base):
    """One reviewer's decision; two distinct approvals when the agreement asks for two."""

    __tablename__ = "export_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("export_requests.id"))
    reviewer: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRequest(Handled, Base):
    """A file a researcher asks to bring into the agreement's workspaces: checked for type
    and size, reviewed by the provider as an export is, then delivered into the agreement's
    project folder (``export_review.imports``)."""

    __tablename__ = "import_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    author: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text)
    #: The file's plain name, as it appears under ``project/imports/``.
    name: Mapped[str] = mapped_column(String(200))
    #: Where the platform keeps it until the agreement ends (destroyed then, R16).
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    #: The file gate's kind (csv, text, json, notebook, code), or "" when refused.
    kind: Mapped[str] = mapped_column(String(16), default="")
    #: Results of the automatic checks, or the refusal (rule, article, message).
    checks: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Provider reviewers who approved: [{"reviewer": ..., "at": ...}].
    approvals: Mapped[list] = mapped_column(JSON, default=list)
    #: Where it was delivered, as the workspace sees it (``project/imports/<name>``).
    delivered_to: Mapped[str | None] = mapped_column(Text, default=None)
