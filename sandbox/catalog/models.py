"""Datasets in the catalogue, their published versions and class changes (R1, R2, R14)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class DatasetStatus(StrEnum):
    """Whether a dataset is being opened right now.

    ``suspended`` is 中止开放 after a rights complaint (Shanghai Art.22): every
    agreement loses the dataset at once until it is restored or withdrawn.
    """

    open = "open"
    suspended = "suspended"
    withdrawn = "withdrawn"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    provider: Mapped[str] = mapped_column(String(200))
    open_class: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=DatasetStatus.open)
    under_objection: Mapped[bool] = mapped_column(default=False)
    #: The catalogue entry as last published (the YAML contract as JSON).
    entry: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetVersion(Base):
    """One publication of a dataset's data; agreements and releases name the version used."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int]
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    quality: Mapped[dict] = mapped_column(JSON)
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClassChange(Base):
    """A change of open class, with the basis the rules demand (R1)."""

    __tablename__ = "class_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    from_class: Mapped[str] = mapped_column(String(16))
    to_class: Mapped[str] = mapped_column(String(16))
    #: Desensitisation or consent reference when leaving non-open (Shanghai Art.11).
    basis: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
