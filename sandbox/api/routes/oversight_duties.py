"""Violations and the public register, tip-offs, data-quality tasks and data requests
(Shanghai Art.10, 27, 28, 36; Wuxi Art.9, 13, 17). Thin: every rule is in ``sandbox.oversight``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from sandbox.clock import today
from sandbox.http.deps import (
    CalendarDep,
    DbDep,
    MaybeUserDep,
    OversightDep,
    SettingsDep,
    UserDep,
)
from sandbox.input_limits import Days, LongText, Name, RowId, Title
from sandbox.oversight import demand, quality, tipoffs, violations
from sandbox.oversight.models import Demand, TipOff
from sandbox.oversight.receipts import find_by_receipt
from sandbox.oversight.views import (
    demand_view,
    quality_task_view,
    receipt_view,
    tipoff_view,
    violation_view,
)
from sandbox.provisioning.runtime import enforce_agreement_status

router = APIRouter(prefix="/api", tags=["oversight duties"])


class ViolationIn(BaseModel):
    kind: Name
    evidence: LongText
    references: list[LongText] = []
    agreement_id: Name = ""
    researcher: Name = ""
    alert_id: RowId | None = None
    tipoff_id: RowId | None = None


class MeasureIn(BaseModel):
    measure: Name
    reason: LongText
    rectification_days: Days | None = None


class ReasonIn(BaseModel):
    reason: LongText


class MoveIn(BaseModel):
    to: Name
    answer: LongText = ""
    dataset: Name = ""


class TipOffIn(BaseModel):
    kind: Name
    description: LongText
    reporter: Name = ""
    contact: Name = ""
    dataset: Name = ""
    agreement_id: Name = ""


class QualityTaskIn(BaseModel):
    dataset: Name = ""
    description: LongText = ""
    objection_id: RowId | None = None
    require_new_version: bool = False


class DemandIn(BaseModel):
    requester: Name
    contact: Name
    title: Title
    description: LongText
    domain: Name = ""


class ReceiptIn(BaseModel):
    receipt: Name


@router.get("/violations/register")
def violation_register(db: DbDep) -> list[dict[str, Any]]:
    """Public: published violations — organisation, measure, date and article only."""
    with db.tx() as session:
        return violations.public_register(session)


@router.post("/violations", status_code=201)
def record_violation(body: ViolationIn, db: DbDep, user: OversightDep) -> dict[str, Any]:
    with db.tx() as session:
        v = violations.record_violation(session=session, actor=user, **body.model_dump())
        return violation_view(v)


@router.get("/violations")
def list_violations(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [violation_view(v) for v in violations.list_violations(session, user)]


@router.get("/violations/{violation_id}")
def show_violation(violation_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        return violation_view(violations.get_violation(session, user, violation_id))


@router.post("/violations/{violation_id}/measure")
def apply_measure(
    violation_id: int, body: MeasureIn, db: DbDep, settings: SettingsDep, user: UserDep
) -> dict[str, Any]:
    with db.tx() as session:
        v = violations.apply_measure(
            session=session,
            actor=user,
            violation_id=violation_id,
            today=today(),
            **body.model_dump(),
        )
        view, agreement_id = violation_view(v), v.agreement_id
    # A measure that closed access stops the agreement's running workspaces before answering.
    enforce_agreement_status(settings, db.tx, [agreement_id], actor=user.username)
    return view


@router.post("/violations/{violation_id}/rectified")
def confirm_rectified(
    violation_id: int, body: ReasonIn, db: DbDep, user: UserDep
) -> dict[str, Any]:
    with db.tx() as session:
        v = violations.confirm_rectified(
            session=session,
            actor=user,
            violation_id=violation_id,
            reason=body.reason,
            today=today(),
        )
        return violation_view(v)


@router.post("/violations/{violation_id}/publish")
def publish_violation(violation_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        v = violations.publish_violation(
            session=session, actor=user, violation_id=violation_id, today=today()
        )
        return violation_view(v)


@router.post("/tipoffs", status_code=201)
def submit_tipoff(body: TipOffIn, db: DbDep, user: MaybeUserDep) -> dict[str, Any]:
    """Public. The receipt code is shown only here: keep it to read the answer."""
    with db.tx() as session:
        tip, code = tipoffs.submit_tipoff(session=session, actor=user, **body.model_dump())
        return {"id": tip.id, "receipt": code, "routed_to": tip.provider or "authority"}


@router.post("/tipoffs/receipt")
def tipoff_by_receipt(body: ReceiptIn, db: DbDep) -> dict[str, Any]:
    with db.tx() as session:
        return receipt_view(find_by_receipt(session, TipOff, body.receipt))


@router.get("/tipoffs")
def list_tipoffs(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [tipoff_view(t) for t in tipoffs.list_tipoffs(session, user)]


@router.post("/tipoffs/{tipoff_id}")
def handle_tipoff(tipoff_id: int, body: MoveIn, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        tip = tipoffs.handle_tipoff(
            session=session,
            actor=user,
            tipoff_id=tipoff_id,
            to=body.to,
            answer=body.answer,
        )
        return tipoff_view(tip)


@router.post("/quality-tasks", status_code=201)
def raise_quality_task(
    body: QualityTaskIn, db: DbDep, user: UserDep, calendar: CalendarDep
) -> dict[str, Any]:
    day = today()
    with db.tx() as session:
        task = quality.raise_task(
            session=session, actor=user, today=day, calendar=calendar, **body.model_dump()
        )
        return quality_task_view(task, day)


@router.get("/quality-tasks")
def list_quality_tasks(db: DbDep, user: UserDep, overdue: bool = False) -> list[dict[str, Any]]:
    day = today()
    with db.tx() as session:
        tasks = quality.list_tasks(session, user, today=day, overdue_only=overdue)
        return [quality_task_view(t, day) for t in tasks]


@router.post("/quality-tasks/{task_id}")
def handle_quality_task(task_id: int, body: MoveIn, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        task = quality.handle_task(
            session=session,
            actor=user,
            task_id=task_id,
            to=body.to,
            answer=body.answer,
        )
        return quality_task_view(task, today())


@router.post("/demands", status_code=201)
def submit_demand(body: DemandIn, db: DbDep) -> dict[str, Any]:
    """Public. The receipt code is shown only here: keep it to read the answer."""
    with db.tx() as session:
        d, code = demand.submit_demand(session=session, **body.model_dump())
        return {"id": d.id, "receipt": code}


@router.post("/demands/receipt")
def demand_by_receipt(body: ReceiptIn, db: DbDep) -> dict[str, Any]:
    with db.tx() as session:
        return receipt_view(find_by_receipt(session, Demand, body.receipt))


@router.get("/demands")
def list_demands(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [demand_view(d) for d in demand.list_demands(session, user)]


@router.post("/demands/{demand_id}")
def handle_demand(demand_id: int, body: MoveIn, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        d = demand.handle_demand(
            session=session,
            actor=user,
            demand_id=demand_id,
            to=body.to,
            answer=body.answer,
            dataset=body.dataset,
        )
        return demand_view(d)
