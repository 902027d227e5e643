"""What an operator does to the key store, with its audit event.

Rotation is the operator's one move on keys: it never shows a key, and the record says
which master key replaced which, and how many data keys it now wraps (R7). Encrypting the
dataset versions written before encryption is the upgrade's one move on data.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from query_guard.at_rest import is_encrypted_parquet
from query_guard.compile import source_digest
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.audit.record import record
from sandbox.catalog.discard import discarded_version_ids
from sandbox.catalog.encryption import version_key_ref, write_version
from sandbox.catalog.models import Dataset, DatasetVersion
from sandbox.db.base import transaction
from sandbox.keys.store import Rotation, key_store
from sandbox.settings import Settings


def rotate_master_key(*, session: Session, settings: Settings, actor: User) -> Rotation:
    """Wrap every data key under a new master key, destroy the old ones, record ``key.rotate``."""
    require_role(actor, Role.operator)
    done = key_store(settings).rotate()
    record(
        session,
        actor=actor.username,
        action="key.rotate",
        object=f"master-key:{done.master}",
        details={
            "algorithm": done.algorithm,
            "destroyed": done.destroyed,
            "rewrapped": done.rewrapped,
        },
    )
    return done


def encrypt_plain_versions(
    *, factory: sessionmaker[Session], settings: Settings, actor: User
) -> list[str]:
    """Rewrite every kept dataset version still in plain Parquet encrypted under a key of
    its own, with ``dataset.encrypt`` in the record; which ones, as ``dataset vN``.

    Each encrypted copy is written beside its file first, the new digests are committed
    with the record, and only then are the copies renamed over the plain files: a run cut
    short leaves every version readable, and running it again finishes it. The content's
    digest, which keys aggregate mode's noise, does not change.
    """
    require_role(actor, Role.operator)
    store = key_store(settings)
    written: list[tuple[Path, Path]] = []
    try:
        with transaction(factory) as session:
            rows = session.execute(
                select(Dataset.name, DatasetVersion)
                .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
                .where(DatasetVersion.id.not_in(discarded_version_ids()))
                .order_by(DatasetVersion.id)
            )
            done = []
            for name, version in rows:
                path = Path(version.path)
                if not path.is_file() or is_encrypted_parquet(path):
                    continue
                aside = path.with_name(f".{path.name}.encrypting")
                write_version(store, pq.read_table(path), aside, version_key_ref(version))
                written.append((aside, path))
                plain, version.sha256 = version.sha256, source_digest(aside)
                record(
                    session,
                    actor=actor.username,
                    action="dataset.encrypt",
                    object=f"dataset:{name}",
                    details={"version": version.version, "from": plain, "sha256": version.sha256},
                )
                done.append(f"{name} v{version.version}")
        for aside, path in written:
            os.replace(aside, path)
    finally:
        for aside, _ in written:
            with contextlib.suppress(FileNotFoundError):
                aside.unlink()
    return done
