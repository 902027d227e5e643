"""``sandbox notify run``: the notification job (run it daily, or more often: it is idempotent)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Annotated

import typer

from sandbox.cli.common import refusals_exit
from sandbox.clock import today
from sandbox.db.base import make_engine, make_sessionmaker
from sandbox.db.schema import ensure_schema
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
    settings = get_settings()
    day = date.fromisoformat(on) if on else today()
    ensure_schema(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with refusals_exit():
            result = run_job(make_sessionmaker(engine), settings, day)
    finally:
        engine.dispose()
    typer.echo(json.dumps(asdict(result)))
