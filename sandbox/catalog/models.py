"""Datasets in the catalogue, their versions, class changes and catalogue reviews (R1, R2, R14)."""

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
    #: In the public catalogue: false until the authority approves the first catalogue
    #: review (Shanghai Art.12: 经审查后 ... 予以公布), and while no review has been approved.
    published: Mapped[bool] = mapped_column(default=False)
    #: The catalogue entry as last published (the YAML contract as JSON); for a dataset
    #: not yet published, the entry as last proposed.
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
    #: Of the file as stored (encrypted since 0009): what backups check it against.
    sha256: Mapped[str] = mapped_column(String(64))
    #: Of the content as plain Parquet: names the version, and keys aggregate mode's noise
    #: (``query_guard.compile.StoredSource``), whatever encryption the file is under.
    content_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    quality: Mapped[dict] = mapped_column(JSON)
    #: In force: agreements and provisioning use only published versions. A version
    #: proposed with a new or changed entry stays unpublished until its catalogue review
    #: is approved (and for ever when it is rejected or withdrawn: then its file is deleted,
    #: see :mod:`sandbox.catalog.discard`).
    published: Mapped[bool] = mapped_column(default=False)
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


class ReviewKind(StrEnum):
    """What a catalogue review decides (Shanghai Art.12; Wuxi Art.11-12)."""

    #: A dataset's first entry in the catalogue (or a new attempt after a rejection or
    #: withdrawal).
    new = "new"
    #: A change of a published entry: columns, conditions, summary, ...
    entry_change = "entry_change"
    #: A change of a published entry's open class (other fields may change with it).
    class_change = "class_change"


class ReviewStatus(StrEnum):
    under_review = "under_review"
    published = "published"
    rejected = "rejected"
    #: Taken back by the provider before the authority decided (the reason is in the record).
    withdrawn = "withdrawn"


class CatalogReview(Base):
    """A proposed catalogue entry waiting for, or decided by, the competent authority.

    The authority's legality review (合法性审查, Wuxi Art.12) is recorded with the
    decision either way; the dataset and the proposed version change only on approval.
    """

    __tablename__ = "catalog_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.under_review)
    #: The whole entry as it would be published (the YAML contract as JSON).
    proposed_entry: Mapped[dict] = mapped_column(JSON)
    from_class: Mapped[str | None] = mapped_column(String(16))
    to_class: Mapped[str] = mapped_column(String(16))
    #: Desensitisation or consent reference for leaving non-open (Shanghai Art.11).
    basis: Mapped[str] = mapped_column(Text, default="")
    #: The data version published with the entry; none for a class change without new data.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    legality_review: Mapped[str] = mapped_column(Text, default="")
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]
