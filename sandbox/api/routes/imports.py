"""Import requests over HTTP: a researcher asks for a file to enter the agreement's
workspaces, the provider reviews it (export_review/imports.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from export_review.file_gate import MAX_BYTES
from export_review.imports import (
    approve_import,
    create_import,
    get_import,
    list_imports,
    reject_import,
    withdraw_import,
)
from export_review.models import ImportRequest
from sandbox.errors import NotFound
from sandbox.http.deps import DbDep, ProviderDep, ResearcherDep, SettingsDep, UserDep

router = APIRouter(prefix="/api/imports", tags=["imports"])


def import_view(req: ImportRequest) -> dict[str, Any]:
    return {
        "id": req.id,
        "agreement_id": req.agreement_id,
        "author": req.author,
        "purpose": req.purpose,
        "name": req.name,
        "size": req.size,
        "sha256": req.sha256,
        "kind": req.kind,
        "checks": req.checks,
        "status": req.status,
        "answer": req.answer,
        "approvals": req.approvals,
        "delivered_to": req.delivered_to,
        "created_at": req.created_at,
    }


@router.post("", status_code=201)
def create(
    db: DbDep,
    settings: SettingsDep,
    user: ResearcherDep,
    agreement_id: Annotated[str, Form()],
    purpose: Annotated[str, Form()],
    file: UploadFile,
) -> dict[str, Any]:
    """One file for the agreement's workspaces, with what it is for; checked at once
    (``status`` is ``in_review`` or ``refused``, with the rule in ``checks``)."""
    data = file.file.read(MAX_BYTES + 1)  # one byte more tells a file that is too large
    with db.tx() as session:
        req = create_import(
            session=session,
            settings=settings,
            actor=user,
            agreement_id=agreement_id,
            purpose=purpose,
            name=file.filename or "",
            data=data,
        )
        return import_view(req)


@router.get("")
def index(db: DbDep, user: UserDep, agreement_id: str | None = None) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [import_view(r) for r in list_imports(session, user, agreement_id)]


@router.get("/{request_id}")
def show(request_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        return import_view(get_import(session, user, request_id))


@router.get("/{request_id}/file")
def file(request_id: int, db: DbDep, user: UserDep) -> Response:
    """The file as handed in, as text for the reviewer to read (never rendered)."""
    with db.tx() as session:
        req = get_import(session, user, request_id)
    path = Path(req.path) if req.path else None
    if path is None or not path.is_file():
        raise NotFound(
            f"import request {request_id} keeps no file (refused, or destroyed with the "
            "agreement's workspace files)",
            rule="import-file",
        )
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"}
    return Response(path.read_bytes(), media_type="text/plain; charset=utf-8", headers=headers)


class DecisionIn(BaseModel):
    reason: str = ""


@router.post("/{request_id}/withdraw")
def withdraw(request_id: int, db: DbDep, user: ResearcherDep) -> dict[str, Any]:
    with db.tx() as session:
        return import_view(withdraw_import(session=session, actor=user, request_id=request_id))


@router.post("/{request_id}/approve")
def approve(
    request_id: int, body: DecisionIn, db: DbDep, settings: SettingsDep, user: ProviderDep
) -> dict[str, Any]:
    """A provider reviewer's approval; enough of them deliver the file into the agreement's
    project folder (``delivered_to``)."""
    with db.tx() as session:
        req = approve_import(
            session=session, settings=settings, actor=user, request_id=request_id,
            reason=body.reason,
        )  # fmt: skip
        return import_view(req)


@router.post("/{request_id}/reject")
def reject(request_id: int, body: DecisionIn, db: DbDep, user: ProviderDep) -> dict[str, Any]:
    """The provider refuses the file, with the reason the author reads."""
    with db.tx() as session:
        req = reject_import(session=session, actor=user, request_id=request_id, reason=body.reason)
        return import_view(req)
