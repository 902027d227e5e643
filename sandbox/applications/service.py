"""Apply, complete, submit and review applications (R3, R4; Wuxi Art.15, Rizhao Art.20).

An applicant is a real-name verified person (Wuxi Art.6): anyone may prepare
a draft, but only a verified applicant submits it. An incomplete application
is not forwarded: the applicant is told exactly what is missing. The provider
answers within 10 working days on the platform's calendar; approval states
purpose and scope and produces an agreement; refusal states a reason and its
legal basis.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of, require_role
from sandbox.agreements.models import AgreementRecord
from sandbox.agreements.service import import_agreement
from sandbox.applications.models import Application, ApplicationStatus, ApplicationType
from sandbox.audit.record import record
from sandbox.catalog.service import catalog_entries
from sandbox.contracts import Agreement, OpenClass
from sandbox.db.base import utcnow
from sandbox.errors import (
    Conflict,
    InvalidStateTransition,
    NotFound,
    PolicyViolation,
    ValidationFailed,
)
from sandbox.identity.organisations import require_real_name
from sandbox.workcalendar import WorkCalendar

REVIEW_WORKING_DAYS = 10
ART_COMPLETE = "Wuxi Art.15(1)-(2)"
ART_REVIEW = "Wuxi Art.15(3); Rizhao Art.20"

EDITABLE = (
    "application_type",
    "title",
    "reason",
    "scenario",
    "purpose",
    "datasets",
    "usage_from",
    "usage_until",
    "output_forms",
    "mode",
    "conditions_evidence",
    "commitment_signed",
)

#: What a complete application must contain, with the words the applicant is shown.
REQUIRED = {
    "title": "a title",
    "reason": "the reason for the application (申请理由)",
    "scenario": "the application scenario (应用场景)",
    "purpose": "the purpose of use",
    "datasets": "at least one dataset and its columns from the catalogue",
    "usage_from": "the start of the usage period (使用期限)",
    "usage_until": "the end of the usage period (使用期限)",
    "output_forms": "the output forms (成果形式)",
    "conditions_evidence": "evidence that you meet the published access conditions",
    "commitment_signed": "the signed commitment that the scenario is true, lawful and safe",
}


def get_application(session: Session, actor: User, application_id: int) -> Application:
    """The application if the actor may see it: its applicant, its provider, or oversight."""
    app = session.get(Application, application_id)
    visible = app is not None and (
        actor.role in (Role.operator, Role.authority)
        or (actor.role == Role.researcher and app.applicant_id == actor.id)
        or (actor.role == Role.provider and app.provider == actor.organisation)
    )
    if not visible:
        raise NotFound(f"application {application_id} does not exist", rule="application-unknown")
    return app


def list_applications(session: Session, actor: User) -> list[Application]:
    q = select(Application).order_by(Application.id.desc())
    if actor.role == Role.researcher:
        q = q.where(Application.applicant_id == actor.id)
    elif actor.role == Role.provider:
        q = q.where(Application.provider == actor.organisation)
        q = q.where(Application.status != ApplicationStatus.draft)
    return list(session.scalars(q))


def _apply_fields(app: Application, fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {', '.join(unknown)}; an application has {', '.join(EDITABLE)}",
            rule="application-fields",
        )
    for key, value in fields.items():
        setattr(app, key, value)


def create_application(*, session: Session, actor: User, fields: dict[str, Any]) -> Application:
    """A draft: it may be incomplete until it is submitted."""
    require_role(actor, Role.researcher)
    app = Application(applicant_id=actor.id, datasets={}, output_forms=[])
    _apply_fields(app, fields)
    session.add(app)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="application.create",
        object=f"application:{app.id}",
        details={"title": app.title},
    )
    return app


def update_application(
    *, session: Session, actor: User, application_id: int, fields: dict[str, Any]
) -> Application:
    app = get_application(session, actor, application_id)
    if app.applicant_id != actor.id:
        raise NotFound(f"application {application_id} does not exist", rule="application-unknown")
    if app.status != ApplicationStatus.draft:
        raise InvalidStateTransition(
            f"application {app.id} is {app.status}; only drafts can be edited",
            rule="application-state",
        )
    _apply_fields(app, fields)
    record(
        session,
        actor=actor.username,
        action="application.update",
        object=f"application:{app.id}",
        details={"fields": sorted(fields)},
    )
    return app


def missing_items(session: Session, app: Application) -> list[str]:
    """Everything that keeps the application from being forwarded, in the applicant's words."""
    missing = [text for field, text in REQUIRED.items() if not getattr(app, field)]
    if app.application_type not in {t.value for t in ApplicationType}:
        missing.append("an application type: dataset, interface or sandbox")
    if app.usage_from and app.usage_until and app.usage_until < app.usage_from:
        missing.append("a usage period whose end is not before its start")
    entries = catalog_entries(session)
    providers = set()
    for name, columns in (app.datasets or {}).items():
        entry = entries.get(name)
        if entry is None or entry.open_class == OpenClass.non_open:
            missing.append(f"dataset {name!r} is not in the public catalogue")
            continue
        providers.add(entry.provider)
        unknown = [c for c in columns if c not in entry.column_names]
        if unknown:
            missing.append(f"columns of {name} that exist (unknown: {', '.join(unknown)})")
        if not columns:
            missing.append(f"the columns wanted from {name}")
    if len(providers) > 1:
        missing.append("datasets of one provider only (apply to each provider separately)")
    return missing


