"""A workspace: what was provisioned for one agreement, and where it stands."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class WorkspaceStatus(StrEnum):
    provisioned = "provisioned"
    suspended = "suspended"
    destroyed = "destroyed"


class Workspace(Base):
    __tablename__ = "workspaces"

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=WorkspaceStatus.provisioned)
    #: The per-agreement DuckDB file the query worker opens read-only.
    database_path: Mapped[str] = mapped_column(Text)
    #: Dataset versions the database was built from ({name: version}).
    dataset_versions: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Datasets left out because they were suspended when it was built.
    left_out: Mapped[list] = mapped_column(JSON, default=list)
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
