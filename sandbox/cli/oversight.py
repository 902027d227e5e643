"""``sandbox oversight``: violations and the register, tip-offs, quality tasks, data requests.

The same service functions and permission checks as the API; refusals print
``error: ... [rule; article]`` and exit 1.
"""

from __future__ import annotations

import json

import typer

from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.clock import today
from sandbox.oversight import demand, quality, tipoffs, violations
from sandbox.oversight.views import quality_task_view
from sandbox.settings import get_settings
from sandbox.workcalendar import calendar_from_settings

oversight_app = typer.Typer(no_args_is_help=True)


@oversight_app.command("violations")
def list_violations(as_user: str = AS_OPTION) -> None:
    """Violations the user may see: id, agreement, researcher, kind, status, measure."""
    with refusals_exit(), unit_of_work() as session:
        for v in violations.list_violations(session, acting_user(session, as_user)):
            published = f"published {v.published_on}" if v.published_on else ""
            typer.echo(
                f"{v.id}\t{v.agreement_id}\t{v.researcher}\t{v.kind}\t{v.status}\t"
                f"{v.measure or '-'}\t{published}".rstrip()
            )


@oversight_app.command("record-violation")
def record_violation(
    kind: str = typer.Option(..., help=f"One of: {', '.join(violations.KINDS)}."),
    evidence: str = typer.Option(..., help="What was found."),
    ref: list[str] = typer.Option([], help="Where the evidence is (repeatable)."),
    agreement: str = typer.Option("", help="Agreement id (taken from the alert or tip-off)."),
    researcher: str = typer.Option("", help="Researcher (taken from the alert)."),
    alert: int | None = typer.Option(None, help="Early-warning alert it comes from."),
    tipoff: int | None = typer.Option(None, help="Tip-off it comes from."),
    as_user: str = AS_OPTION,
) -> None:
    """Record a violation (authority or operator; Shanghai Art.28)."""
    with refusals_exit(), unit_of_work() as session:
        v = violations.record_violation(
            session=session,
            actor=acting_user(session, as_user),
            kind=kind,
            evidence=evidence,
            references=ref,
            agreement_id=agreement,
            researcher=researcher,
            alert_id=alert,
            tipoff_id=tipoff,
        )
        typer.echo(f"violation {v.id} recorded against {v.researcher} under {v.agreement_id}")


@oversight_app.command("measure")
def measure(
    violation_id: int,
    measure: str = typer.Option(..., help=f"One of: {', '.join(violations.MEASURES)}."),
    reason: str = typer.Option(..., help="Why (recorded, and kept as the decision)."),
    days: int | None = typer.Option(None, help="Rectification period (limit, close)."),
    as_user: str = AS_OPTION,
) -> None:
    """Apply a measure through the agreement's lifecycle (operator or the provider)."""
    with refusals_exit(), unit_of_work() as session:
        v = violations.apply_measure(
            session=session,
            actor=acting_user(session, as_user),
            violation_id=violation_id,
            measure=measure,
            reason=reason,
            rectification_days=days,
            today=today(),
        )
        deadline = f" rectify by {v.rectification_deadline}" if v.rectification_deadline else ""
        typer.echo(f"violation {v.id} {v.status}{deadline}")


@oversight_app.command("rectified")
def rectified(violation_id: int, reason: str = typer.Option(...), as_user: str = AS_OPTION) -> None:
    """Confirm rectification: the agreement is reinstated."""
    with refusals_exit(), unit_of_work() as session:
        v = violations.confirm_rectified(
            session=session,
            actor=acting_user(session, as_user),
            violation_id=violation_id,
            reason=reason,
            today=today(),
        )
        typer.echo(f"violation {v.id} {v.status}")


@oversight_app.command("publish")
def publish(violation_id: int, as_user: str = AS_OPTION) -> None:
    """Put a violation and its measure on the public register."""
    with refusals_exit(), unit_of_work() as session:
        v = violations.publish_violation(
            session=session,
            actor=acting_user(session, as_user),
            violation_id=violation_id,
            today=today(),
        )
        typer.echo(f"violation {v.id} published on {v.published_on}")


@oversight_app.command("register")
def register() -> None:
    """The public violation register, as JSON lines."""
    with refusals_exit(), unit_of_work() as session:
        for entry in violations.public_register(session):
            typer.echo(json.dumps(entry, ensure_ascii=False, default=str))


