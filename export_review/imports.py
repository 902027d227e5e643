"""Import requests: the only way a file from outside enters a workspace (ingress under
review), reviewed and recorded as exports are.

A researcher of the agreement asks for one file with its purpose. The platform checks it at
once: its type (CSV, TXT/Markdown, JSON, notebooks without outputs or attachments, scripts:
the export file gate's kinds, all of them text checked as text, so a renamed binary is
refused), its size, and that it holds no resident ID number or social credit code (outside
identifiers are what a linkage attack needs; Rizhao Art.29, Putuo Art.32). A file that fails
is refused with its rule and kept as refused; one that passes waits for the agreement's
provider, who approves (as many reviewers as the agreement's review clause asks, never the
author) or rejects with a reason. Approval delivers it into the agreement's project folder,
``project/imports/<name>`` (sandbox/workspaces/imports.py), in the same transaction that
records it. Every move is in the record (``import.*``, Shanghai Art.20).

Why text only: the workspace's query engine reads no file, so an import can never be joined
with the provider's rows; what it can do is carry code, notes or public reference tables
(e.g. a district list) into the analysis, which a reviewer can read.
"""

from __future__ import annotations

import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.file_gate import EXTENSIONS, MAX_BYTES, has_identifier_value
from export_review.models import ImportRequest
from export_review.workflow import check_user_can_review
from sandbox.accounts.models import User
from sandbox.agreements.service import (
    as_contract,
    get_agreement,
    researchers_active_agreement,
    visible_agreement,
)
from sandbox.audit.record import record
from sandbox.db.base import utcnow
from sandbox.errors import NotFound, PermissionDenied, PolicyViolation, SandboxError
from sandbox.oversight.workflow import Workflow, advance
from sandbox.settings import Settings

#: The provider decides what enters the sandbox under the agreement's conditions of use
#: (Shanghai Art.15); every entry is in the full record (Shanghai Art.20). The same text
#: as the workspace server's refusal (query_guard/workspace_ingress.py).
ART_INGRESS = "Shanghai Art.15, 20; agreement clause imports"
_IDENTIFIERS = "Rizhao Art.29; Putuo Art.32"
#: What may be imported, as the refusals say it.
ALLOWED = "CSV, TXT/Markdown, JSON, notebooks (.ipynb) without outputs, scripts (.py, .sql, .R)"
#: The image the Docker delivery mounts the project volume in: the workspace image, named
#: by the same variable the hub reads (hub_config/settings.py ``image``).
IMAGE_ENV = "SANDBOX_HUB_IMAGE"
DEFAULT_IMAGE = "sandbox-workspace:latest"


class ImportStatus(StrEnum):
    submitted = "submitted"  # handed in; the automatic checks decide at once
    refused = "refused"  # the checks refused it (rule and reason kept)
    in_review = "in_review"  # checks passed: waiting for the provider
    approved = "approved"
    rejected = "rejected"  # the provider said no, with a reason
    delivered = "delivered"  # in the agreement's project folder, project/imports/
    withdrawn = "withdrawn"  # the author gave up before a decision


S = ImportStatus
#: (from, to) -> the move must carry a reason for the author.
IMPORTS = Workflow(
    "import",
    ART_INGRESS,
    {
        (S.submitted, S.in_review): False,
        (S.submitted, S.refused): True,
        (S.in_review, S.approved): False,
        (S.in_review, S.rejected): True,
        (S.in_review, S.withdrawn): False,
        (S.approved, S.delivered): False,
    },
    transition_rule="import-transition",
    answer_rule="import-answer",
)


def _refuse(rule: str, message: str, article: str = ART_INGRESS) -> PolicyViolation:
    return PolicyViolation(rule, article, message)