def submit_application(
    *, session: Session, actor: User, application_id: int, today: date, calendar: WorkCalendar
) -> Application:
    """Forward a complete draft of a real-name verified applicant to its provider and start
    the 10-working-day clock."""
    app = get_application(session, actor, application_id)
    if app.applicant_id != actor.id:
        raise NotFound(f"application {application_id} does not exist", rule="application-unknown")
    if app.status != ApplicationStatus.draft:
        raise Conflict(
            f"application {app.id} was already submitted (it is {app.status})",
            rule="application-duplicate-submission",
        )
    # Before completeness: an unverified applicant's complete draft is refused all the same.
    require_real_name(session, actor)
    missing = missing_items(session, app)
    if missing:
        raise ValidationFailed(
            "the application is incomplete and was not forwarded; missing: " + "; ".join(missing),
            rule="application-incomplete",
            article=ART_COMPLETE,
        )
    entries = catalog_entries(session)
    app.provider = entries[next(iter(app.datasets))].provider
    app.status = ApplicationStatus.under_review
    app.received_on = today
    app.review_deadline = calendar.add_working_days(today, REVIEW_WORKING_DAYS)
    record(
        session,
        actor=actor.username,
        action="application.submit",
        object=f"application:{app.id}",
        details={"provider": app.provider, "review_deadline": app.review_deadline.isoformat()},
    )
    return app


def is_overdue(app: Application, today: date) -> bool:
    """Under review past its deadline (Wuxi Art.15(3))."""
    return (
        app.status == ApplicationStatus.under_review
        and app.review_deadline is not None
        and today > app.review_deadline
    )


def refuse_application(
    *, session: Session, actor: User, application_id: int, reason: str, legal_basis: str
) -> Application:
    app = _reviewable(session, actor, application_id)
    if not reason.strip() or not legal_basis.strip():
        raise ValidationFailed(
            "a refusal states its reason and its legal basis (law, regulation or rule)",
            rule="refusal-needs-basis",
            article=ART_REVIEW,
        )
    _decide(app, actor, ApplicationStatus.refused, reason=reason, legal_basis=legal_basis)
    record(
        session,
        actor=actor.username,
        action="application.refuse",
        object=f"application:{app.id}",
        details={"reason": reason, "legal_basis": legal_basis},
    )
    return app


def approve_application(
    *, session: Session, actor: User, application_id: int, scope: str, agreement: Agreement
) -> AgreementRecord:
    """Approve with a statement of purpose and scope, and sign the agreement it produces.

    The agreement's datasets and columns may narrow the application, never widen it.
    """
    app = _reviewable(session, actor, application_id)
    if not scope.strip():
        raise ValidationFailed(
            "an approval states the purpose and scope of use",
            rule="approval-scope",
            article=ART_REVIEW,
        )
    for name, part in agreement.datasets.items():
        wider = set(part.columns) - set(app.datasets.get(name, []))
        if name not in app.datasets or wider:
            raise PolicyViolation(
                "agreement-within-application",
                ART_REVIEW,
                f"the agreement may only narrow the application; {name} "
                + (
                    "was not applied for"
                    if name not in app.datasets
                    else f"columns {', '.join(sorted(wider))} were not applied for"
                ),
            )
    application_user = session.get(User, app.applicant_id)
    if application_user is None or application_user.username not in agreement.researchers:
        raise ValidationFailed(
            "the agreement must name the applicant among its researchers",
            rule="agreement-researchers",
        )
    _decide(app, actor, ApplicationStatus.approved, reason=agreement.purpose)
    app.approved_scope = scope
    app.agreement_id = agreement.id
    record(
        session,
        actor=actor.username,
        action="application.approve",
        object=f"application:{app.id}",
        details={"scope": scope, "agreement": agreement.id},
    )
    return import_agreement(
        session=session, actor=actor, agreement=agreement, application_id=app.id
    )


def _reviewable(session: Session, actor: User, application_id: int) -> Application:
    app = get_application(session, actor, application_id)
    require_provider_of(actor, app.provider)
    if app.status != ApplicationStatus.under_review:
        raise InvalidStateTransition(
            f"application {app.id} is {app.status}; only applications under review are decided",
            rule="application-state",
        )
    return app


def _decide(app: Application, actor: User, status: ApplicationStatus, **texts: str) -> None:
    app.status = status
    app.decided_at = utcnow()
    app.decided_by = actor.username
    app.decision_reason = texts.get("reason", "")
    app.legal_basis = texts.get("legal_basis", "")
