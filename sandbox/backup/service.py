"""Back up a running platform, and restore a backup into a fresh data directory.

Both are operator actions and both are audit events: the backup in the live
record once the archive exists, the restore in the restored record, as the
first event after the backed-up head.

A backup is encrypted to the operator's public key (``SANDBOX_BACKUP_RECIPIENT``
or ``recipients``). A plain one is written only when asked for explicitly
(``unencrypted=True``, for development and tests) and never when
``SANDBOX_ENVIRONMENT=production``: there the archive would hold personal data
and keys readable by whoever holds the backup medium. Restoring a plain archive
stays possible, since refusing it protects nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, load_only, sessionmaker

from export_review.at_rest import bundle_opener, read_export_file
from export_review.bundle import verify_bundle
from export_review.models import ExportFile, ExportRequest
from export_review.signing import load_public_key, signing_key_path
from export_review.workflow import ExportStatus
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementRecord
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.backup import crypto, database
from sandbox.backup.archive import (
    ARTICLE,
    Member,
    extract_verified,
    member,
    sha256_of,
    write_archive,
)
from sandbox.backup.staging import make_staging, staging_folder
from sandbox.catalog.discard import discarded_version_ids
from sandbox.catalog.models import Dataset, DatasetVersion
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import bind_field_keys, field_keys
from sandbox.errors import Conflict, NotFound, PolicyViolation, SandboxError, ValidationFailed
from sandbox.keys.store import KeyStore, key_store
from sandbox.provisioning.models import Workspace
from sandbox.settings import Settings

PSEUDONYM_SUFFIX = ".pseudonym.key"
#: Where export_review keeps request files and release bundles (``export_review/requests.py``).
EXPORTS, RELEASES = "exports", "releases"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sha256: str
    size: int
    audit_seq: int
    files: int
    left_out_keys: list[str]
    #: Export requests whose files stayed out: their agreement has ended (R16).
    left_out_exports: list[int] = field(default_factory=list)
    #: The public keys the archive is encrypted to; empty for an explicitly plain backup.
    encrypted_to: list[str] = field(default_factory=list)
    #: What it holds, counted from its manifest: shown to the operator, who cannot open it.
    datasets: int = 0
    exports: int = 0
    releases: int = 0


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    db_url: str
    audit_seq: int
    datasets: int
    keys: int
    export_files: int
    releases: int
    encrypted: bool


def create_backup(
    *,
    factory: sessionmaker[Session],
    settings: Settings,
    actor: User,
    out: Path,
    recipients: Sequence[str] = (),
    unencrypted: bool = False,
) -> BackupResult:
    """An operator's backup: see :func:`write_backup`."""
    require_role(actor, Role.operator)
    return write_backup(
        factory=factory,
        settings=settings,
        actor_name=actor.username,
        out=out,
        recipients=recipients,
        unencrypted=unencrypted,
    )


