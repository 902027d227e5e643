"""Build and destroy the per-agreement DuckDB database (THREAT_MODEL boundary 1).

The database holds only the agreement's columns and rows, identifiers already
pseudonymised with a per-agreement key kept under ``keys_dir`` — never inside
the database — and destroyed when the agreement ends (R16; Rizhao Art.31). The file
is encrypted under the agreement's data key from the key store (:mod:`sandbox.keys.store`),
which is destroyed with it, so a copy kept elsewhere opens no more (crypto-shredding). The
dataset versions it is built from are read with their own keys (:mod:`sandbox.catalog.encryption`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from query_guard.compile import build_agreement_database
from query_guard.keys import destroy_key, get_or_create_key, noise_secret
from sandbox.agreements.models import AgreementRecord
from sandbox.agreements.service import as_contract
from sandbox.catalog.encryption import stored_source
from sandbox.catalog.service import catalog_entries, source_versions, suspended_datasets
from sandbox.keys.store import key_store
from sandbox.settings import Settings


def database_path(settings: Settings, agreement_id: str) -> Path:
    return settings.agreements_dir / f"{agreement_id}.duckdb"


def build_database(
    session: Session, settings: Settings, rec: AgreementRecord
) -> tuple[Path, list[str]]:
    """(Re)build the agreement's database from the latest dataset versions.

    Returns the path and the datasets left out because they are suspended.
    The build writes a temporary file and renames it, so a failure leaves the
    previous database (or none) in place.
    """
    agreement = as_contract(rec)
    suspended = suspended_datasets(session) & set(agreement.datasets)
    available = [name for name in agreement.datasets if name not in suspended]
    path = database_path(settings, rec.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = key_store(settings)
    build_agreement_database(
        agreement,
        catalog_entries(session),
        out_path=path,
        key=get_or_create_key(settings.keys_dir, rec.id),
        sources={
            n: stored_source(store, v) for n, v in source_versions(session, available).items()
        },
        suspended=frozenset(suspended),
        noise_secret=noise_secret(settings.keys_dir),
        encryption_key=store.data_key_or_create(rec.id),
    )
    return path, sorted(suspended)


def destroy_database(settings: Settings, agreement_id: str) -> bool:
    """Delete the database, its pseudonym key and its data key: nothing of the agreement's
    data remains, and no copy of the file opens. Returns whether a data key was destroyed."""
    database_path(settings, agreement_id).unlink(missing_ok=True)
    destroy_key(settings.keys_dir, agreement_id)
    return key_store(settings).destroy_data_key(agreement_id)
