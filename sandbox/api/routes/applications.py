"""Applications: draft, submit, review (R3, R4)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError

from sandbox.api.views import agreement_view, application_view
from sandbox.applications.service import (
    approve_application,
    create_application,
    get_application,
    list_applications,
    missing_items,
    refuse_application,
    submit_application,
    update_application,
)
from sandbox.clock import today
from sandbox.contracts import load_agreement_text
from sandbox.http.deps import CalendarDep, DbDep, ProviderDep, ResearcherDep, UserDep
from sandbox.input_limits import Document, LongText, Name, Title

router = APIRouter(prefix="/api/applications", tags=["applications"])


#: Fields a draft may clear by sending null.
NULLABLE = frozenset({"usage_from", "usage_until"})


class ApplicationIn(BaseModel):
    application_type: Literal["dataset", "interface", "sandbox"] | None = None
    title: Title | None = None
    reason: LongText | None = None
    scenario: LongText | None = None
    purpose: LongText | None = None
    datasets: dict[Name, list[Name]] | None = None
    usage_from: date | None = None
    usage_until: date | None = None
    output_forms: list[Name] | None = None
    mode: Literal["aggregate", "record"] | None = None
    conditions_evidence: LongText | None = None
    commitment_signed: bool | None = None

    @model_validator(mode="after")
    def _null_only_for_dates(self) -> ApplicationIn:
        """A field left out stays as it is; only the usage dates may be cleared with null:
        every other field always holds a value (empty text at most)."""
        nulls = sorted(f for f in self.model_fields_set - NULLABLE if getattr(self, f) is None)
        if nulls:
            raise PydanticCustomError(
                "not_null",
                "{fields} must not be null: send a value, or leave the field out to keep it",
                {"fields": ", ".join(nulls), "rule": "application-null"},
            )
        return self


def _fields(body: ApplicationIn) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.get("")
def index(db: DbDep, user: UserDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [application_view(a, today()) for a in list_applications(session, user)]


@router.post("", status_code=201)
def create(body: ApplicationIn, db: DbDep, user: ResearcherDep) -> dict[str, Any]:
    with db.tx() as session:
        app = create_application(session=session, actor=user, fields=_fields(body))
        return {**application_view(app, today()), "missing": missing_items(session, app)}


@router.get("/{application_id}")
def show(application_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        app = get_application(session, user, application_id)
        return {**application_view(app, today()), "missing": missing_items(session, app)}


@router.patch("/{application_id}")
def update(
    application_id: int, body: ApplicationIn, db: DbDep, user: ResearcherDep
) -> dict[str, Any]:
    with db.tx() as session:
        app = update_application(
            session=session, actor=user, application_id=application_id, fields=_fields(body)
        )
        return {**application_view(app, today()), "missing": missing_items(session, app)}


@router.post("/{application_id}/submit")
def submit(
    application_id: int, db: DbDep, user: ResearcherDep, calendar: CalendarDep
) -> dict[str, Any]:
    with db.tx() as session:
        app = submit_application(
            session=session,
            actor=user,
            application_id=application_id,
            today=today(),
            calendar=calendar,
        )
        return application_view(app, today())


class RefusalIn(BaseModel):
    reason: LongText
    legal_basis: Name


@router.post("/{application_id}/refuse")
def refuse(application_id: int, body: RefusalIn, db: DbDep, user: ProviderDep) -> dict[str, Any]:
    with db.tx() as session:
        app = refuse_application(
            session=session, actor=user, application_id=application_id, **body.model_dump()
        )
        return application_view(app, today())


class ApprovalIn(BaseModel):
    scope: LongText
    agreement_yaml: Document


@router.post("/{application_id}/approve")
def approve(application_id: int, body: ApprovalIn, db: DbDep, user: ProviderDep) -> dict[str, Any]:
    agreement = load_agreement_text(body.agreement_yaml, "agreement_yaml")
    with db.tx() as session:
        rec = approve_application(
            session=session,
            actor=user,
            application_id=application_id,
            scope=body.scope,
            agreement=agreement,
        )
        return agreement_view(rec)
