"""``sandbox notify run``: the notification job (run it daily, or more often: it is idempotent)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Annotated

import typer

from sandbox.cli.common import platform_sessions, refusals_exit
from sandbox.clock import today
from sandbox.notifications.service import run as run_job
from sandbox.settings import get_settings

notify_app = typer.Typer(help="Notices of deadlines and decisions.", no_args_is_help=True)


@notify_app.command("run")
def run(
    on: Annotated[
        str | None, typer.Option("--today", help="Run as of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Make today's notices and email those waiting; prints what was done as JSON."""
    day = date.fromisoformat(on) if on else today()
    with refusals_exit(), platform_sessions() as factory:
        result = run_job(factory, get_settings(), day)
    typer.echo(json.dumps(asdict(result)))
