"""The researcher's export requests: create one in an output form, submit, withdraw, download.

Nothing leaves a workspace except through an export request (THREAT_MODEL
boundary 3). The form offers exactly the output forms the agreement allows, each
explained in one sentence (``export_review.forms``); a figure is a chart
specification drawn by the platform from one CSV table or one of the author's DP
releases. The automatic checks run at submission and their verdict is the first
thing the request's page shows; a provider reviews; only the signed bundle of a
released request is downloaded (``/api/exports/{id}/bundle``). Every rule is
``export_review``'s: these routes only call it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from export_review.file_gate import EXTENSIONS
from export_review.forms import allowed_forms
from export_review.requests import (
    create_request,
    files_of,
    get_request,
    list_requests,
    submit_request,
    withdraw_request,
)
from export_review.workflow import TRANSITIONS, ExportAction
from sandbox.agreements.service import as_contract, visible_agreement
from sandbox.api.routes.query_service import ServiceDep
from sandbox.http.deps import DbDep, ResearcherDep, SettingsDep
from sandbox.input_limits import LongText, Sql
from sandbox.web.export_views import shown_file
from sandbox.web.form_refusal import shows_again
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/researcher")


@router.get("/agreements/{agreement_id}/exports/new")
def new_export(request: Request, agreement_id: str, db: DbDep, user: ResearcherDep) -> HTMLResponse:
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
        forms = allowed_forms(as_contract(rec))
        releases = [
            r for r in list_requests(session, user, rec.id)
            if r.kind == "dp" and r.dp_result is not None and r.author == user.username
        ]  # fmt: skip
    kinds = {k for f in forms for k in f.file_kinds}
    accept = ",".join(sorted(s for s, k in EXTENSIONS.items() if k in kinds))
    return render(
        request,
        "researcher/export_new.html",
        {"rec": rec, "forms": forms, "accept": accept, "releases": releases},
    )


@router.post("/agreements/{agreement_id}/exports")
@shows_again(
    "/researcher/agreements/{agreement_id}/exports/new", form="export-form",
    # the draft's own refusals (at submission the draft is kept: those refusals are not here)
    rules={"export-purpose": "purpose", "export-content": "files", "export-file-name": "files",
           "export-output-form": "form", "export-chart": None, "export-dp-source": "dp_source"},
    labels={"purpose": "export_purpose", "files": "export_files", "form": "output_form",
            "queries": "export_queries"},
)  # fmt: skip
def create(
    agreement_id: str,
    db: DbDep,
    settings: SettingsDep,
    user: ResearcherDep,
    service: ServiceDep,
    form: Annotated[str, Form(max_length=16)] = "",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006  (FastAPI copies defaults)
    purpose: Annotated[LongText, Form()] = "",
    queries: Annotated[list[Sql], Form()] = [],  # noqa: B006
    chart_kind: Annotated[str, Form(max_length=16)] = "bar",
    chart_x: Annotated[str, Form(max_length=200)] = "",
    chart_y: Annotated[str, Form(max_length=1000)] = "",
    chart_series: Annotated[str, Form(max_length=200)] = "",
    chart_title: Annotated[str, Form(max_length=400)] = "",
    chart_x_label: Annotated[str, Form(max_length=200)] = "",
    chart_y_label: Annotated[str, Form(max_length=200)] = "",
    dp_source: Annotated[str, Form(max_length=12)] = "",
    action: Annotated[Literal["save", "submit"], Form()] = "submit",
) -> RedirectResponse:
    """Keep the draft; on "submit" hand it in at once, so the checks' verdict is shown next."""
    content = [(f.filename, f.file.read()) for f in files if f.filename]
    figure = form == "figure"
    chart = {
        "kind": chart_kind, "x": chart_x.strip(),
        "y": [c.strip() for c in chart_y.split(",") if c.strip()],
        "series": chart_series.strip() or None, "title": chart_title.strip(),
        "x_label": chart_x_label.strip(), "y_label": chart_y_label.strip(),
    }  # fmt: skip
    with db.tx() as session:
        req = create_request(
            session=session, settings=settings, actor=user, agreement_id=agreement_id,
            purpose=purpose, form=form, files=content,
            queries=[q.strip() for q in queries if q.strip()],
            chart=chart if figure else None,
            dp_source=int(dp_source) if figure and dp_source.isdigit() else None,
        )  # fmt: skip
        request_id = req.id
    if action == "submit":
        with db.tx() as session:
            submit_request(session=session, actor=user, request_id=request_id,
                           cursors=service.cache.cursor)  # fmt: skip
    return see_other(f"/researcher/exports/{request_id}")


@router.get("/exports/{request_id}")
def show(request: Request, request_id: int, db: DbDep, user: ResearcherDep) -> HTMLResponse:
    with db.tx() as session:
        req = get_request(session, user, request_id)
        context = {
            "req": req,
            "files": [shown_file(session, req, f) for f in files_of(session, req)],
            "can_submit": (req.status, ExportAction.submit) in TRANSITIONS,
            "can_withdraw": (req.status, ExportAction.withdraw) in TRANSITIONS,
        }
    return render(request, "researcher/export.html", context)


@router.post("/exports/{request_id}/submit")
def submit(
    request_id: int, db: DbDep, user: ResearcherDep, service: ServiceDep
) -> RedirectResponse:
    with db.tx() as session:
        submit_request(session=session, actor=user, request_id=request_id,
                       cursors=service.cache.cursor)  # fmt: skip
    return see_other(f"/researcher/exports/{request_id}")


@router.post("/exports/{request_id}/withdraw")
def withdraw(request_id: int, db: DbDep, user: ResearcherDep) -> RedirectResponse:
    with db.tx() as session:
        withdraw_request(session=session, actor=user, request_id=request_id)
    return see_other(f"/researcher/exports/{request_id}")