def check_import(name: str, data: bytes, *, max_bytes: int = MAX_BYTES) -> str:
    """The file's kind when it may be imported; otherwise :class:`PolicyViolation` with its
    rule. Pure: it reads only ``name`` and ``data``."""
    clean = Path(name).name
    if not clean or clean != name or clean.startswith(".") or len(clean) > 200:
        raise _refuse("import-file-name", f"{name!r} must be a plain file name without folders")
    kind = EXTENSIONS.get(Path(clean).suffix.lower())
    if kind is None:
        raise _refuse("import-file-type", f"{clean}: allowed are {ALLOWED}")
    if len(data) > max_bytes:
        raise _refuse(
            "import-file-size",
            f"{clean}: {len(data)} bytes; at most {max_bytes} bytes may be imported",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(
            "import-file-type", f"{clean}: is not UTF-8 text; allowed are {ALLOWED}"
        ) from None
    if any(ch in text for ch in "\x00\x1b\x7f"):
        raise _refuse(
            "import-file-type", f"{clean}: holds control characters, so it is not plain text"
        )
    if kind in ("json", "notebook"):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _refuse("import-file-type", f"{clean}: is not valid JSON") from None
        if kind == "notebook":
            _check_notebook(clean, parsed)
    if has_identifier_value(text.splitlines()):
        raise _refuse(
            "import-file-identifier",
            f"{clean}: holds a resident ID number or a social credit code; identifiers from "
            "outside are what linking records to persons needs, and never enter a workspace",
            _IDENTIFIERS,
        )
    return kind


def _check_notebook(name: str, notebook: Any) -> None:
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise _refuse("import-file-type", f"{name}: is not a notebook (nbformat 4)")
    if any(isinstance(c, dict) and (c.get("outputs") or c.get("attachments")) for c in cells):
        raise _refuse(
            "import-notebook-outputs",
            f"{name}: holds outputs or attachments; clear them (and remove attachments) first, "
            "so the reviewer reads everything that comes in",
        )


def create_import(
    *,
    session: Session,
    settings: Settings,
    actor: User,
    agreement_id: str,
    purpose: str,
    name: str,
    data: bytes,
) -> ImportRequest:
    """Hand in one file for the agreement's workspaces; the checks decide at once (a refused
    file is kept as ``refused`` with its rule, and recorded)."""
    rec = researchers_active_agreement(
        session, actor, agreement_id, what="import", rule="import-author", article=ART_INGRESS
    )
    if not purpose.strip():
        raise _refuse("import-purpose", "say what the file is for")
    req = ImportRequest(
        agreement_id=rec.id,
        author=actor.username,
        purpose=purpose.strip(),
        name=Path(name).name or "unnamed",
        path="",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        status=ImportStatus.submitted,
    )
    session.add(req)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="import.create",
        object=f"import:{req.id}",
        details={"agreement": rec.id, "name": req.name, "size": req.size, "sha256": req.sha256},
    )
    try:
        req.kind = check_import(name, data)
    except SandboxError as refusal:
        req.checks = {"refused": refusal.to_dict()}
        _advance(session, req, S.refused, "platform", str(refusal))
        return req
    folder = settings.data_dir / "imports" / str(req.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / req.name).write_bytes(data)
    req.path = str(folder / req.name)
    req.checks = {"kind": req.kind, "size": req.size, "identifiers": "none found"}
    _advance(session, req, S.in_review, "platform")
    return req


def _advance(
    session: Session, req: ImportRequest, to: ImportStatus, actor: str, answer: str = "", **details
) -> None:
    advance(
        session,
        IMPORTS,
        req,
        to=to,
        actor=actor,
        object=f"import:{req.id}",
        answer=answer,
        details={"agreement": req.agreement_id, "name": req.name, **details},
    )


def _get(session: Session, actor: User, request_id: int) -> ImportRequest:
    req = session.get(ImportRequest, request_id)
    if req is None:
        raise NotFound(f"import request {request_id} does not exist", rule="import-unknown")
    visible_agreement(session, actor, req.agreement_id)  # same visibility as the agreement
    return req


