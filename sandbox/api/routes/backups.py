"""The operator's backups without a shell: list them, and make one now (R13; Rizhao Art.29).

Always encrypted to ``SANDBOX_BACKUP_RECIPIENT`` and written to ``SANDBOX_BACKUP_DIR``;
the rules, and who may list, are in :mod:`sandbox.backup.stored`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sandbox.backup.service import BackupResult
from sandbox.backup.stored import StoredBackup, backup_now, list_backups
from sandbox.http.deps import DbDep, OperatorDep, OversightDep, SettingsDep

router = APIRouter(prefix="/api/operator", tags=["operator"])


def stored_view(backup: StoredBackup) -> dict[str, Any]:
    return {
        "name": backup.name,
        "bytes": backup.size,
        "modified": backup.modified.isoformat(),
        "encrypted": backup.encrypted,
    }


def result_view(result: BackupResult) -> dict[str, Any]:
    """What the operator learns of a new backup: its size, checksum and counts, never its
    location on the server beyond the file name."""
    return {
        "name": result.path.name,
        "bytes": result.size,
        "sha256": result.sha256,
        "audit_seq": result.audit_seq,
        "files": result.files,
        "datasets": result.datasets,
        "exports": result.exports,
        "releases": result.releases,
        "left_out_keys": result.left_out_keys,
        "left_out_exports": result.left_out_exports,
        "encrypted_to": result.encrypted_to,
    }


@router.get("/backups")
def index(settings: SettingsDep, actor: OversightDep) -> list[dict[str, Any]]:
    return [stored_view(b) for b in list_backups(settings, actor)]


@router.post("/backups", status_code=201)
def create(db: DbDep, settings: SettingsDep, actor: OperatorDep) -> dict[str, Any]:
    return result_view(backup_now(factory=db.factory, settings=settings, actor=actor))
