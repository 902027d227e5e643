"""Back up a running platform, and restore a backup into a fresh data directory.

Both are operator actions and both are audit events: the backup in the live
record once the archive exists, the restore in the restored record, as the
first event after the backed-up head.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role, User
from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementRecord
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.backup import database
from sandbox.backup.archive import (
    ARTICLE,
    Member,
    extract_verified,
    member,
    sha256_of,
    write_archive,
)
from sandbox.catalog.models import Dataset, DatasetVersion
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.errors import Conflict, NotFound, SandboxError, ValidationFailed
from sandbox.permissions import require_role
from sandbox.provisioning.models import Workspace
from sandbox.settings import Settings

PSEUDONYM_SUFFIX = ".pseudonym.key"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sha256: str
    size: int
    audit_seq: int
    files: int
    left_out_keys: list[str]


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    db_url: str
    audit_seq: int
    datasets: int
    keys: int


def create_backup(
    *, factory: sessionmaker[Session], settings: Settings, actor: User, out: Path
) -> BackupResult:
    """Write the archive ``out`` from one consistent snapshot of the running platform."""
    require_role(actor, Role.operator)
    dialect = database.dialect_of(settings.db_url)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as tmp:
        dump = Path(tmp) / database.DUMP_NAMES[dialect]
        with database.snapshot(settings.db_url, dump) as snap:
            head = snap.execute(
                select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
            ).first()
            datasets = _dataset_members(snap)
            keys, left_out = _key_members(snap, settings.keys_dir)
        members = [member(dump, dump.name), *(m for m, _ in datasets), *keys]
        manifest = {
            "created_at": datetime.now(UTC).isoformat(),
            "dialect": dialect,
            "audit_head": {"seq": head.seq, "hash": head.hash} if head else None,
            "datasets": [{"file": m.name, "version_id": vid} for m, vid in datasets],
            "left_out": {
                "pseudonym_keys_of_ended_agreements": left_out,
                "agreement_databases": "all: rebuilt by provisioning",
                "article": "Rizhao Art.31",
            },
        }
        write_archive(out, manifest, members)
    result = BackupResult(
        out, sha256_of(out), out.stat().st_size, head.seq if head else 0, len(members), left_out
    )
    with transaction(factory) as session:
        record(
            session,
            actor=actor.username,
            action="backup.create",
            object=f"backup:{out.name}",
            details={
                "sha256": result.sha256,
                "bytes": result.size,
                "audit_seq": result.audit_seq,
                "files": result.files,
                "left_out_keys": left_out,
                "article": ARTICLE,
            },
        )
    return result


def _dataset_members(snap: Session) -> list[tuple[Member, int]]:
    """Every published version's Parquet file, named by dataset and version."""
    rows = snap.execute(
        select(
            DatasetVersion.id,
            DatasetVersion.version,
            DatasetVersion.path,
            DatasetVersion.sha256,
            Dataset.name,
        )
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .order_by(DatasetVersion.id)
    )
    members = []
    for r in rows:
        path = Path(r.path)
        if not path.is_file():
            raise SandboxError(
                f"dataset {r.name} v{r.version}: its file {path} is missing",
                rule="backup-dataset-missing",
                article=ARTICLE,
            )
        m = member(path, f"datasets/{r.name}/v{r.version}.parquet")
        if m.sha256 != r.sha256:
            raise SandboxError(
                f"dataset {r.name} v{r.version}: its file no longer matches the "
                "SHA-256 recorded at publication",
                rule="backup-dataset-changed",
                article=ARTICLE,
            )
        members.append((m, r.id))
    return members


