"""``sandbox duties run``: the recurring duties once, for cron or a systemd timer when the
server's own timer is off (``SANDBOX_DUTIES_INTERVAL=0``)."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date
from typing import Annotated, Any

import typer

from sandbox.cli.common import platform_sessions
from sandbox.clock import today
from sandbox.duties.run import run_duties
from sandbox.settings import get_settings

duties_app = typer.Typer(no_args_is_help=True)


@duties_app.command("run")
def run(
    on: Annotated[
        str | None, typer.Option("--today", help="Run as of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Agreement lifecycle, notices, a backup when due and an audit checkpoint; prints the
    report as JSON and exits 1 when a duty failed (the others still ran)."""
    day = date.fromisoformat(on) if on else today()
    with platform_sessions() as factory:
        report = run_duties(get_settings(), factory, today=day)
    done = {name: _plain(result) for name, result in report.done.items()}
    typer.echo(json.dumps({"done": done, "errors": report.errors}, ensure_ascii=False))
    if report.errors:
        raise typer.Exit(1)


def _plain(result: Any) -> Any:
    return asdict(result) if is_dataclass(result) and not isinstance(result, type) else result
