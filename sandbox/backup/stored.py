"""Backups the platform keeps in ``backup_dir``: made on the operator's page or API, listed there.

This is the shell-free path to :func:`sandbox.backup.service.create_backup`. It is
always encrypted to ``backup_recipient``: the web and the API never offer a plain
backup, so without a configured key the operator is refused
(``backup-recipient-missing``) and nothing is written. The command line keeps
``--unencrypted`` for development.

Making a backup is the operator's; the operator and the authority may list them.
Neither reads data that way (R16): a listing shows only what the file system says
(name, size, time) and whether the file starts with the age header. The
archive's manifest (audit head, counts, checksums) is inside the encryption, to
a private key the platform does not hold, so nothing of it is shown for stored
backups; the counts appear once, right after a backup, from the backup itself.
The authority may list because keeping backups is a platform duty it
supervises (Rizhao Art.29); the file names and sizes hold no data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.backup import crypto
from sandbox.backup.service import BackupResult, create_backup, write_backup
from sandbox.settings import Settings

PREFIX = "sandbox-backup-"
SUFFIX = ".tar.gz.age"


@dataclass(frozen=True)
class StoredBackup:
    """One file in ``backup_dir``, as the file system describes it."""

    name: str
    size: int
    modified: datetime
    #: The file starts with the age header; checked without decrypting anything.
    encrypted: bool


def backup_now(*, factory: sessionmaker[Session], settings: Settings, actor: User) -> BackupResult:
    """Write a new encrypted backup into ``backup_dir``, named by the UTC time to the microsecond.

    The microseconds keep two backups made in the same second apart: the archive
    is renamed into place, so a shared name would silently replace the earlier one.
    """
    return create_backup(factory=factory, settings=settings, actor=actor, out=_new_path(settings))


def backup_if_due(
    *, factory: sessionmaker[Session], settings: Settings, now: datetime
) -> BackupResult | None:
    """The platform's own backup (Putuo Art.32 灾难备份; Rizhao Art.29), made by the recurring
    duties once ``backup_every_hours`` have passed since the newest one in ``backup_dir``.

    Only when a recipient is configured: an unattended backup is never plain, and
    without a key there is nothing to do (the operator's page says why).
    """
    every = settings.backup_every_hours
    if not settings.backup_recipient or every <= 0:
        return None
    folder = settings.backups_dir
    stored = list(folder.glob(f"{PREFIX}*{SUFFIX}")) if folder.is_dir() else []
    newest = max((p.stat().st_mtime for p in stored), default=None)
    if newest is not None and now.timestamp() - newest < every * 3600:
        return None
    return write_backup(
        factory=factory, settings=settings, actor_name="platform", out=_new_path(settings)
    )


def _new_path(settings: Settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return settings.backups_dir / f"{PREFIX}{stamp}{SUFFIX}"


def list_backups(settings: Settings, actor: User) -> list[StoredBackup]:
    """The backups in ``backup_dir``, newest first; partial files being written are skipped."""
    require_role(actor, Role.operator, Role.authority)
    folder = settings.backups_dir
    found = []
    for path in folder.iterdir() if folder.is_dir() else []:
        if path.name.startswith(".") or not path.is_file():
            continue
        stat = path.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(StoredBackup(path.name, stat.st_size, modified, crypto.is_encrypted(path)))
    return sorted(found, key=lambda b: (b.modified, b.name), reverse=True)
