"""Agreements: import, amend, export, lifecycle, usage reports (R5, R8, R9)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.models import AgreementVersion
from sandbox.agreements.service import (
    amend_agreement,
    change_status,
    export_agreement,
    import_agreement,
    list_agreements,
    visible_agreement,
)
from sandbox.api.views import agreement_view
from sandbox.clock import today
from sandbox.contracts import load_agreement_text
from sandbox.duties.run import agreement_lifecycle
from sandbox.errors import ValidationFailed
from sandbox.feedback.usage import report_schedule, submit_usage_report
from sandbox.http.deps import DbDep, OperatorDep, ResearcherDep, SettingsDep, UserDep
from sandbox.input_limits import Days, Document, LongText
from sandbox.provisioning.runtime import enforce_agreement_status
from sandbox.provisioning.service import rebuild_if_provisioned

router = APIRouter(prefix="/api/agreements", tags=["agreements"])


@router.get("")
def index(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [agreement_view(r) for r in list_agreements(session, user)]


@router.post("", status_code=201)
def import_yaml(
    db: DbDep, user: UserDep, yaml_text: str = Body(..., media_type="application/yaml")
) -> dict[str, Any]:
    agreement = load_agreement_text(yaml_text, "request body")
    with db.tx() as session:
        return agreement_view(import_agreement(session=session, actor=user, agreement=agreement))


@router.get("/{agreement_id}")
def show(agreement_id: str, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
        versions = session.scalars(
            select(AgreementVersion)
            .where(AgreementVersion.agreement_id == rec.id)
            .order_by(AgreementVersion.version)
        )
        return {
            **agreement_view(rec),
            "versions": [
                {
                    "version": v.version,
                    "reason": v.reason,
                    "dataset_versions": v.dataset_versions,
                    "created_by": v.created_by,
                    "created_at": v.created_at,
                }
                for v in versions
            ],
        }


@router.get("/{agreement_id}/yaml", response_class=PlainTextResponse)
def as_yaml(agreement_id: str, db: DbDep, user: UserDep) -> str:
    with db.tx() as session:
        return export_agreement(session, user, agreement_id)


class AmendIn(BaseModel):
    agreement_yaml: Document
    reason: LongText


@router.put("/{agreement_id}")
def amend(
    agreement_id: str, body: AmendIn, db: DbDep, settings: SettingsDep, user: UserDep
) -> dict[str, Any]:
    """A new version; a provisioned workspace's database is rebuilt to match it at once."""
    agreement = load_agreement_text(body.agreement_yaml, "agreement_yaml")
    if agreement.id != agreement_id:
        raise ValidationFailed("the YAML's id differs from the URL's", rule="agreement-id")
    with db.tx() as session:
        rec = amend_agreement(session=session, actor=user, agreement=agreement, reason=body.reason)
        rebuild_if_provisioned(session, settings, rec.id)
        return agreement_view(rec)


class StatusIn(BaseModel):
    reason: LongText
    rectification_days: Days | None = None


@router.post("/{agreement_id}/{action}")
def move(
    agreement_id: str,
    action: AgreementAction,
    body: StatusIn,
    db: DbDep,
    settings: SettingsDep,
    user: UserDep,
) -> dict[str, Any]:
    """Suspend, reinstate or terminate. When the answer comes, the agreement's tokens are
    revoked and none of its workspaces runs any more (Shanghai Art.26, 36; R11)."""
    with db.tx() as session:
        rec = change_status(
            session=session,
            actor=user,
            agreement_id=agreement_id,
            action=action,
            reason=body.reason,
            rectification_days=body.rectification_days,
            today=today(),
        )
        view = agreement_view(rec)
    stops = enforce_agreement_status(settings, db.tx, [view["id"]], actor=user.username)
    return view | {"workspace_stops": [stop.details() for stop in stops]}


@router.get("/{agreement_id}/usage-reports")
def usage_reports(agreement_id: str, db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
        return [due.__dict__ for due in report_schedule(session, rec, today())]


class UsageReportIn(BaseModel):
    period_end: date
    summary: LongText
    outputs: LongText = ""


@router.post("/{agreement_id}/usage-reports", status_code=201)
def submit_report(
    agreement_id: str, body: UsageReportIn, db: DbDep, user: ResearcherDep
) -> dict[str, Any]:
    with db.tx() as session:
        r = submit_usage_report(
            session=session, actor=user, agreement_id=agreement_id, **body.model_dump()
        )
        return {"id": r.id, "period_end": r.period_end, "submitted_at": r.submitted_at}


lifecycle_router = APIRouter(prefix="/api/operator", tags=["operator"])


@lifecycle_router.post("/lifecycle/run")
def lifecycle(db: DbDep, settings: SettingsDep, user: OperatorDep) -> dict[str, Any]:
    """Run the daily job now: expiry by date, termination after missed rectification,
    then destruction of what ended (R16)."""
    done = agreement_lifecycle(settings, db.tx, today=today(), actor=user.username)
    changed = [{"agreement": a, "status": s} for a, s in done.changed]
    return {"changed": changed, "destroyed": done.destroyed}
