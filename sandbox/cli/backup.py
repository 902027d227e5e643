"""``sandbox backup OUT`` and ``sandbox restore BACKUP --into DIR`` (Rizhao Art.29; Putuo Art.32).

Both act as an operator (``--as``). A backup reads one consistent snapshot of
the running platform; a restore builds a fresh data directory (and, for
PostgreSQL, fills an empty database given by ``--db``) all or nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from sandbox.backup.service import create_backup, restore_backup
from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.db.base import make_engine, make_sessionmaker
from sandbox.settings import get_settings


def backup(
    out: Annotated[Path, typer.Argument(help="The archive to write (.tar.gz).")],
    as_user: str = AS_OPTION,
) -> None:
    """Back up the database (with the record), the datasets and the keys into one archive."""
    settings = get_settings()
    with refusals_exit():
        with unit_of_work() as session:
            actor = acting_user(session, as_user)
        engine = make_engine(settings.db_url)
        try:
            result = create_backup(
                factory=make_sessionmaker(engine), settings=settings, actor=actor, out=out
            )
        finally:
            engine.dispose()
    typer.echo(json.dumps(asdict(result), default=str, indent=2))


def restore(
    archive: Annotated[Path, typer.Argument(help="A backup archive made by `sandbox backup`.")],
    into: Annotated[Path, typer.Option("--into", help="A new (or empty) data directory.")],
    db: Annotated[
        str | None,
        typer.Option("--db", help="An empty PostgreSQL database URL; default: DIR/sandbox.db."),
    ] = None,
    as_user: str = AS_OPTION,
) -> None:
    """Restore a backup into a fresh data directory; provision workspaces again afterwards."""
    with refusals_exit():
        result = restore_backup(archive=archive, into=into, actor=as_user, db_url=db)
    typer.echo(json.dumps(asdict(result), default=str, indent=2))


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
