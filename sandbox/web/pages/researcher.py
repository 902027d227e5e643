"""The researcher's pages: applications with completeness help, agreements, usage reports
(export requests are in ``exports.py``).

The completeness help is the service's own ``missing_items`` list, shown while
the form is filled in (``/researcher/applications/check``) and again on
submission, which the service refuses while anything is missing (Wuxi Art.15(1)-(2)).
A researcher whose real name is not verified is told so above the form: the draft
can be prepared, but its submission is refused (Wuxi Art.6).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from export_review.requests import list_requests
from sandbox.accounts.models import User
from sandbox.agreements.service import list_agreements, visible_agreement
from sandbox.applications.models import Application
from sandbox.applications.service import (
    create_application,
    get_application,
    list_applications,
    missing_items,
    submit_application,
    update_application,
)
from sandbox.clock import today
from sandbox.contracts.agreement import OUTPUT_FORMS
from sandbox.errors import SandboxError
from sandbox.feedback.usage import report_schedule, submit_usage_report
from sandbox.http.deps import CalendarDep, DbDep, ResearcherDep, SettingsDep
from sandbox.http.http_errors import http_status
from sandbox.identity.organisations import REAL_NAME_ARTICLE, has_real_name
from sandbox.input_limits import LongText
from sandbox.web.form_refusal import shows_again
from sandbox.web.forms import ApplicationForm, draft_of
from sandbox.web.rendering import page_router, render, see_other
from sandbox.web.views import applicable_datasets, epsilon_left, review_clock
from sandbox.workcalendar import WorkCalendar
from sandbox.workspaces.availability import hub_answers, workspace_link
from sandbox.workspaces.limits import shown_limits

router = page_router("/researcher")


@router.get("")
def home(
    request: Request, db: DbDep, user: ResearcherDep, settings: SettingsDep, calendar: CalendarDep
) -> HTMLResponse:
    day = today()
    hub_up = hub_answers(settings.hub_url, settings.tls_ca)
    with db.tx() as session:
        applications = [
            {"app": a, "clock": review_clock(a, day, calendar)}
            for a in list_applications(session, user)
        ]
        agreements = [
            {
                "rec": rec,
                "epsilon_left": epsilon_left(session, rec),
                "workspace": workspace_link(settings, hub_up, user.username, rec.id),
            }
            for rec in list_agreements(session, user)
        ]
        exports = list_requests(session, user)
    return render(
        request,
        "researcher/home.html",
        {"applications": applications, "agreements": agreements, "exports": exports},
    )


def _application_page(
    request: Request, session: Session, user: User, calendar: WorkCalendar,
    app: Application | None, form_app: Application, error: SandboxError | None = None,
) -> HTMLResponse:  # fmt: skip
    """The application form (a draft) or its read-out (submitted), with what is missing
    and, for an applicant not yet real-name verified, a notice before the form."""
    clock = review_clock(app, today(), calendar) if app is not None else None
    return render(
        request,
        "researcher/application.html",
        {
            "app": app,
            "clock": clock,
            "form": form_app,
            "columns": [f"{n}.{c}" for n, cols in (form_app.datasets or {}).items() for c in cols],
            "missing": missing_items(session, form_app),
            "catalogue": applicable_datasets(session),
            "output_forms": OUTPUT_FORMS,
            "error": error,
            "real_name": has_real_name(session, user),
            "real_name_article": REAL_NAME_ARTICLE,
            "limits": shown_limits(),
        },
        status_code=http_status(error) if error else 200,
    )


@router.get("/applications/new")
def new_application(
    request: Request, db: DbDep, user: ResearcherDep, calendar: CalendarDep
) -> HTMLResponse:
    with db.tx() as session:
        blank = draft_of(ApplicationForm(), user.id)
        return _application_page(request, session, user, calendar, None, blank)


@router.post("/applications/check")
def check_application(
    request: Request, db: DbDep, user: ResearcherDep, form: Annotated[ApplicationForm, Form()]
) -> HTMLResponse:
    """The live completeness help: what the form as filled in still lacks. Nothing is saved."""
    with db.tx() as session:
        missing = missing_items(session, draft_of(form, user.id))
    return render(request, "researcher/_missing.html", {"missing": missing})


def _save_and_maybe_submit(
    request: Request, db: DbDep, user: User, calendar: CalendarDep, form: ApplicationForm,
    application_id: int | None,
) -> Response:  # fmt: skip
    """Keep the draft (always), then submit it if asked; a refused submission keeps the draft
    and shows the form again with the refusal and the missing items."""
    with db.tx() as session:
        if application_id is None:
            app = create_application(session=session, actor=user, fields=form.fields())
        else:
            app = update_application(
                session=session, actor=user, application_id=application_id, fields=form.fields()
            )
        application_id = app.id
    if form.action == "submit":
        try:
            with db.tx() as session:
                submit_application(
                    session=session, actor=user, application_id=application_id, today=today(),
                    calendar=calendar,
                )  # fmt: skip
        except SandboxError as exc:
            with db.tx() as session:
                app = get_application(session, user, application_id)
                return _application_page(request, session, user, calendar, app, app, exc)
    return see_other(f"/researcher/applications/{application_id}")


#: The application form's fields whose label is not their name.
_APPLICATION_LABELS = {"columns": "datasets_and_fields", "commitment_signed": "commitment"}


@router.post("/applications")
@shows_again("/researcher/applications/new", form="application-form", labels=_APPLICATION_LABELS)
def create(
    request: Request, db: DbDep, user: ResearcherDep, calendar: CalendarDep,
    form: Annotated[ApplicationForm, Form()],
) -> Response:  # fmt: skip
    return _save_and_maybe_submit(request, db, user, calendar, form, None)


@router.get("/applications/{application_id}")
def show_application(
    request: Request, application_id: int, db: DbDep, user: ResearcherDep, calendar: CalendarDep
) -> HTMLResponse:
    with db.tx() as session:
        app = get_application(session, user, application_id)
        return _application_page(request, session, user, calendar, app, app)


@router.post("/applications/{application_id}")
@shows_again(
    "/researcher/applications/{application_id}", form="application-form",
    labels=_APPLICATION_LABELS,
)  # fmt: skip
def update(
    request: Request, application_id: int, db: DbDep, user: ResearcherDep, calendar: CalendarDep,
    form: Annotated[ApplicationForm, Form()],
) -> Response:  # fmt: skip
    return _save_and_maybe_submit(request, db, user, calendar, form, application_id)


@router.get("/agreements/{agreement_id}")
def agreement(
    request: Request, agreement_id: str, db: DbDep, user: ResearcherDep, settings: SettingsDep
) -> HTMLResponse:
    hub_up = hub_answers(settings.hub_url, settings.tls_ca)
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
        context = {
            "rec": rec,
            "epsilon_left": epsilon_left(session, rec),
            "workspace": workspace_link(settings, hub_up, user.username, rec.id),
            "schedule": report_schedule(session, rec, today()),
            "exports": list_requests(session, user, rec.id),
            "limits": shown_limits(),
        }
    return render(request, "researcher/agreement.html", context)


@router.post("/agreements/{agreement_id}/usage-reports")
def usage_report(
    agreement_id: str,
    db: DbDep,
    user: ResearcherDep,
    period_end: Annotated[date, Form()],
    summary: Annotated[LongText, Form()] = "",
    outputs: Annotated[LongText, Form()] = "",
) -> RedirectResponse:
    """How the data was used, and what was built on it naming its source (Shanghai Art.25)."""
    with db.tx() as session:
        submit_usage_report(
            session=session, actor=user, agreement_id=agreement_id, period_end=period_end,
            summary=summary, outputs=outputs,
        )  # fmt: skip
    return see_other(f"/researcher/agreements/{agreement_id}")
