"""Data-quality rectification tasks (整改任务, R14; Wuxi Art.13).

The authority assesses the quality of opened data; where a dataset falls
short it raises a task for the dataset's provider, who must respond within 10
working days of receiving it (the platform's work calendar). A task not
responded to by then is flagged overdue. The provider answers it and closes
it; the authority may require that closing waits for a new published version
of the dataset. A confirmed objection (R10) can become a task.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of, require_role
from sandbox.audit.record import record
from sandbox.catalog.models import Dataset
from sandbox.catalog.service import get_dataset, latest_version
from sandbox.errors import Conflict, NotFound, PolicyViolation, ValidationFailed
from sandbox.feedback.models import Objection, ObjectionStatus
from sandbox.oversight.models import QualityTask, QualityTaskStatus
from sandbox.oversight.workflow import Workflow, advance
from sandbox.workcalendar import WorkCalendar

ARTICLE = "Wuxi Art.13"
RESPONSE_WORKING_DAYS = 10
S = QualityTaskStatus
WORKFLOW = Workflow(
    "quality_task",
    ARTICLE,
    {(S.open, S.answered): True, (S.open, S.closed): True, (S.answered, S.closed): True},
    transition_rule="quality_task-transition",
    answer_rule="quality_task-answer",
)


def _version(session: Session, ds: Dataset) -> int:
    latest = latest_version(session, ds)
    return latest.version if latest else 0


def _from_objection(session: Session, objection_id: int, dataset: str) -> tuple[Objection, str]:
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} does not exist", rule="objection-unknown")
    if objection.status != ObjectionStatus.confirmed:
        raise ValidationFailed(
            f"objection {objection_id} is {objection.status}; only an objection the provider "
            "has confirmed (and not yet resolved) becomes a rectification task",
            rule="quality-task-objection",
            article="Shanghai Art.21; Wuxi Art.13",
        )
    if session.scalar(select(QualityTask.id).where(QualityTask.objection_id == objection_id)):
        raise Conflict(
            f"objection {objection_id} already has a rectification task", rule="quality-task-dup"
        )
    name = session.get_one(Dataset, objection.dataset_id).name
    if dataset and dataset != name:
        raise ValidationFailed(
            f"objection {objection_id} is about {name!r}, not {dataset!r}",
            rule="quality-task-objection",
        )
    return objection, name


def raise_task(
    *,
    session: Session,
    actor: User,
    description: str = "",
    dataset: str = "",
    objection_id: int | None = None,
    require_new_version: bool = False,
    today: date,
    calendar: WorkCalendar,
) -> QualityTask:
    """The authority's assessment found a problem: the provider has 10 working days to respond."""
    require_role(actor, Role.authority)
    if objection_id is not None:
        objection, dataset = _from_objection(session, objection_id, dataset)
        description = description.strip() or objection.description
    if not (dataset and description.strip()):
        raise ValidationFailed(
            "a rectification task names the dataset and describes what falls short",
            rule="quality-task-incomplete",
            article=ARTICLE,
        )
    ds = get_dataset(session, dataset)
    task = QualityTask(
        dataset_id=ds.id,
        provider=ds.provider,
        description=description,
        objection_id=objection_id,
        require_new_version=require_new_version,
        version_at_raise=_version(session, ds),
        raised_by=actor.username,
        raised_on=today,
        due_on=calendar.add_working_days(today, RESPONSE_WORKING_DAYS),
        status=S.open,
    )
    session.add(task)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="quality_task.raise",
        object=f"dataset:{ds.name}",
        details={
            "task": task.id,
            "due_on": task.due_on.isoformat(),
            "objection": objection_id,
            "require_new_version": require_new_version,
            "article": ARTICLE,
        },
    )
    return task


def is_overdue(task: QualityTask, today: date) -> bool:
    """Not responded to by the 10th working day after it was raised."""
    return task.status == S.open and today > task.due_on


def handle_task(
    *, session: Session, actor: User, task_id: int, to: str, answer: str
) -> QualityTask:
    """The provider responds (answered) and, once rectified, closes the task."""
    task = session.get(QualityTask, task_id)
    if task is None:
        raise NotFound(f"rectification task {task_id} does not exist", rule="quality-task-unknown")
    require_provider_of(actor, task.provider)
    ds = session.get_one(Dataset, task.dataset_id)
    WORKFLOW.check(task.status, to, answer)
    details: dict = {"task": task.id}
    if to == S.closed:
        version = _version(session, ds)
        if task.require_new_version and version <= task.version_at_raise:
            raise PolicyViolation(
                "quality-task-new-version",
                ARTICLE,
                f"this task closes only after a new version of {ds.name} is published "
                f"(it was raised at version {task.version_at_raise}; the latest is {version})",
            )
        task.closed_version = version
        details["closed_version"] = version
    advance(
        session,
        WORKFLOW,
        task,
        to=to,
        actor=actor.username,
        object=f"dataset:{ds.name}",
        answer=answer,
        details=details,
    )
    return task


def list_tasks(
    session: Session, actor: User, *, today: date, overdue_only: bool = False
) -> list[QualityTask]:
    """A provider sees its own tasks; the authority and the operator see all."""
    require_role(actor, Role.provider, Role.authority, Role.operator)
    q = select(QualityTask).order_by(QualityTask.due_on, QualityTask.id)
    if actor.role == Role.provider:
        q = q.where(QualityTask.provider == actor.organisation)
    tasks = list(session.scalars(q))
    return [t for t in tasks if is_overdue(t, today)] if overdue_only else tasks