def write_backup(
    *,
    factory: sessionmaker[Session],
    settings: Settings,
    actor_name: str,
    out: Path,
    recipients: Sequence[str] = (),
    unencrypted: bool = False,
) -> BackupResult:
    """Write the archive ``out`` from one consistent snapshot of the running platform.

    It is encrypted to ``recipients`` (``age1…`` public keys; default: the
    ``backup_recipient`` setting), or plain when ``unencrypted`` is asked for
    outside production. Who may ask is the caller's check: an operator
    (:func:`create_backup`) or the platform's own schedule (``actor_name``
    ``platform``, sandbox/backup/stored.py).
    """
    keys = _encryption(settings, recipients, unencrypted)
    dialect = database.dialect_of(settings.db_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Staging inside the data directory: the dump and the plain tar sit beside the
    # live data they copy, never at the destination.
    with staging_folder(settings.data_dir, "backup") as tmp:
        dump = Path(tmp) / database.DUMP_NAMES[dialect]
        with database.snapshot(settings.db_url, dump) as snap:
            head = snap.execute(
                select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
            ).first()
            rows = snap.execute(select(AgreementRecord.id, AgreementRecord.status))
            status = {r.id: r.status for r in rows}
            datasets = _dataset_members(snap)
            key_files, left_out = _key_members(settings.keys_dir, status)
            store = key_store(settings)
            exports, left_out_exports = _export_members(snap, status, store)
            releases = _release_members(snap, settings.keys_dir, store)
        members = [
            member(dump, dump.name),
            *(m for m, _ in datasets),
            *key_files,
            *(m for m, _ in exports),
            *(m for ms, _ in releases for m in ms),
        ]
        manifest = {
            "created_at": datetime.now(UTC).isoformat(),
            "dialect": dialect,
            "audit_head": {"seq": head.seq, "hash": head.hash} if head else None,
            "datasets": [{"file": m.name, "version_id": vid} for m, vid in datasets],
            "exports": [{"file": m.name, "file_id": fid} for m, fid in exports],
            "releases": [{"request_id": rid, "files": len(ms)} for ms, rid in releases],
            "left_out": {
                "pseudonym_keys_of_ended_agreements": left_out,
                "export_requests_of_ended_agreements": left_out_exports,
                "agreement_databases": "all: rebuilt by provisioning",
                "article": "Rizhao Art.31",
            },
        }
        write_archive(out, manifest, members, recipients=keys, staging=Path(tmp))
    encrypted_to = [str(k) for k in keys]
    result = BackupResult(
        out,
        sha256_of(out),
        out.stat().st_size,
        head.seq if head else 0,
        len(members),
        left_out,
        left_out_exports,
        encrypted_to,
        len(datasets),
        len(exports),
        len(releases),
    )
    with transaction(factory) as session:
        record(
            session,
            actor=actor_name,
            action="backup.create",
            object=f"backup:{out.name}",
            details={
                "sha256": result.sha256,
                "bytes": result.size,
                "audit_seq": result.audit_seq,
                "files": result.files,
                "left_out_keys": left_out,
                "left_out_exports": left_out_exports,
                "encrypted_to": encrypted_to,
                "article": ARTICLE,
            },
        )
    return result


def _encryption(
    settings: Settings, recipients: Sequence[str], unencrypted: bool
) -> list[crypto.Recipient]:
    """The public keys to encrypt to; refuses a plain backup unless asked for outside production."""
    keys = crypto.parse_recipients(",".join(recipients) or settings.backup_recipient)
    if unencrypted and keys:
        raise ValidationFailed(
            "a backup is either encrypted (to --recipient or SANDBOX_BACKUP_RECIPIENT) or "
            "explicitly unencrypted, not both",
            rule="backup-encryption",
            article=crypto.ARTICLE,
        )
    if unencrypted and settings.environment == "production":
        raise PolicyViolation(
            "backup-unencrypted",
            crypto.ARTICLE,
            "backups hold personal data and keys; in production they are always encrypted "
            "(set SANDBOX_BACKUP_RECIPIENT to the operator's age public key)",
        )
    if not keys and not unencrypted:
        raise ValidationFailed(
            "no public key to encrypt the backup to: set SANDBOX_BACKUP_RECIPIENT (or pass "
            "--recipient) to the public key `sandbox backup-keygen` printed",
            rule="backup-recipient-missing",
            article=crypto.ARTICLE,
        )
    return keys


def _dataset_members(snap: Session) -> list[tuple[Member, int]]:
    """Every version's Parquet file, named by dataset and version, except those of a
    rejected or withdrawn proposal: their files were deleted (sandbox.catalog.discard)."""
    rows = snap.execute(
        select(
            DatasetVersion.id,
            DatasetVersion.version,
            DatasetVersion.path,
            DatasetVersion.sha256,
            Dataset.name,
        )
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(DatasetVersion.id.not_in(discarded_version_ids()))
        .order_by(DatasetVersion.id)
    )
    return [
        (
            _recorded(
                Path(r.path),
                f"datasets/{r.name}/v{r.version}.parquet",
                r.sha256,
                what=f"dataset {r.name} v{r.version}",
                missing="backup-dataset-missing",
                changed="backup-dataset-changed",
            ),
            r.id,
        )
        for r in rows
    ]


def _recorded(
    path: Path, name: str, sha256: str, *, what: str, missing: str, changed: str
) -> Member:
    """The member for a file whose SHA-256 the database recorded when it was stored.

    Refuses (rule ``missing`` / ``changed``) a file that is gone or differs:
    a backup copies what the snapshot describes, or nothing.
    """
    m = member(_existing(path, f"{what}: its file", missing), name)
    if m.sha256 != sha256:
        raise SandboxError(
            f"{what}: its file no longer matches the SHA-256 recorded when it was stored",
            rule=changed,
            article=ARTICLE,
        )
    return m


def _export_members(
    snap: Session, status: dict[str, str], store: KeyStore
) -> tuple[list[tuple[Member, int]], list[int]]:
    """The files of export requests whose agreement has not ended, with their file ids.

    Unreleased outputs (drafts, requests in review, returned, rejected or withdrawn
    ones) are workspace files that never passed review: when the agreement ends
    they are data that must not be kept (R16; Rizhao Art.31), so a backup leaves
    them out and lists the requests. Each file is copied as it is kept, sealed under
    its agreement's key (export_review/at_rest.py), and must still open to the SHA-256
    stored when it was submitted.
    """
    rows = snap.execute(
        select(ExportFile, ExportRequest.agreement_id)
        .join(ExportRequest, ExportRequest.id == ExportFile.request_id)
        .order_by(ExportFile.id)
    )
    members, left_out = [], set()
    for f, agreement_id in rows:
        if status.get(agreement_id) in ENDED:
            left_out.add(f.request_id)
            continue
        what = f"export request {f.request_id} ({f.name})"
        path = _existing(Path(f.path), f"{what}: its file", "backup-export-missing")
        try:
            content = read_export_file(store, agreement_id, f)
        except SandboxError:
            content = b""  # altered, or sealed for another place: refused just below
        if hashlib.sha256(content).hexdigest() != f.sha256:
            raise SandboxError(
                f"export request {f.request_id} ({f.name}): its file no longer matches the "
                "SHA-256 recorded when it was stored",
                rule="backup-export-changed",
                article=ARTICLE,
            )
        members.append((member(path, f"{EXPORTS}/{f.request_id}/{f.name}"), f.id))
    return members, sorted(left_out)


def _release_members(
    snap: Session, keys_dir: Path, store: KeyStore
) -> list[tuple[list[Member], int]]:
    """Every released bundle's files as they are kept (sealed, export_review/at_rest.py),
    each bundle checked against its signature first, its files opened with its key.

    Bundles are kept whether or not their agreement has ended: what they hold
    passed the disclosure checks, DP and the provider's review and has left the
    platform, so it is no longer the agreement's data (R16 covers workspace data
    and keys), and the platform keeps it as the provenance record every product
    cites (R7, R8: Shanghai Art.19-20, 25). Revoked bundles are already deleted.
    """
    rows = list(
        snap.execute(
            select(ExportRequest.id, ExportRequest.bundle_path)
            .where(ExportRequest.status == ExportStatus.released)
            .order_by(ExportRequest.id)
        )
    )
    if not rows:
        return []
    key_path = signing_key_path(keys_dir)
    public_key = load_public_key(
        _existing(key_path, "the release signing key", "backup-release-key")
    )
    bundles = []
    for r in rows:
        bundle = _existing(
            Path(r.bundle_path or ""),
            f"export request {r.id}: its release bundle",
            "backup-release-missing",
        )
        problems = verify_bundle(bundle, public_key, bundle_opener(store, bundle.name))
        if problems:
            raise SandboxError(
                f"export request {r.id}: its release bundle no longer verifies ({problems[0]})",
                rule="backup-release-changed",
                article=ARTICLE,
            )
        files = sorted(p for p in bundle.rglob("*") if p.is_file())
        name = f"{RELEASES}/{bundle.name}"
        bundles.append(
            ([member(p, f"{name}/{p.relative_to(bundle).as_posix()}") for p in files], r.id)
        )
    return bundles


def _existing(path: Path, what: str, rule: str) -> Path:
    """``path``, or a refusal: the snapshot names a file that is not there (run the backup again
    if something was being revoked meanwhile)."""
    if not path.exists():
        raise SandboxError(f"{what} {path} is missing", rule=rule, article=ARTICLE)
    return path


def _key_members(keys_dir: Path, status: dict[str, str]) -> tuple[list[Member], list[str]]:
    """The signing keys and the pseudonym keys of agreements that have not ended (R16).

    A pseudonym key of an agreement the snapshot does not hold is left out too.
    """
    kept, left_out = [], []
    for path in sorted(keys_dir.iterdir()) if keys_dir.is_dir() else []:
        if not path.is_file():
            continue
        if path.name.endswith(PSEUDONYM_SUFFIX):
            agreement_id = path.name.removesuffix(PSEUDONYM_SUFFIX)
            if agreement_id not in status or status[agreement_id] in ENDED:
                left_out.append(agreement_id)
                continue
        kept.append(member(path, f"keys/{path.name}"))
    return kept, left_out


def restore_backup(
    *,
    archive: Path,
    into: Path,
    actor: str,
    db_url: str | None = None,
    key: Path | None = None,
) -> RestoreResult:
    """Restore ``archive`` into the new data directory ``into`` (and ``db_url``, if PostgreSQL).

    An encrypted archive needs ``key``, the private key file from ``sandbox
    backup-keygen``. Everything is built in a staging directory beside ``into``
    and renamed into place last; a failure on the way (a wrong key, an altered
    or truncated archive included) removes the staging directory and empties
    the target database, so nothing half-restored remains.
    """
    if not archive.is_file():
        raise NotFound(f"no backup archive at {archive}", rule="backup-missing")
    encrypted = crypto.is_encrypted(archive)
    identities = crypto.load_identities(key) if key is not None else []
    if encrypted and not identities:
        raise ValidationFailed(
            f"{archive.name} is encrypted; restore it with the backup private key file (--key)",
            rule="backup-key-missing",
            article=crypto.ARTICLE,
        )
    into = into.resolve()
    if into.exists() and any(into.iterdir()):
        raise Conflict(f"{into} is not empty; restore into a new directory", rule="restore-empty")
    into.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=into, database_url=db_url)
    staging = make_staging(into.parent, f"{into.name}.restore")
    loaded = False
    try:
        manifest = extract_verified(archive, staging / "archive", identities)
        staged_url = db_url or f"sqlite:///{staging / 'sandbox.db'}"
        if database.dialect_of(staged_url) != manifest["dialect"]:
            raise ValidationFailed(
                f"this backup holds a {manifest['dialect']} database; restore it into one",
                rule="restore-dialect",
            )
        dump = staging / "archive" / database.DUMP_NAMES[manifest["dialect"]]
        database.load(dump, staged_url)
        loaded = True
        ensure_schema(staged_url, field_keys(settings))
        _place_files(staging, settings)
        restore_seq = _relocate_and_record(
            staged_url, settings, manifest, actor, archive, encrypted
        )
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
        len(manifest.get("exports", [])),  # absent from archives made before exports were
        len(manifest.get("releases", [])),
        encrypted,
    )


