"""``sandbox audit``: verify, checkpoint and export the tamper-evident record.

Exit status: 0 when all is well, 1 when verification finds problems, 2 on a
usage or configuration error (unreachable database, no record, unreadable
checkpoint file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.authority_copy import (
    platform_fingerprint,
    read_checkpoints,
    split_by_key,
    with_problems,
)
from sandbox.audit.checkpoint import (
    SignedCheckpoint,
    fingerprint_hex,
    load_signing_key,
    make_checkpoint,
    public_key_hex,
    read_checkpoint,
    signed,
    stored_checkpoints,
    write_checkpoint,
)
from sandbox.audit.export import export_record, verify_export
from sandbox.audit.models import AuditEvent, AuditOutbox
from sandbox.audit.outbox import waiting
from sandbox.audit.verify import Problem, VerifyResult, verify_chain
from sandbox.db.base import make_engine, make_sessionmaker, read_only, transaction
from sandbox.errors import SandboxError
from sandbox.settings import get_settings

audit_app = typer.Typer(
    help="The tamper-evident record (R7): verify, checkpoint, export.", no_args_is_help=True
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="SQLAlchemy URL; default: the platform's database.")
]
KeysOption = Annotated[
    Path | None,
    typer.Option("--keys-dir", help="Where audit_signing.key lives; default: the platform's."),
]


@audit_app.command()
def verify(
    db: DbOption = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="A checkpoint file the authority kept (repeatable)."),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Verify this exported record offline instead of a database."),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="The authority's copy of the checkpoints (JSON Lines or array, repeatable): "
            "each must be signed by the platform's key, and the record must still hold the "
            "event it names with the same hash.",
        ),
    ] = None,
    key_fingerprint: Annotated[
        str | None,
        typer.Option(
            "--key-fingerprint",
            help="The platform's audit key (sha256:… as /keys shows it) that --checkpoints "
            "must be signed by; default: the key in --keys-dir.",
        ),
    ] = None,
    keys_dir: KeysOption = None,
) -> None:
    """Re-walk the chain; print OK with the count, or every problem with its seq and kind."""
    with _errors_exit_2():
        kept = [read_checkpoint(path) for path in checkpoint or []]
        foreign: list[Problem] = []
        if checkpoints:
            copy = [cp for path in checkpoints for cp in read_checkpoints(path)]
            trusted, foreign = split_by_key(copy, _platform_fingerprint(key_fingerprint, keys_dir))
            kept += trusted
        if export is not None:
            result = verify_export(export, kept)
        else:
            factory = _factory(db)
            with read_only(factory) as session:
                result = verify_chain(session, [*_platform_checkpoints(session, keys_dir), *kept])
            _note_waiting(factory)
    _print_result(with_problems(result, foreign))


def _note_waiting(factory: sessionmaker[Session]) -> None:
    """Say on stderr how many committed events the appender has not linked yet: they are
    not in the record verified, and the next appender (any platform process) links them."""
    if not inspect(factory.kw["bind"]).has_table(AuditOutbox.__tablename__):
        return
    count = waiting(factory)
    if count:
        typer.echo(
            f"note: {count} committed events wait in the outbox to be linked into the chain",
            err=True,
        )


@audit_app.command("checkpoint")
def checkpoint_command(
    db: DbOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the checkpoint here for the authority.")
    ] = None,
    keys_dir: KeysOption = None,
) -> None:
    """Sign the chain's head; print the checkpoint as JSON, or write it to --out."""
    with _errors_exit_2():
        key = load_signing_key(keys_dir or get_settings().keys_dir)
        with transaction(_factory(db)) as session:
            made = signed(make_checkpoint(session, key), public_key_hex(key))
        if out is None:
            typer.echo(json.dumps(made.to_json(), indent=2))
        else:
            write_checkpoint(made, out)
            typer.echo(f"checkpoint at seq {made.seq} written to {out}")


@audit_app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="The JSON Lines file to write.")],
    db: DbOption = None,
    keys_dir: KeysOption = None,
) -> None:
    """Write the record and a fresh signed checkpoint as JSON Lines for the authority."""
    with _errors_exit_2():
        key = load_signing_key(keys_dir or get_settings().keys_dir)
        made = export_record(_factory(db), key, out)
    typer.echo(f"{made.seq} events and their checkpoint written to {out}")


def _factory(db: str | None) -> sessionmaker[Session]:
    """Sessions on the database at ``db``, refused if it holds no audit record."""
    url = db or get_settings().db_url
    engine = make_engine(url)
    if not inspect(engine).has_table(AuditEvent.__tablename__):
        raise SandboxError(
            f"{engine.url.render_as_string(hide_password=True)} has no audit record "
            f"(table {AuditEvent.__tablename__} is missing)",
            rule="audit-database",
        )
    return make_sessionmaker(engine)


def _platform_checkpoints(session: Session, keys_dir: Path | None) -> list[SignedCheckpoint]:
    """The database's own checkpoints, checked against the platform's key if it is here."""
    try:
        key = load_signing_key(keys_dir or get_settings().keys_dir, create=False)
    except SandboxError as exc:
        typer.echo(f"note: stored checkpoints not checked: {exc.message}", err=True)
        return []
    return list(stored_checkpoints(session, public_key_hex(key)))


def _platform_fingerprint(given: str | None, keys_dir: Path | None) -> str:
    """The key the authority's checkpoints must carry: given, or the platform's own."""
    if given is not None:
        return platform_fingerprint(given)
    try:
        key = load_signing_key(keys_dir or get_settings().keys_dir, create=False)
    except SandboxError as exc:
        raise SandboxError(
            f"--checkpoints needs the platform's key to check the file against: {exc.message}; "
            "pass --key-fingerprint sha256:… (as /keys shows it)",
            rule="audit-key",
        ) from exc
    return fingerprint_hex(public_key_hex(key))


def _print_result(result: VerifyResult) -> None:
    if result.ok:
        typer.echo(f"OK: {result.count} events verified")
        return
    for problem in result.problems:
        typer.echo(f"seq {problem.seq}: {problem.kind}: {problem.message}")
    typer.echo(f"FAILED: {len(result.problems)} problems in {result.count} events")
    raise typer.Exit(1)


@contextmanager
def _errors_exit_2() -> Iterator[None]:
    """Report a refusal or an unreachable database on stderr with exit status 2."""
    try:
        yield
    except (SandboxError, SQLAlchemyError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
