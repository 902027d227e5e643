"""Publishing datasets and reading the catalogue (R1, R2, R13, R14).

Publishing stores the data as Parquet under the platform's data directory as a
new dataset version, encrypted under a key of its own (:mod:`sandbox.catalog.encryption`),
with its quality report; agreements and releases name the
version they used. A new entry, a changed entry and a changed open class are
only proposed: they take effect when the authority approves their catalogue
review (:mod:`sandbox.catalog.review`; Shanghai Art.12, Wuxi Art.11-12). Until
then everything here that the public, applicants, agreements and provisioning
read sees only published entries and versions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from query_guard.compile import source_digest
from sandbox.accounts.models import User
from sandbox.accounts.permissions import require_provider_of
from sandbox.audit.record import record
from sandbox.catalog.encryption import content_digest, write_version
from sandbox.catalog.models import CatalogReview, Dataset, DatasetStatus, DatasetVersion, ReviewKind
from sandbox.catalog.quality import quality_report
from sandbox.catalog.reading import ReadOptions, Upload, read_table
from sandbox.catalog.review import ARTICLE, open_review, refuse_while_pending, review_kind
from sandbox.contracts import CatalogEntry, OpenClass
from sandbox.contracts.frequency import due_after
from sandbox.errors import InvalidStateTransition, NotFound, PermissionDenied
from sandbox.keys.store import dataset_version_key, key_store
from sandbox.settings import Settings


def get_dataset(session: Session, name: str) -> Dataset:
    found = session.scalar(select(Dataset).where(Dataset.name == name))
    if found is None:
        raise NotFound(f"dataset {name!r} is not in the catalogue", rule="dataset-unknown")
    return found


def get_public_dataset(session: Session, name: str) -> Dataset:
    """A dataset the public may see; non-open ones are not revealed (Shanghai Art.11), nor
    ones whose entry the authority has not yet approved (Shanghai Art.12)."""
    found = get_dataset(session, name)
    if found.open_class == OpenClass.non_open or not found.published:
        raise NotFound(f"dataset {name!r} is not in the catalogue", rule="dataset-unknown")
    return found


def entry_of(dataset: Dataset) -> CatalogEntry:
    return CatalogEntry.model_validate(dataset.entry)


def catalog_entries(session: Session) -> dict[str, CatalogEntry]:
    """Every published dataset's entry, keyed by name (what applications and agreements are
    validated against): an entry still under catalogue review is not yet in it."""
    return {d.name: entry_of(d) for d in session.scalars(select(Dataset).where(Dataset.published))}


def agreement_catalog(
    session: Session, names: Iterable[str]
) -> tuple[dict[str, CatalogEntry], frozenset[str]]:
    """The published entries of the datasets ``names``, and which of them no agreement may
    use now (as :func:`catalog_entries` and :func:`suspended_datasets` say), in one read of
    those datasets alone: the query service authorises every query with it."""
    rows = session.scalars(select(Dataset).where(Dataset.name.in_(list(names)))).all()
    entries = {d.name: entry_of(d) for d in rows if d.published}
    suspended = frozenset(
        d.name for d in rows if d.status != DatasetStatus.open or d.open_class == OpenClass.non_open
    )
    return entries, suspended


def public_datasets(session: Session) -> list[Dataset]:
    """The public catalogue: only entries the authority approved (Shanghai Art.12), and
    never non-open datasets (Shanghai Art.11)."""
    return list(
        session.scalars(
            select(Dataset)
            .where(Dataset.published)
            .where(Dataset.open_class != OpenClass.non_open)
            .where(Dataset.status != DatasetStatus.withdrawn)
            .order_by(Dataset.name)
        )
    )


def latest_version(session: Session, dataset: Dataset) -> DatasetVersion | None:
    """The newest version in force; a version proposed for review is not one of them."""
    return session.scalar(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id)
        .where(DatasetVersion.published)
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    )


def dataset_versions(session: Session, names: list[str]) -> dict[str, int]:
    """The latest published version of each named dataset (0 when none is published)."""
    out = {}
    for name in names:
        v = latest_version(session, get_dataset(session, name))
        out[name] = v.version if v else 0
    return out


def source_versions(session: Session, names: list[str]) -> dict[str, DatasetVersion]:
    """The latest published version of each dataset, for building agreement databases."""
    out = {}
    for name in names:
        v = latest_version(session, get_dataset(session, name))
        if v is None:
            raise NotFound(f"dataset {name!r} has no published data yet", rule="dataset-no-data")
        out[name] = v
    return out


def dataset_sources(session: Session, names: list[str]) -> dict[str, Path]:
    """The Parquet file of each dataset's latest version."""
    return {name: Path(v.path) for name, v in source_versions(session, names).items()}


