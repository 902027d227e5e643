"""Handling objections and complaints (providers), filings and overdue lists (oversight)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from sandbox.accounts.models import Role
from sandbox.accounts.permissions import require_role
from sandbox.api.views import application_view, complaint_view, objection_view
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import is_overdue
from sandbox.audit.filings import list_filings
from sandbox.catalog.models import Dataset
from sandbox.clock import today
from sandbox.feedback.complaints import handle_complaint, list_complaints
from sandbox.feedback.models import ComplaintStatus, ObjectionStatus
from sandbox.feedback.objections import handle_objection, list_objections
from sandbox.feedback.usage import overdue_reports
from sandbox.http.deps import DbDep, OversightDep, ProviderDep, SettingsDep, UserDep
from sandbox.input_limits import LongText
from sandbox.provisioning.service import rebuild_for_dataset

router = APIRouter(prefix="/api", tags=["oversight"])


@router.get("/objections")
def objections(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    require_role(user, Role.provider, Role.authority, Role.operator)
    with db.tx() as session:
        return [objection_view(o) for o in list_objections(session, user)]


Status = TypeVar("Status", ObjectionStatus, ComplaintStatus)


class HandleIn(BaseModel, Generic[Status]):
    """A provider's move on an objection or complaint: a status not of its kind is refused
    with the allowed ones named, before the handler runs."""

    to: Status
    answer: LongText = ""


@router.post("/objections/{objection_id}")
def handle_obj(
    objection_id: int, body: HandleIn[ObjectionStatus], db: DbDep, user: ProviderDep
) -> dict[str, Any]:
    with db.tx() as session:
        o = handle_objection(
            session=session,
            actor=user,
            objection_id=objection_id,
            to=body.to,
            answer=body.answer,
        )
        return objection_view(o)


@router.get("/complaints")
def complaints(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    require_role(user, Role.provider, Role.authority, Role.operator)
    with db.tx() as session:
        return [complaint_view(c) for c in list_complaints(session, user)]


@router.post("/complaints/{complaint_id}")
def handle_comp(
    complaint_id: int,
    body: HandleIn[ComplaintStatus],
    db: DbDep,
    settings: SettingsDep,
    user: ProviderDep,
) -> dict[str, Any]:
    """Handle a complaint; a suspension or restoration rebuilds every affected workspace."""
    with db.tx() as session:
        c = handle_complaint(
            session=session,
            actor=user,
            complaint_id=complaint_id,
            to=body.to,
            answer=body.answer,
        )
        rebuild_for_dataset(session, settings, session.get_one(Dataset, c.dataset_id).name)
        return complaint_view(c)


@router.get("/filings")
def filings(db: DbDep, user: OversightDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [
            {
                "id": f.id,
                "kind": f.kind,
                "object": f.object,
                "article": f.article,
                "summary": f.summary,
                "filed_at": f.filed_at,
            }
            for f in list_filings(session)
        ]


@router.get("/overdue")
def overdue(db: DbDep, user: OversightDep) -> dict[str, Any]:
    """Applications past their review deadline and usage reports past due."""
    day = today()
    with db.tx() as session:
        apps = session.scalars(
            select(Application).where(Application.status == ApplicationStatus.under_review)
        )
        return {
            "applications": [application_view(a, day) for a in apps if is_overdue(a, day)],
            "usage_reports": [r.__dict__ for r in overdue_reports(session, day)],
        }