def _place_files(staging: Path, settings: Settings) -> None:
    """Move the archive's folders to their places in the data directory."""
    for part, mode in (("datasets", 0o755), ("keys", 0o700), (EXPORTS, 0o700), (RELEASES, 0o755)):
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
    url: str, settings: Settings, manifest: dict, actor: str, archive: Path, encrypted: bool
) -> int:
    """Point stored file paths at the new data directory and record the restore.

    Every export file and bundle path moves, also those left out of the backup:
    a restored platform must never reach into the data directory it came from.
    """
    engine = bind_field_keys(make_engine(url), field_keys(settings))
    try:
        with transaction(make_sessionmaker(engine)) as session:
            # Only what a role check reads: names are sealed, and opening them needs the
            # key store, which a restore neither holds nor needs.
            who = load_only(User.username, User.role, User.active)
            user = session.scalar(select(User).options(who).where(User.username == actor))
            if user is None:
                raise NotFound(f"no platform user {actor!r} in the backup", rule="user-unknown")
            require_role(user, Role.operator)
            for entry in manifest["datasets"]:
                version = session.get(DatasetVersion, entry["version_id"])
                if version is not None:
                    version.path = str(settings.data_dir / entry["file"])
            for ws in session.scalars(select(Workspace)):
                ws.database_path = str(settings.agreements_dir / f"{ws.agreement_id}.duckdb")
            exports = settings.data_dir / EXPORTS
            for f in session.scalars(select(ExportFile)):
                f.path = str(exports / str(f.request_id) / f.name)
            for req in session.scalars(
                select(ExportRequest).where(ExportRequest.bundle_path.is_not(None))
            ):
                req.bundle_path = str(settings.data_dir / RELEASES / Path(req.bundle_path).name)
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
                    "encrypted": encrypted,
                    "article": ARTICLE,
                },
            )
            return event.seq
    finally:
        engine.dispose()