def suspended_datasets(session: Session) -> frozenset[str]:
    """Datasets no agreement may use right now: suspended or withdrawn after a rights
    complaint (Shanghai Art.22), or reclassified non-open (Shanghai Art.11)."""
    rows = session.scalars(
        select(Dataset.name).where(
            (Dataset.status != DatasetStatus.open) | (Dataset.open_class == OpenClass.non_open)
        )
    )
    return frozenset(rows)


def is_stale(dataset: Dataset, version: DatasetVersion | None, today: date) -> bool:
    """A dataset is stale when its update frequency says a newer version is overdue."""
    if version is None:
        return True
    period = due_after(dataset.entry["update_frequency"])
    if period is None:
        return False
    published = version.published_at
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return published.date() + period < today


@dataclass(frozen=True)
class Publication:
    """What publishing did: the stored version, and the review it waits for (if any)."""

    dataset: str
    version: DatasetVersion
    review: CatalogReview | None

    @property
    def status(self) -> str:
        return self.review.status if self.review else "published"

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "version": self.version.version,
            "status": self.status,
            "review": self.review.id if self.review else None,
            "quality": self.version.quality,
        }


def publish_dataset(
    *,
    session: Session,
    actor: User,
    entry: CatalogEntry,
    data_path: Path | Upload,
    settings: Settings,
    class_change_basis: str = "",
    read_options: ReadOptions = ReadOptions(),
) -> Publication:
    """Validate, quality-check and store a new version of a dataset.

    Under the published entry unchanged, the version is in force at once (a data
    refresh). A new dataset, a changed entry or a changed open class is filed
    for catalogue review instead, and the version waits, unused, for approval.
    The quality report refuses an identifier declared ``sensitivity: none``
    (R13). The Parquet file, encrypted, is written under a temporary name and renamed
    only once everything else has succeeded, so a refusal leaves no file behind.
    """
    require_provider_of(actor, entry.provider)
    table = read_table(data_path, entry, read_options)
    report = quality_report(table, entry)
    dataset = session.scalar(select(Dataset).where(Dataset.name == entry.name))
    entry_json = entry.model_dump(mode="json", exclude={"base_dir", "source"})
    if dataset is None:
        dataset = Dataset(
            name=entry.name,
            provider=entry.provider,
            open_class=entry.open_class,
            entry=entry_json,
            published=False,
        )
        session.add(dataset)
        session.flush()
    elif dataset.provider != entry.provider:
        raise PermissionDenied(
            f"dataset {entry.name} belongs to {dataset.provider}", rule="provider-owns"
        )
    refuse_while_pending(session, dataset)
    kind = review_kind(dataset, entry_json)
    if kind == ReviewKind.new:
        # Not in the catalogue yet: the provider's own view shows what it proposed.
        dataset.entry = entry_json
        dataset.open_class = entry.open_class
    number = (
        session.scalar(
            select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset.id)
        )
        or 0
    ) + 1
    folder = settings.datasets_dir / entry.name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"v{number}.parquet"
    tmp = folder / f".v{number}.{os.getpid()}.tmp"
    write_version(key_store(settings), table, tmp, dataset_version_key(dataset.id, number))
    try:
        version = DatasetVersion(
            dataset_id=dataset.id,
            version=number,
            path=str(final.resolve()),
            sha256=source_digest(tmp),
            content_sha256=content_digest(table),
            rows=table.num_rows,
            quality=report.to_dict(),
            published=kind is None,
            published_by=actor.username,
            published_at=datetime.now(UTC),
        )
        session.add(version)
        session.flush()
        review = None
        if kind is None:
            record(
                session,
                actor=actor.username,
                action="dataset.publish",
                object=f"dataset:{entry.name}",
                details={"version": number, "rows": table.num_rows, "sha256": version.sha256},
            )
        else:
            review = open_review(
                session,
                dataset=dataset,
                kind=kind,
                proposed_entry=entry_json,
                basis=class_change_basis,
                version=version,
                actor=actor,
            )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return Publication(entry.name, version, review)


def change_open_class(
    *, session: Session, actor: User, name: str, to_class: OpenClass, basis: str
) -> CatalogReview | None:
    """Propose a new open class without new data (R1); None when the class is unchanged.

    The change takes effect when the authority approves its catalogue review.
    """
    dataset = get_dataset(session, name)
    require_provider_of(actor, dataset.provider)
    refuse_while_pending(session, dataset)
    if not dataset.published:
        raise InvalidStateTransition(
            f"dataset {name} is not in the catalogue yet; publish it again with open_class: "
            f"{to_class.value} in its entry instead of reclassifying it",
            rule="catalog-review-unpublished",
            article=ARTICLE,
        )
    if dataset.open_class == to_class:
        return None
    return open_review(
        session,
        dataset=dataset,
        kind=ReviewKind.class_change,
        proposed_entry={**dataset.entry, "open_class": to_class.value},
        basis=basis,
        version=None,
        actor=actor,
    )
