"""``sandbox backup OUT`` and ``sandbox restore BACKUP --into DIR`` (Rizhao Art.29; Putuo Art.32).

Both act as an operator (``--as``). A backup reads one consistent snapshot of
the running platform and is encrypted to the operator's public key
(``SANDBOX_BACKUP_RECIPIENT`` or ``--recipient``); ``--unencrypted`` writes a
plain one outside production only. A restore needs the private key (``--key``)
and builds a fresh data directory (and, for PostgreSQL, fills an empty database
given by ``--db``) all or nothing. ``sandbox backup-keygen`` makes the key pair,
away from the platform: it touches no platform data, so it is not an audit event.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from sandbox.backup.crypto import generate_key_pair
from sandbox.backup.service import create_backup, restore_backup
from sandbox.cli.common import (
    AS_OPTION,
    acting_user,
    platform_sessions,
    refusals_exit,
    unit_of_work,
)
from sandbox.settings import get_settings


def backup(
    out: Annotated[Path, typer.Argument(help="The archive to write (.tar.gz.age).")],
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            help="An age public key (age1…) or a file holding one, such as backup.pub; "
            "repeatable. Default: SANDBOX_BACKUP_RECIPIENT.",
        ),
    ] = None,
    unencrypted: Annotated[
        bool,
        typer.Option("--unencrypted", help="Write a plain archive (refused in production)."),
    ] = False,
    as_user: str = AS_OPTION,
) -> None:
    """Back up the database (with the record), datasets, keys, exports and releases, encrypted."""
    settings = get_settings()
    with refusals_exit():
        with unit_of_work() as session:
            actor = acting_user(session, as_user)
        with platform_sessions() as factory:
            result = create_backup(
                factory=factory,
                settings=settings,
                actor=actor,
                out=out,
                recipients=[_public_key(r) for r in recipient or []],
                unencrypted=unencrypted,
            )
    typer.echo(json.dumps(asdict(result), default=str, indent=2))


def _public_key(value: str) -> str:
    """A public key given inline, or read from the file ``sandbox backup-keygen`` wrote."""
    path = Path(value)
    if not value.startswith("age1") and path.is_file():
        return path.read_text(encoding="ascii").strip()
    return value


def restore(
    archive: Annotated[Path, typer.Argument(help="A backup archive made by `sandbox backup`.")],
    into: Annotated[Path, typer.Option("--into", help="A new (or empty) data directory.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The private key file (backup.key) of an encrypted backup."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="An empty PostgreSQL database URL; default: DIR/sandbox.db."),
    ] = None,
    as_user: str = AS_OPTION,
) -> None:
    """Restore a backup into a fresh data directory; provision workspaces again afterwards."""
    with refusals_exit():
        result = restore_backup(archive=archive, into=into, actor=as_user, db_url=db, key=key)
    typer.echo(json.dumps(asdict(result), default=str, indent=2))


def backup_keygen(
    out: Annotated[Path, typer.Option("--out", help="A directory for backup.key and backup.pub.")],
) -> None:
    """Make the backup key pair: keep backup.key off the platform, configure the public key."""
    with refusals_exit():
        pair = generate_key_pair(out)
    typer.echo(f"private key (restores only; keep it off the platform): {pair.private_key}")
    typer.echo(f"public key: {pair.public_key}")
    typer.echo(f"SANDBOX_BACKUP_RECIPIENT={pair.recipient}")


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
    app.command("backup-keygen")(backup_keygen)