def get_import(session: Session, actor: User, request_id: int) -> ImportRequest:
    return _get(session, actor, request_id)


def list_imports(
    session: Session, actor: User, agreement_id: str | None = None
) -> list[ImportRequest]:
    """Import requests of the agreements the actor may see, newest first."""
    query = select(ImportRequest).order_by(ImportRequest.id.desc())
    if agreement_id is not None:
        query = query.where(ImportRequest.agreement_id == agreement_id)
    out = []
    for req in session.scalars(query):
        try:
            visible_agreement(session, actor, req.agreement_id)
        except NotFound:
            continue
        out.append(req)
    return out


def withdraw_import(*, session: Session, actor: User, request_id: int) -> ImportRequest:
    req = _get(session, actor, request_id)
    if req.author != actor.username:
        raise PermissionDenied(
            "only the author withdraws an import request",
            rule="import-author",
            article=ART_INGRESS,
        )
    _advance(session, req, S.withdrawn, actor.username)
    return req


def reject_import(*, session: Session, actor: User, request_id: int, reason: str) -> ImportRequest:
    """The provider refuses the file; the reason goes to the author (Wuxi Art.15(3))."""
    req = _get(session, actor, request_id)
    rec = get_agreement(session, req.agreement_id)
    check_user_can_review(actor, author=req.author, provider=rec.provider, kind="import")
    _advance(session, req, S.rejected, actor.username, reason)
    return req


def approve_import(
    *, session: Session, settings: Settings, actor: User, request_id: int, reason: str = ""
) -> ImportRequest:
    """A provider reviewer's approval; with as many as the agreement's review clause asks,
    the file is delivered into the agreement's project folder in this transaction (a
    delivery that fails undoes the approval, so nothing is recorded that did not happen)."""
    req = _get(session, actor, request_id)
    rec = get_agreement(session, req.agreement_id)
    check_user_can_review(actor, author=req.author, provider=rec.provider, kind="import")
    IMPORTS.check(req.status, S.approved, reason)  # refuse early when not in review
    if any(a["reviewer"] == actor.username for a in req.approvals):
        raise PermissionDenied(
            "each reviewer approves once; a second reviewer must be someone else",
            rule="import-independent-reviewers",
            article="agreement clause review.reviewers",
        )
    req.approvals = [*req.approvals, {"reviewer": actor.username, "at": utcnow().isoformat()}]
    needed = as_contract(rec).review.reviewers
    record(
        session,
        actor=actor.username,
        action="import.approval",
        object=f"import:{req.id}",
        details={"approvals": len(req.approvals), "needed": needed},
    )
    if len(req.approvals) < needed:
        return req
    _advance(session, req, S.approved, actor.username, reason)
    where = deliver(settings, req.agreement_id, req.name, Path(req.path).read_bytes())
    req.delivered_to = where
    _advance(session, req, S.delivered, "platform", delivered_to=where, sha256=req.sha256)
    return req


def deliver(settings: Settings, agreement_id: str, name: str, data: bytes) -> str:
    """Put the file into the agreement's project folder, in the platform's kind of
    workspace; returns where the workspace sees it."""
    from sandbox.provisioning.runtime import WorkspaceRuntimeUnavailable, _docker, uses_docker
    from sandbox.workspaces import imports

    if settings.workspace_kind == "development":
        imports.deliver_to_folder(settings.data_dir / "hub" / imports.DEV_PROJECTS,
                                  agreement_id, name, data)  # fmt: skip
    elif uses_docker(settings):
        image = os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE
        imports.deliver_to_volume(_docker(), image, agreement_id, name, data)
    else:
        raise WorkspaceRuntimeUnavailable(
            "this platform runs no workspaces (no hub), so an approved import has nowhere to "
            "go; approve it again once workspaces run",
            article=ART_INGRESS,
        )
    return imports.workspace_path(name)
