"""Export requests over HTTP: researchers submit, provider reviewers decide (issue 4)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from export_review.models import ExportRequest
from export_review.requests import (
    create_request,
    files_of,
    get_request,
    list_requests,
    review_request,
    submit_request,
    withdraw_request,
)
from export_review.workflow import ExportAction, ExportStatus
from sandbox.api.deps import DbDep, ProviderDep, ResearcherDep, SettingsDep, UserDep
from sandbox.errors import NotFound, ValidationFailed

router = APIRouter(prefix="/api/exports", tags=["exports"])


def export_view(req: ExportRequest, files: list[str]) -> dict[str, Any]:
    return {
        "id": req.id,
        "agreement_id": req.agreement_id,
        "author": req.author,
        "kind": req.kind,
        "purpose": req.purpose,
        "queries": req.queries,
        "files": files,
        "figure_data": req.figure_data,
        "dp_result": req.dp_result,
        "checks": req.checks,
        "status": req.status,
        "status_reason": req.status_reason,
        "released": req.status == ExportStatus.released,
        "created_at": req.created_at,
    }


def json_field(text: str, name: str, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{name} must be JSON", rule="export-fields") from exc


@router.post("", status_code=201)
def create(
    db: DbDep,
    settings: SettingsDep,
    user: ResearcherDep,
    agreement_id: Annotated[str, Form()],
    purpose: Annotated[str, Form()],
    files: list[UploadFile],
    queries: Annotated[str, Form()] = "",
    figure_data: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """A draft with files (CSV tables, PNG figures, text/Markdown reports, JSON)."""
    content = [(f.filename or "", f.file.read()) for f in files]
    with db.tx() as session:
        req = create_request(
            session=session,
            settings=settings,
            actor=user,
            agreement_id=agreement_id,
            purpose=purpose,
            files=content,
            queries=json_field(queries, "queries", []),
            figure_data=json_field(figure_data, "figure_data", {}),
        )
        return export_view(req, [name for name, _ in content])


@router.get("")
def index(db: DbDep, user: UserDep, agreement_id: str | None = None) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [
            export_view(r, [f.name for f in files_of(session, r)])
            for r in list_requests(session, user, agreement_id)
        ]


@router.get("/{request_id}")
def show(request_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    """The request, and every earlier request of the same agreement (for the reviewer)."""
    with db.tx() as session:
        req = get_request(session, user, request_id)
        earlier = [r for r in list_requests(session, user, req.agreement_id) if r.id < req.id]
        return {
            **export_view(req, [f.name for f in files_of(session, req)]),
            "earlier": [export_view(r, []) for r in earlier],
        }


@router.post("/{request_id}/submit")
def submit(request_id: int, db: DbDep, user: ResearcherDep) -> dict[str, Any]:
    with db.tx() as session:
        req = submit_request(session=session, actor=user, request_id=request_id)
        return export_view(req, [f.name for f in files_of(session, req)])


@router.post("/{request_id}/withdraw")
def withdraw(request_id: int, db: DbDep, user: ResearcherDep) -> dict[str, Any]:
    with db.tx() as session:
        return export_view(withdraw_request(session=session, actor=user, request_id=request_id), [])


class DecisionIn(BaseModel):
    reason: str = ""


@router.post("/{request_id}/{action}")
def decide(
    request_id: int,
    action: ExportAction,
    body: DecisionIn,
    db: DbDep,
    settings: SettingsDep,
    user: ProviderDep,
) -> dict[str, Any]:
    """start_review, approve, return, reject or revoke (provider reviewers only)."""
    with db.tx() as session:
        req = review_request(
            session=session,
            settings=settings,
            actor=user,
            request_id=request_id,
            action=action,
            reason=body.reason,
        )
        return export_view(req, [f.name for f in files_of(session, req)])


@router.get("/{request_id}/files/{name}")
def file(request_id: int, name: str, db: DbDep, user: UserDep) -> FileResponse:
    """One submitted file, for the reviewer's side-by-side view (and its author)."""
    with db.tx() as session:
        req = get_request(session, user, request_id)
        match = [f for f in files_of(session, req) if f.name == name]
    if not match:
        raise NotFound(f"export request {request_id} has no file {name!r}", rule="export-file")
    if not Path(match[0].path).is_file():
        raise NotFound(
            f"{name!r} was destroyed with the workspace files when agreement "
            f"{req.agreement_id} ended",
            rule="export-file-destroyed",
            article="Rizhao Art.31",
        )
    return FileResponse(match[0].path, filename=name)


@router.get("/{request_id}/bundle")
def bundle(request_id: int, db: DbDep, user: UserDep, background: BackgroundTasks) -> FileResponse:
    """The released, signed bundle as a zip; nothing else ever leaves the platform."""
    with db.tx() as session:
        req = get_request(session, user, request_id)
    if req.status != ExportStatus.released or not req.bundle_path:
        raise NotFound(f"export request {request_id} has no released bundle", rule="export-bundle")
    folder = Path(tempfile.mkdtemp())
    archive = shutil.make_archive(str(folder / Path(req.bundle_path).name), "zip", req.bundle_path)
    background.add_task(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(archive, media_type="application/zip", filename=Path(archive).name)
