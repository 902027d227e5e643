"""The provider's pages: the application queue and review, agreements, objections and
complaints. Publishing is in ``publish.py``, export review in ``export_review.py``.

Review (Wuxi Art.15(3); Rizhao Art.20): approval states scope and builds the
agreement from fields prefilled from the application; refusal needs a reason
and its legal basis, which the service insists on.

The dataset list shows where each entry's catalogue review stands; a proposal
still under review can be withdrawn there, with a reason (Shanghai Art.12).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from export_review.requests import list_requests
from query_guard.early_warning.service import list_alerts
from sandbox.accounts.models import User
from sandbox.agreements.service import export_agreement, list_agreements, visible_agreement
from sandbox.applications.models import Application
from sandbox.applications.service import (
    approve_application,
    get_application,
    list_applications,
    refuse_application,
)
from sandbox.catalog.models import Dataset
from sandbox.catalog.review import (
    can_withdraw,
    latest_reviews,
    withdraw_review,
    withdrawal_reason,
)
from sandbox.clock import today
from sandbox.contracts.agreement import OUTPUT_FORMS, REPORT_FREQUENCIES
from sandbox.feedback.complaints import handle_complaint, list_complaints
from sandbox.feedback.models import ComplaintStatus, ObjectionStatus
from sandbox.feedback.objections import handle_objection, list_objections
from sandbox.http.deps import CalendarDep, DbDep, ProviderDep, UserDep
from sandbox.input_limits import LongText, Name
from sandbox.web.form_refusal import required, shows_again
from sandbox.web.forms import ApprovalForm, agreement_from_form
from sandbox.web.rendering import page_router, render, see_other
from sandbox.web.views import review_clock

router = page_router("/provider")


@router.get("")
def home(request: Request, db: DbDep, user: ProviderDep, calendar: CalendarDep) -> HTMLResponse:
    day = today()
    with db.tx() as session:
        datasets = session.scalars(
            select(Dataset).where(Dataset.provider == user.organisation).order_by(Dataset.name)
        ).all()
        reviews = latest_reviews(session, [d.id for d in datasets])
        by_id = {d.id: d for d in datasets}
        context = {
            "queue": [
                {"app": a, "clock": review_clock(a, day, calendar)}
                for a in list_applications(session, user)
            ],
            "datasets": datasets,
            "reviews": reviews,
            "withdrawable": {
                r.id for r in reviews.values() if can_withdraw(user, r, by_id[r.dataset_id])
            },
            "withdrawal_reasons": {
                r.id: withdrawal_reason(session, r)
                for r in reviews.values()
                if r.status == "withdrawn"
            },
            "agreements": list_agreements(session, user),
            "objections": list_objections(session, user),
            "complaints": list_complaints(session, user),
            "alerts": list_alerts(session, user),
            "exports": list_requests(session, user),
            "dataset_names": {d.id: d.name for d in datasets},
        }
    return render(request, "provider/home.html", context)


def _prefilled(app: Application, day: date) -> ApprovalForm:
    """The approval form as the application asked: the provider narrows, never widens."""
    wanted = [f"{name}.{col}" for name, cols in app.datasets.items() for col in cols]
    scope = "; ".join(f"{name}: {', '.join(cols)}" for name, cols in app.datasets.items())
    return ApprovalForm(
        scope=f"{scope} — {app.purpose}",
        agreement_id=f"AGR-{day.year}-{app.id:04d}",
        title=app.title,
        purpose=app.purpose,
        mode=app.mode if app.mode in ("aggregate", "record") else "aggregate",
        valid_from=app.usage_from,
        valid_until=app.usage_until,
        columns=wanted,
        outputs=[f for f in app.output_forms if f in OUTPUT_FORMS],
        usage_reports="quarterly",
    )


@router.get("/applications/{application_id}")
def review(
    request: Request, application_id: int, db: DbDep, user: ProviderDep, calendar: CalendarDep
) -> HTMLResponse:
    with db.tx() as session:
        app = get_application(session, user, application_id)
        applicant = session.get(User, app.applicant_id)
        context = {
            "app": app,
            "applicant": applicant,
            "clock": review_clock(app, today(), calendar),
            "approval": _prefilled(app, today()),
            "output_forms": OUTPUT_FORMS,
            "report_frequencies": REPORT_FREQUENCIES,
        }
    return render(request, "provider/review.html", context)


@router.post("/applications/{application_id}/approve")
@shows_again(
    "/provider/applications/{application_id}", form="approve-form",
    rules={"approval-scope": "scope", "agreement-within-application": "columns",
           "agreement-researchers": None, "agreement": None},
    labels={"scope": "approved_scope", "valid_from": "usage_from", "valid_until": "usage_until",
            "columns": "fields_granted"},
)  # fmt: skip
def approve(
    application_id: int, db: DbDep, user: ProviderDep, form: Annotated[ApprovalForm, Form()]
) -> RedirectResponse:
    with db.tx() as session:
        app = get_application(session, user, application_id)
        applicant = session.get_one(User, app.applicant_id)
        agreement = agreement_from_form(form, app, user.organisation, applicant.username)
        rec = approve_application(
            session=session, actor=user, application_id=application_id, scope=form.scope,
            agreement=agreement,
        )  # fmt: skip
        agreement_id = rec.id
    return see_other(f"/provider/agreements/{agreement_id}")


@router.post("/applications/{application_id}/refuse")
@shows_again(
    "/provider/applications/{application_id}", form="refuse-form",
    rules={"refusal-needs-basis": required("reason", "legal_basis")},
    labels={"reason": "refusal_reason"},
)  # fmt: skip
def refuse(
    application_id: int,
    db: DbDep,
    user: ProviderDep,
    reason: Annotated[LongText, Form()] = "",
    legal_basis: Annotated[Name, Form()] = "",
) -> RedirectResponse:
    with db.tx() as session:
        refuse_application(
            session=session, actor=user, application_id=application_id, reason=reason,
            legal_basis=legal_basis,
        )  # fmt: skip
    return see_other(f"/provider/applications/{application_id}")


@router.get("/agreements/{agreement_id}")
def agreement(request: Request, agreement_id: str, db: DbDep, user: ProviderDep) -> HTMLResponse:
    """The signed agreement and its YAML: the policy the sandbox enforces (R5)."""
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
        text = export_agreement(session, user, agreement_id)
    return render(request, "provider/agreement.html", {"rec": rec, "yaml": text})


@router.post("/objections/{objection_id}")
def objection(
    objection_id: int,
    db: DbDep,
    user: ProviderDep,
    to: Annotated[ObjectionStatus, Form()],
    answer: Annotated[LongText, Form()] = "",
) -> RedirectResponse:
    """Confirming marks the dataset under objection at once (Shanghai Art.21)."""
    with db.tx() as session:
        handle_objection(
            session=session, actor=user, objection_id=objection_id, to=to, answer=answer
        )
    return see_other("/provider#objections")


@router.post("/complaints/{complaint_id}")
def complaint(
    complaint_id: int,
    db: DbDep,
    user: ProviderDep,
    to: Annotated[ComplaintStatus, Form()],
    answer: Annotated[LongText, Form()] = "",
) -> RedirectResponse:
    """Suspend the opening where needed, then withdraw, restore or dismiss (Shanghai Art.22)."""
    with db.tx() as session:
        handle_complaint(
            session=session, actor=user, complaint_id=complaint_id, to=to, answer=answer
        )
    return see_other("/provider#complaints")


@router.post("/catalog-reviews/{review_id}/withdraw")
def withdraw_catalog_review(
    review_id: int, db: DbDep, user: UserDep, reason: Annotated[str, Form()] = ""
) -> RedirectResponse:
    """Take a proposal back before the authority decides. Any signed-in user reaches the
    service, so that the authority or another provider is refused with its rule and article."""
    with db.tx() as session:
        withdraw_review(session=session, actor=user, review_id=review_id, reason=reason)
    return see_other("/provider#datasets")
