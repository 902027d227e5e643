"""``sandbox statistics``: the authority's figures (Shanghai Art.41; Wuxi Art.26) as JSON or
CSV, from the same service and permission check as ``/api/statistics``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sandbox.cli.common import AS_OPTION, acting_user, platform_sessions, refusals_exit
from sandbox.clock import today
from sandbox.db.base import read_only
from sandbox.settings import get_settings
from sandbox.statistics.service import as_csv, compute
from sandbox.workcalendar import calendar_from_settings


def statistics(
    as_csv_text: Annotated[bool, typer.Option("--csv", help="figure,key,value rows.")] = False,
    as_user: str = AS_OPTION,
) -> None:
    """Datasets, catalogue reviews, applications (with review turnaround), agreements,
    exports, violations and quality tasks, as of today (authority or operator)."""
    settings = get_settings()
    with refusals_exit(), platform_sessions() as factory, read_only(factory) as session:
        report = compute(
            session=session,
            actor=acting_user(session, as_user),
            calendar=calendar_from_settings(settings),
            today=today(),
            timezone=settings.timezone,
        )
    if as_csv_text:
        typer.echo(as_csv(report), nl=False)
    else:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