@oversight_app.command("tipoffs")
def list_tipoffs(as_user: str = AS_OPTION) -> None:
    """Tip-offs routed to the user (all for the authority and the operator)."""
    with refusals_exit(), unit_of_work() as session:
        for t in tipoffs.list_tipoffs(session, acting_user(session, as_user)):
            typer.echo(f"{t.id}\t{t.kind}\t{t.provider or 'authority'}\t{t.status}")


@oversight_app.command("handle-tipoff")
def handle_tipoff(
    tipoff_id: int,
    to: str = typer.Option(..., help="handling, answered or dismissed."),
    answer: str = typer.Option(""),
    as_user: str = AS_OPTION,
) -> None:
    """Handle and answer a tip-off (the provider it is routed to, the authority, the operator)."""
    with refusals_exit(), unit_of_work() as session:
        t = tipoffs.handle_tipoff(
            session=session,
            actor=acting_user(session, as_user),
            tipoff_id=tipoff_id,
            to=to,
            answer=answer,
        )
        typer.echo(f"tip-off {t.id} {t.status}")


@oversight_app.command("quality-tasks")
def list_quality_tasks(
    overdue: bool = typer.Option(False, "--overdue", help="Only tasks past their due date."),
    as_user: str = AS_OPTION,
) -> None:
    """Rectification tasks: id, dataset, provider, due date, status (Wuxi Art.13)."""
    day = today()
    with refusals_exit(), unit_of_work() as session:
        for task in quality.list_tasks(
            session, acting_user(session, as_user), today=day, overdue_only=overdue
        ):
            view = quality_task_view(task, day)
            flag = "\tOVERDUE" if view["overdue"] else ""
            typer.echo(
                f"{task.id}\t{view['dataset']}\t{task.provider}\tdue {task.due_on}\t"
                f"{task.status}{flag}"
            )


@oversight_app.command("raise-task")
def raise_task(
    dataset: str = typer.Option(""),
    description: str = typer.Option(""),
    objection: int | None = typer.Option(None, help="A confirmed objection to raise it from."),
    require_new_version: bool = typer.Option(False, "--require-new-version"),
    as_user: str = AS_OPTION,
) -> None:
    """Raise a rectification task for a dataset's provider (the authority)."""
    with refusals_exit(), unit_of_work() as session:
        task = quality.raise_task(
            session=session,
            actor=acting_user(session, as_user),
            dataset=dataset,
            description=description,
            objection_id=objection,
            require_new_version=require_new_version,
            today=today(),
            calendar=calendar_from_settings(get_settings()),
        )
        typer.echo(f"task {task.id} for {task.provider} due {task.due_on}")


@oversight_app.command("handle-task")
def handle_task(
    task_id: int,
    to: str = typer.Option(..., help="answered or closed."),
    answer: str = typer.Option(...),
    as_user: str = AS_OPTION,
) -> None:
    """Answer or close a rectification task (the dataset's provider)."""
    with refusals_exit(), unit_of_work() as session:
        task = quality.handle_task(
            session=session,
            actor=acting_user(session, as_user),
            task_id=task_id,
            to=to,
            answer=answer,
        )
        typer.echo(f"task {task.id} {task.status}")


@oversight_app.command("demands")
def list_demands(as_user: str = AS_OPTION) -> None:
    """Requests for data not in the catalogue (Shanghai Art.10; Wuxi Art.9)."""
    with refusals_exit(), unit_of_work() as session:
        for d in demand.list_demands(session, acting_user(session, as_user)):
            typer.echo(f"{d.id}\t{d.status}\t{d.title}")


@oversight_app.command("handle-demand")
def handle_demand(
    demand_id: int,
    to: str = typer.Option(..., help="answered, declined or fulfilled."),
    answer: str = typer.Option(...),
    dataset: str = typer.Option("", help="The published dataset (fulfilled only)."),
    as_user: str = AS_OPTION,
) -> None:
    """Answer, decline or fulfil a data request (a provider or the authority)."""
    with refusals_exit(), unit_of_work() as session:
        d = demand.handle_demand(
            session=session,
            actor=acting_user(session, as_user),
            demand_id=demand_id,
            to=to,
            answer=answer,
            dataset=dataset,
        )
        typer.echo(f"data request {d.id} {d.status}")
