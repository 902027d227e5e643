"""``sandbox keys``: the key store of data at rest (sandbox/keys/store.py)."""

from __future__ import annotations

import typer

from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.keys.service import rotate_master_key
from sandbox.settings import get_settings

keys_app = typer.Typer(no_args_is_help=True)


@keys_app.command()
def rotate(as_user: str = AS_OPTION) -> None:
    """Wrap every agreement's data key under a new master key and destroy the old master
    keys; the databases stay as they are. Run it while nothing is being provisioned."""
    with refusals_exit(), unit_of_work() as session:
        done = rotate_master_key(
            session=session, settings=get_settings(), actor=acting_user(session, as_user)
        )
        typer.echo(
            f"master key {done.master} ({done.algorithm}) now wraps {done.rewrapped} data "
            f"key(s); destroyed: {', '.join(done.destroyed) or 'none'}"
        )
