"""A dataset version's file at rest: Parquet encrypted under a data key of its own from the
key store (:mod:`query_guard.at_rest`), so a stolen data directory, or a backup without the
key store, reveals no row of it (Rizhao Art.29).

A file written before encryption is plain Parquet, and its magic says so: it is read as
before until ``sandbox keys encrypt-datasets`` rewrites it. An encrypted file whose key is
gone does not open (rule ``at-rest-key-missing``): a version whose proposal was rejected or
withdrawn, or whose dataset was withdrawn after a rights complaint, has its key destroyed by
the recurring duties (:func:`shred_retired_keys`), so no copy of it opens, a backup's neither.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from query_guard.at_rest import is_encrypted_parquet, write_encrypted_parquet
from query_guard.compile import StoredSource
from sandbox.audit.record import record
from sandbox.catalog.discard import discarded_version_ids
from sandbox.catalog.models import Dataset, DatasetStatus, DatasetVersion
from sandbox.db.base import transaction
from sandbox.keys.store import KeyRef, KeyStore, dataset_version_key, key_store
from sandbox.settings import Settings

#: Why a version's data ends, as the record says it.
WITHDRAWN = ("dataset withdrawn after a rights complaint", "Shanghai Art.22; Rizhao Art.31")
DISCARDED = ("catalogue proposal rejected or withdrawn", "Shanghai Art.12; Rizhao Art.31")


class _Digest:
    """A write-only file that hashes what is written to it."""

    def __init__(self) -> None:
        self.sha256, self.size, self.closed = hashlib.sha256(), 0, False

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def content_digest(table: pa.Table) -> str:
    """SHA-256 of ``table`` as plain Parquet, as versions were stored before encryption;
    computed as it is written, so the plain file exists nowhere."""
    sink = _Digest()
    pq.write_table(table, pa.PythonFile(sink, mode="w"))
    return sink.sha256.hexdigest()


def version_key_ref(version: DatasetVersion) -> KeyRef:
    return dataset_version_key(version.dataset_id, version.version)


def version_key(store: KeyStore, version: DatasetVersion) -> bytes | None:
    """The key the version's file opens with; None for a plain file written before (or a
    file gone, which its reader refuses)."""
    path = Path(version.path)
    if not path.is_file() or not is_encrypted_parquet(path):
        return None
    return store.data_key(version_key_ref(version))


def stored_source(store: KeyStore, version: DatasetVersion) -> StoredSource:
    """The version as an agreement's build reads it."""
    return StoredSource(Path(version.path), version_key(store, version), version.content_sha256)


def write_version(store: KeyStore, table: pa.Table, path: Path, key: KeyRef) -> None:
    """Write a version's rows to ``path``, encrypted under ``key`` (made on first use)."""
    write_encrypted_parquet(table, path, store.data_key_or_create(key))


def _retired(session: Session) -> list[tuple[Dataset, DatasetVersion, tuple[str, str]]]:
    """Every version whose data the platform no longer keeps, with why."""
    discarded = set(session.scalars(discarded_version_ids()))
    rows = session.execute(
        select(Dataset, DatasetVersion)
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
        .where((Dataset.status == DatasetStatus.withdrawn) | DatasetVersion.id.in_(discarded))
        .order_by(DatasetVersion.id)
    )
    return [(d, v, DISCARDED if v.id in discarded else WITHDRAWN) for d, v in rows]


def shred_retired_keys(settings: Settings, factory: sessionmaker[Session]) -> list[str]:
    """Destroy the key of every retired version still holding one, each with ``key.destroy``
    in the record; the versions, as ``dataset vN``. The record commits first, so a key is
    never gone unrecorded; a run cut short after it is finished by the next run."""
    store = key_store(settings)
    with transaction(factory) as session:
        retired = [r for r in _retired(session) if store.has_data_key(version_key_ref(r[1]))]
        for dataset, version, (reason, article) in retired:
            record(
                session,
                actor="platform",
                action="key.destroy",
                object=f"dataset:{dataset.name}",
                details={
                    "key": "data key at rest",
                    "version": version.version,
                    "reason": reason,
                    "article": article,
                },
            )
        done = [(version_key_ref(v), f"{d.name} v{v.version}") for d, v, _ in retired]
    for ref, _ in done:
        store.destroy_data_key(ref)
    return [name for _, name in done]
