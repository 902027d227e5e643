"""``sandbox agreement``: import, export, list and move agreements through their lifecycle."""

from __future__ import annotations

from pathlib import Path

import typer

from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import (
    change_status,
    export_agreement,
    import_agreement,
    list_agreements,
)
from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.clock import today
from sandbox.contracts import load_agreement
from sandbox.duties.run import agreement_lifecycle
from sandbox.provisioning.runtime import WorkspaceStop, enforce_agreement_status
from sandbox.settings import get_settings

agreement_app = typer.Typer(no_args_is_help=True)


@agreement_app.command("import")
def import_(file: Path, as_user: str = AS_OPTION) -> None:
    """Register a signed agreement (or confirm the file equals the stored copy)."""
    with refusals_exit():
        agreement = load_agreement(file)
        with unit_of_work() as session:
            rec = import_agreement(
                session=session, actor=acting_user(session, as_user), agreement=agreement
            )
            typer.echo(f"{rec.id} version {rec.version} {rec.status}")


@agreement_app.command("export")
def export(agreement_id: str, as_user: str = AS_OPTION, out: Path | None = None) -> None:
    """Print (or write) the current version as contract YAML."""
    with refusals_exit(), unit_of_work() as session:
        text = export_agreement(session, acting_user(session, as_user), agreement_id)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@agreement_app.command("list")
def list_(as_user: str = AS_OPTION) -> None:
    with refusals_exit(), unit_of_work() as session:
        for rec in list_agreements(session, acting_user(session, as_user)):
            typer.echo(
                f"{rec.id}\t{rec.status}\tv{rec.version}\t{rec.valid_from}..{rec.valid_until}"
            )


def _move(action: AgreementAction):  # type: ignore[no-untyped-def]
    def command(
        agreement_id: str,
        reason: str = typer.Option(..., help="Why (recorded in the audit record)."),
        days: int | None = typer.Option(None, help="Rectification period (suspend only)."),
        as_user: str = AS_OPTION,
    ) -> None:
        with refusals_exit():
            with unit_of_work() as session:
                rec = change_status(
                    session=session,
                    actor=acting_user(session, as_user),
                    agreement_id=agreement_id,
                    action=action,
                    reason=reason,
                    rectification_days=days,
                    today=today(),
                )
                typer.echo(f"{rec.id} {rec.status}")
            _stop_workspaces([agreement_id], actor=as_user)

    command.__doc__ = f"{action.value.capitalize()} an agreement."
    return command


for _action in (AgreementAction.suspend, AgreementAction.reinstate, AgreementAction.terminate):
    agreement_app.command(_action.value)(_move(_action))


@agreement_app.command("lifecycle")
def lifecycle() -> None:
    """The daily job: expire by date, end agreements not rectified in time, destroy what ended."""
    with refusals_exit():
        done = agreement_lifecycle(get_settings(), unit_of_work, today=today(), actor="platform")
    for agreement_id, status in done.changed:
        typer.echo(f"{agreement_id} {status}")
    _echo_stops(done.stops)
    for agreement_id in done.destroyed:
        typer.echo(f"{agreement_id} workspace data and key destroyed")


def _stop_workspaces(agreement_ids: list[str], *, actor: str) -> None:
    """After the status change committed: stop the agreements' running workspaces."""
    _echo_stops(enforce_agreement_status(get_settings(), unit_of_work, agreement_ids, actor=actor))


def _echo_stops(stops: list[WorkspaceStop]) -> None:
    for stop in stops:
        servers = ", ".join(stop.servers_stopped) or "none running"
        typer.echo(f"{stop.agreement_id} workspaces stopped: {servers}")
        if stop.homes_destroyed:
            count = len(stop.homes_destroyed)
            typer.echo(f"{stop.agreement_id} home volumes destroyed (R16): {count}")
