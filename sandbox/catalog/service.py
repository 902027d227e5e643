"""Publishing datasets and reading the catalogue (R1, R2, R13, R14).

Publishing stores the data as Parquet under the platform's data directory as a
new dataset version, with its quality report; agreements and releases name the
version they used.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.accounts.models import User
from sandbox.audit.record import record
from sandbox.catalog.models import ClassChange, Dataset, DatasetStatus, DatasetVersion
from sandbox.catalog.quality import quality_report
from sandbox.catalog.reading import read_table
from sandbox.contracts import CatalogEntry, OpenClass
from sandbox.contracts.frequency import due_after
from sandbox.errors import NotFound, PermissionDenied, PolicyViolation
from sandbox.filings import file_with_authority
from sandbox.permissions import require_provider_of

_STRICTNESS = {OpenClass.unconditional: 0, OpenClass.conditional: 1, OpenClass.non_open: 2}


def get_dataset(session: Session, name: str) -> Dataset:
    found = session.scalar(select(Dataset).where(Dataset.name == name))
    if found is None:
        raise NotFound(f"dataset {name!r} is not in the catalogue", rule="dataset-unknown")
    return found


def get_public_dataset(session: Session, name: str) -> Dataset:
    """A dataset the public may see; non-open ones are not revealed (Shanghai Art.11)."""
    found = get_dataset(session, name)
    if found.open_class == OpenClass.non_open:
        raise NotFound(f"dataset {name!r} is not in the catalogue", rule="dataset-unknown")
    return found


def entry_of(dataset: Dataset) -> CatalogEntry:
    return CatalogEntry.model_validate(dataset.entry)


def catalog_entries(session: Session) -> dict[str, CatalogEntry]:
    """Every dataset's current entry, keyed by name (what agreements are validated against)."""
    return {d.name: entry_of(d) for d in session.scalars(select(Dataset))}


def public_datasets(session: Session) -> list[Dataset]:
    """The public catalogue: non-open datasets never appear in it (Shanghai Art.11)."""
    return list(
        session.scalars(
            select(Dataset)
            .where(Dataset.open_class != OpenClass.non_open)
            .where(Dataset.status != DatasetStatus.withdrawn)
            .order_by(Dataset.name)
        )
    )


def latest_version(session: Session, dataset: Dataset) -> DatasetVersion | None:
    return session.scalar(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id)
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


def dataset_sources(session: Session, names: list[str]) -> dict[str, Path]:
    """The Parquet file of each dataset's latest version, for building agreement databases."""
    out = {}
    for name in names:
        v = latest_version(session, get_dataset(session, name))
        if v is None:
            raise NotFound(f"dataset {name!r} has no published data yet", rule="dataset-no-data")
        out[name] = Path(v.path)
    return out


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_class_change(
    session: Session, dataset: Dataset, new: OpenClass, basis: str, actor: User
) -> None:
    old = OpenClass(dataset.open_class)
    if old == OpenClass.non_open and not basis.strip():
        raise PolicyViolation(
            "reclassify-non-open",
            "Shanghai Art.11; Rizhao Art.17",
            f"{dataset.name} is non-open; it may move to {new.value} only with a recorded "
            "desensitisation (脱敏) or rights-holder consent reference as the basis",
        )
    session.add(
        ClassChange(
            dataset_id=dataset.id,
            from_class=old,
            to_class=new,
            basis=basis,
            changed_by=actor.username,
        )
    )
    record(
        session,
        actor=actor.username,
        action="dataset.reclassify",
        object=f"dataset:{dataset.name}",
        details={"from": old.value, "to": new.value, "basis": basis},
    )
    if _STRICTNESS[new] > _STRICTNESS[old]:
        file_with_authority(
            session,
            kind="class_stricter",
            object=f"dataset:{dataset.name}",
            article="Shanghai Art.11",
            summary=f"{dataset.name}: open class {old.value} → {new.value}",
            actor=actor.username,
        )


def publish_dataset(
    *,
    session: Session,
    actor: User,
    entry: CatalogEntry,
    data_path: Path,
    datasets_dir: Path,
    class_change_basis: str = "",
) -> DatasetVersion:
    """Validate, quality-check and store a new version of a dataset.

    The quality report refuses an identifier declared ``sensitivity: none``
    (R13). The Parquet file is written under a temporary name and renamed only
    once everything else has succeeded, so a refusal leaves no file behind.
    """
    require_provider_of(actor, entry.provider)
    table = read_table(data_path, entry)
    report = quality_report(table, entry)
    dataset = session.scalar(select(Dataset).where(Dataset.name == entry.name))
    entry_json = entry.model_dump(mode="json", exclude={"base_dir", "source"})
    if dataset is None:
        dataset = Dataset(
            name=entry.name, provider=entry.provider, open_class=entry.open_class, entry=entry_json
        )
        session.add(dataset)
        session.flush()
    else:
        if dataset.provider != entry.provider:
            raise PermissionDenied(
                f"dataset {entry.name} belongs to {dataset.provider}", rule="provider-owns"
            )
        if dataset.open_class != entry.open_class:
            _check_class_change(session, dataset, entry.open_class, class_change_basis, actor)
        dataset.open_class = entry.open_class
        dataset.entry = entry_json
    number = (
        session.scalar(
            select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset.id)
        )
        or 0
    ) + 1
    folder = datasets_dir / entry.name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"v{number}.parquet"
    tmp = folder / f".v{number}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    try:
        version = DatasetVersion(
            dataset_id=dataset.id,
            version=number,
            path=str(final.resolve()),
            sha256=_sha256(tmp),
            rows=table.num_rows,
            quality=report.to_dict(),
            published_by=actor.username,
            published_at=datetime.now(UTC),
        )
        session.add(version)
        session.flush()
        record(
            session,
            actor=actor.username,
            action="dataset.publish",
            object=f"dataset:{entry.name}",
            details={"version": number, "rows": table.num_rows, "sha256": version.sha256},
        )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return version


def change_open_class(
    *, session: Session, actor: User, name: str, to_class: OpenClass, basis: str
) -> Dataset:
    """Reclassify without new data (R1)."""
    dataset = get_dataset(session, name)
    require_provider_of(actor, dataset.provider)
    if dataset.open_class == to_class:
        return dataset
    _check_class_change(session, dataset, to_class, basis, actor)
    dataset.open_class = to_class
    dataset.entry = {**dataset.entry, "open_class": to_class.value}
    return dataset
