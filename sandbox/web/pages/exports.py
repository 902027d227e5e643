"""The researcher's export requests: create one with files, submit, withdraw, download.

Nothing leaves a workspace except through an export request (THREAT_MODEL
boundary 3). The automatic checks run at submission and their verdict is the
first thing the request's page shows; a provider reviews; only the signed
bundle of a released request is downloaded (``/api/exports/{id}/bundle``).
Every rule is ``export_review``'s: these routes only call it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from export_review.file_gate import EXTENSIONS
from export_review.requests import (
    create_request,
    files_of,
    get_request,
    submit_request,
    withdraw_request,
)
from export_review.workflow import TRANSITIONS, ExportAction
from sandbox.agreements.service import visible_agreement
from sandbox.api.deps import DbDep, ResearcherDep, SettingsDep
from sandbox.input_limits import Document, LongText, Sql
from sandbox.web.export_views import shown_file
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/researcher")


@router.get("/agreements/{agreement_id}/exports/new")
def new_export(request: Request, agreement_id: str, db: DbDep, user: ResearcherDep) -> HTMLResponse:
    with db.tx() as session:
        rec = visible_agreement(session, user, agreement_id)
    return render(
        request,
        "researcher/export_new.html",
        {"rec": rec, "accept": ",".join(sorted(EXTENSIONS))},
    )


@router.post("/agreements/{agreement_id}/exports")
def create(
    agreement_id: str,
    db: DbDep,
    settings: SettingsDep,
    user: ResearcherDep,
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006  (FastAPI copies defaults)
    purpose: Annotated[LongText, Form()] = "",
    queries: Annotated[list[Sql], Form()] = [],  # noqa: B006
    figure: Annotated[list[str], Form()] = [],  # noqa: B006
    figure_data: Annotated[list[Document], Form()] = [],  # noqa: B006
    action: Annotated[Literal["save", "submit"], Form()] = "submit",
) -> RedirectResponse:
    """Keep the draft; on "submit" hand it in at once, so the checks' verdict is shown next."""
    content = [(f.filename, f.file.read()) for f in files if f.filename]
    with db.tx() as session:
        req = create_request(
            session=session, settings=settings, actor=user, agreement_id=agreement_id,
            purpose=purpose, files=content, queries=[q.strip() for q in queries if q.strip()],
            figure_data={f: d for f, d in zip(figure, figure_data, strict=False) if f and d},
        )  # fmt: skip
        request_id = req.id
    if action == "submit":
        with db.tx() as session:
            submit_request(session=session, actor=user, request_id=request_id)
    return see_other(f"/researcher/exports/{request_id}")


@router.get("/exports/{request_id}")
def show(request: Request, request_id: int, db: DbDep, user: ResearcherDep) -> HTMLResponse:
    with db.tx() as session:
        req = get_request(session, user, request_id)
        context = {
            "req": req,
            "files": [shown_file(f) for f in files_of(session, req)],
            "can_submit": (req.status, ExportAction.submit) in TRANSITIONS,
            "can_withdraw": (req.status, ExportAction.withdraw) in TRANSITIONS,
        }
    return render(request, "researcher/export.html", context)


@router.post("/exports/{request_id}/submit")
def submit(request_id: int, db: DbDep, user: ResearcherDep) -> RedirectResponse:
    with db.tx() as session:
        submit_request(session=session, actor=user, request_id=request_id)
    return see_other(f"/researcher/exports/{request_id}")


@router.post("/exports/{request_id}/withdraw")
def withdraw(request_id: int, db: DbDep, user: ResearcherDep) -> RedirectResponse:
    with db.tx() as session:
        withdraw_request(session=session, actor=user, request_id=request_id)
    return see_other(f"/researcher/exports/{request_id}")
