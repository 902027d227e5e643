"""Export requests over HTTP: researchers submit, provider reviewers decide (issue 4)."""

from __future__ import annotations

import json
import mimetypes
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from export_review.at_rest import bundle_zip, plain_copies, read_export_file
from export_review.chart import PNG_FILE, SVG_FILE
from export_review.models import ExportRequest
from export_review.requests import (
    create_request,
    figure_files,
    files_of,
    get_request,
    list_requests,
    review_request,
    submit_request,
    withdraw_request,
)
from export_review.workflow import ExportAction, ExportStatus
from sandbox.api.routes.query_service import ServiceDep
from sandbox.db.sealed import session_key_store
from sandbox.errors import NotFound, ValidationFailed
from sandbox.http.deps import DbDep, ProviderDep, ResearcherDep, SettingsDep, UserDep

router = APIRouter(prefix="/api/exports", tags=["exports"])
#: A drawn figure opened on its own runs nothing and loads nothing (its styles are inline).
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def export_view(req: ExportRequest, files: list[str]) -> dict[str, Any]:
    return {
        "id": req.id,
        "agreement_id": req.agreement_id,
        "author": req.author,
        "kind": req.kind,
        "form": req.form,
        "purpose": req.purpose,
        "queries": req.queries,
        "files": files,
        "chart": req.chart,
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
    form: Annotated[str, Form()] = "",
    files: list[UploadFile] | None = None,
    queries: Annotated[str, Form()] = "",
    chart: Annotated[str, Form()] = "",
    dp_source: Annotated[int | None, Form()] = None,
) -> dict[str, Any]:
    """A draft in one output ``form`` (``export_review.forms``): files (CSV tables, reports,
    notebooks, scripts), or for a figure its ``chart`` specification (JSON) with one CSV
    table or ``dp_source``, the id of one of the author's DP releases."""
    content = [(f.filename or "", f.file.read()) for f in files or []]
    with db.tx() as session:
        req = create_request(
            session=session,
            settings=settings,
            actor=user,
            agreement_id=agreement_id,
            purpose=purpose,
            form=form,
            files=content,
            queries=json_field(queries, "queries", []),
            chart=json_field(chart, "chart", None),
            dp_source=dp_source,
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
def submit(request_id: int, db: DbDep, user: ResearcherDep, service: ServiceDep) -> dict[str, Any]:
    """Hand in a draft; its tables are re-checked through the process's own connections."""
    with db.tx() as session:
        req = submit_request(
            session=session, actor=user, request_id=request_id, cursors=service.cache.cursor
        )
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
def file(request_id: int, name: str, db: DbDep, user: UserDep) -> Response:
    """One submitted file, for the reviewer's side-by-side view (and its author), decrypted
    in memory (export_review/at_rest.py)."""
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
        content = read_export_file(session_key_store(session), req.agreement_id, match[0])
    media = mimetypes.guess_type(name)[0] or "text/plain"
    return Response(content, media_type=media, headers=_attachment(name))


def _attachment(name: str) -> dict[str, str]:
    """The download's file name, as FastAPI's FileResponse gives it."""
    quoted = quote(name)
    if quoted == name:
        return {"Content-Disposition": f'attachment; filename="{name}"'}
    return {"Content-Disposition": f"attachment; filename*=utf-8''{quoted}"}


@router.get("/{request_id}/figure/{name}")
def figure(request_id: int, name: str, db: DbDep, user: UserDep) -> Response:
    """The platform's drawing of a figure request (PNG or SVG), as it will be released: the
    reviewer sees it beside its table, drawn from the specification and the table alone."""
    with db.tx() as session:
        req = get_request(session, user, request_id)
        files = files_of(session, req)
        store = session_key_store(session)
    if req.form != "figure" or name not in (PNG_FILE, SVG_FILE):
        raise NotFound(f"export request {request_id} has no figure {name!r}", rule="export-figure")
    if not all(Path(f.path).is_file() for f in files):
        raise NotFound(
            f"the table behind this figure was destroyed with the workspace files when "
            f"agreement {req.agreement_id} ended",
            rule="export-file-destroyed",
            article="Rizhao Art.31",
        )
    with (
        plain_copies(store, req.agreement_id, files) as paths,
        tempfile.TemporaryDirectory(prefix="figure-") as tmp,
    ):
        drawn = {p.name: p.read_bytes() for p in figure_files(req, paths, Path(tmp))}
    media = "image/png" if name == PNG_FILE else "image/svg+xml"
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}
    return Response(drawn[name], media_type=media, headers=headers)


@router.get("/{request_id}/bundle")
def bundle(request_id: int, db: DbDep, user: UserDep) -> Response:
    """The released, signed bundle as a zip, its files decrypted; nothing else ever leaves
    the platform."""
    with db.tx() as session:
        req = get_request(session, user, request_id)
        store = session_key_store(session)
    if req.status != ExportStatus.released or not req.bundle_path:
        raise NotFound(f"export request {request_id} has no released bundle", rule="export-bundle")
    path = Path(req.bundle_path)
    headers = _attachment(f"{path.name}.zip")
    return Response(bundle_zip(store, path), media_type="application/zip", headers=headers)