def _key_members(snap: Session, keys_dir: Path) -> tuple[list[Member], list[str]]:
    """The signing keys and the pseudonym keys of agreements that have not ended (R16)."""
    rows = snap.execute(select(AgreementRecord.id, AgreementRecord.status))
    status = {r.id: r.status for r in rows}
    kept, left_out = [], []
    for path in sorted(keys_dir.iterdir()) if keys_dir.is_dir() else []:
        if not path.is_file():
            continue
        if path.name.endswith(PSEUDONYM_SUFFIX):
            agreement_id = path.name.removesuffix(PSEUDONYM_SUFFIX)
            if status.get(agreement_id) in ENDED or agreement_id not in status:
                left_out.append(agreement_id)
                continue
        kept.append(member(path, f"keys/{path.name}"))
    return kept, left_out


def restore_backup(
    *, archive: Path, into: Path, actor: str, db_url: str | None = None
) -> RestoreResult:
    """Restore ``archive`` into the new data directory ``into`` (and ``db_url``, if PostgreSQL).

    Everything is built in a staging directory beside ``into`` and renamed into
    place last; a failure on the way removes the staging directory and empties
    the target database, so nothing half-restored remains.
    """
    into = into.resolve()
    if into.exists() and any(into.iterdir()):
        raise Conflict(f"{into} is not empty; restore into a new directory", rule="restore-empty")
    into.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=into, database_url=db_url)
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.restore-", dir=into.parent))
    loaded = False
    try:
        manifest = extract_verified(archive, staging / "archive")
        staged_url = db_url or f"sqlite:///{staging / 'sandbox.db'}"
        if database.dialect_of(staged_url) != manifest["dialect"]:
            raise ValidationFailed(
                f"this backup holds a {manifest['dialect']} database; restore it into one",
                rule="restore-dialect",
            )
        dump = staging / "archive" / database.DUMP_NAMES[manifest["dialect"]]
        database.load(dump, staged_url)
        loaded = True
        ensure_schema(staged_url)
        _place_files(staging, settings)
        restore_seq = _relocate_and_record(staged_url, settings, manifest, actor, archive)
        shutil.rmtree(staging / "archive")
        if into.exists():
            into.rmdir()
        os.replace(staging, into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if loaded and db_url:
            database.empty(db_url)
        raise
    return RestoreResult(
        into,
        make_url(settings.db_url).render_as_string(hide_password=True),
        restore_seq,
        len(manifest["datasets"]),
        sum(1 for f in manifest["files"] if f.startswith("keys/")),
    )


def _place_files(staging: Path, settings: Settings) -> None:
    """Move datasets and keys from the extracted archive to their places in the data directory."""
    for part, mode in (("datasets", 0o755), ("keys", 0o700)):
        source = staging / "archive" / part
        target = staging / part
        if source.is_dir():
            source.rename(target)
        else:
            target.mkdir()
        target.chmod(mode)
    for key in (staging / "keys").iterdir():
        key.chmod(0o600)


def _relocate_and_record(
    url: str, settings: Settings, manifest: dict, actor: str, archive: Path
) -> int:
    """Point stored file paths at the new data directory and record the restore."""
    engine = make_engine(url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            user = session.scalar(select(User).where(User.username == actor))
            if user is None:
                raise NotFound(f"no platform user {actor!r} in the backup", rule="user-unknown")
            require_role(user, Role.operator)
            for entry in manifest["datasets"]:
                version = session.get(DatasetVersion, entry["version_id"])
                if version is not None:
                    version.path = str(settings.data_dir / entry["file"])
            for ws in session.scalars(select(Workspace)):
                ws.database_path = str(settings.agreements_dir / f"{ws.agreement_id}.duckdb")
            head = manifest["audit_head"] or {"seq": 0}
            event = record(
                session,
                actor=actor,
                action="backup.restore",
                object=f"backup:{archive.name}",
                details={
                    "sha256": sha256_of(archive),
                    "created_at": manifest["created_at"],
                    "audit_seq": head["seq"],
                    "data_dir": str(settings.data_dir),
                    "article": ARTICLE,
                },
            )
            return event.seq
    finally:
        engine.dispose()
