"""``sandbox keys``: the key store of data at rest (sandbox/keys/store.py)."""

from __future__ import annotations

import typer

from export_review.sealing import seal_plain_outputs
from sandbox.cli.common import (
    AS_OPTION,
    acting_user,
    platform_sessions,
    refusals_exit,
    unit_of_work,
)
from sandbox.keys.service import encrypt_plain_versions, rotate_master_key
from sandbox.settings import get_settings

keys_app = typer.Typer(no_args_is_help=True)


@keys_app.command()
def rotate(as_user: str = AS_OPTION) -> None:
    """Wrap every data key under a new master key and destroy the old master keys; the
    encrypted files stay as they are. Run it while nothing is being provisioned."""
    with refusals_exit(), unit_of_work() as session:
        done = rotate_master_key(
            session=session, settings=get_settings(), actor=acting_user(session, as_user)
        )
        typer.echo(
            f"master key {done.master} ({done.algorithm}) now wraps {done.rewrapped} data "
            f"key(s); destroyed: {', '.join(done.destroyed) or 'none'}"
        )


@keys_app.command("encrypt-datasets")
def encrypt_datasets(as_user: str = AS_OPTION) -> None:
    """Encrypt every dataset version stored in plain Parquet before encryption at rest, each
    under a key of its own; running it again finishes an interrupted run."""
    with refusals_exit():
        with unit_of_work() as session:
            actor = acting_user(session, as_user)
        with platform_sessions() as factory:
            done = encrypt_plain_versions(factory=factory, settings=get_settings(), actor=actor)
        typer.echo(f"encrypted {len(done)} dataset version(s): {', '.join(done) or 'none'}")


@keys_app.command("encrypt-exports")
def encrypt_exports(as_user: str = AS_OPTION) -> None:
    """Seal every export file and released bundle's file kept in clear before encryption at
    rest (export_review/sealing.py); running it again finishes an interrupted run."""
    with refusals_exit(), unit_of_work() as session:
        files, released = seal_plain_outputs(
            session=session, settings=get_settings(), actor=acting_user(session, as_user)
        )
        typer.echo(f"sealed {files} export file(s) and {released} release bundle file(s)")
