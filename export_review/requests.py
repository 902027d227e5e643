"""Export requests from draft to release: the only way anything leaves a workspace.

Each move goes through :mod:`export_review.workflow`, is recorded in the audit
record in the same transaction, and refusals name their rule. Automatic checks
run at submission so mechanical problems come back to the author before a
reviewer spends time; approval by the required number of provider reviewers
releases a signed bundle (Shanghai Art.25 citation included).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review import ledger
from export_review.bundle import BundleContent, write_bundle
from export_review.file_gate import EXTENSIONS, check_files
from export_review.models import ExportDecision, ExportFile, ExportRequest
from export_review.rerun import rerun_files
from export_review.signing import load_or_create_signing_key, signing_key_path
from export_review.workflow import (
    AUTHOR_ACTIONS,
    NEEDS_REASON,
    ExportAction,
    ExportStatus,
    check_user_can_review,
    next_status,
)
from sandbox.accounts.models import Role, User
from sandbox.agreements.models import AgreementStatus, AgreementVersion
from sandbox.agreements.service import as_contract, get_agreement, visible_agreement
from sandbox.audit.record import record
from sandbox.catalog.service import catalog_entries
from sandbox.contracts import Agreement
from sandbox.db.base import utcnow
from sandbox.errors import (
    NotFound,
    PermissionDenied,
    PolicyViolation,
    SandboxError,
    ValidationFailed,
)
from sandbox.settings import Settings

#: Outputs are the researcher's own, under the agreement that names them (Shanghai Art.15).
ART_AUTHOR = "Shanghai Art.15; agreement clause researchers"

#: Which agreement output form each kind of file needs (agreement clause ``outputs``).
FORM_OF = {"csv": "table", "json": "table", "png": "figure", "text": "report"}


def _store(settings: Settings, request_id: int, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    folder = settings.data_dir / "exports" / str(request_id)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files:
        clean = Path(name).name
        if not clean or clean.startswith(".") or clean != name:
            raise ValidationFailed(
                f"file name {name!r} must be a plain name without folders", rule="export-file-name"
            )
        path = folder / clean
        path.write_bytes(data)
        paths.append(path)
    return paths


def create_request(
    *,
    session: Session,
    settings: Settings,
    actor: User,
    agreement_id: str,
    purpose: str,
    files: Sequence[tuple[str, bytes]] = (),
    queries: Sequence[str] = (),
    figure_data: dict[str, str] | None = None,
    dp_result: dict[str, Any] | None = None,
    dp_pending: bool = False,
) -> ExportRequest:
    """A draft from the agreement's researcher: files, or one DP result already charged.

    ``dp_pending`` makes the draft of a DP release in the step that charges it, before its
    noise is drawn; :func:`submit_dp_result` attaches the result and hands it in.
    """
    rec = visible_agreement(session, actor, agreement_id)
    if actor.username not in rec.spec["researchers"]:
        raise PermissionDenied(
            "export requests come from the agreement's researchers",
            rule="export-author",
            article=ART_AUTHOR,
        )
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            "Shanghai Art.26, 36",
            f"agreement {rec.id} is {rec.status}; nothing can be exported",
        )
    if not purpose.strip():
        raise ValidationFailed("say what the output is for", rule="export-purpose")
    if (dp_result is None and not dp_pending) == (not files):
        raise ValidationFailed(
            "an export request holds either files or one DP result", rule="export-content"
        )
    req = ExportRequest(
        agreement_id=rec.id,
        author=actor.username,
        kind="dp" if dp_result or dp_pending else "files",
        purpose=purpose,
        queries=list(queries),
        dp_result=dp_result,
        figure_data=dict(figure_data or {}),
    )
    session.add(req)
    session.flush()
    stored = _store(settings, req.id, files)
    for path in stored:
        data = path.read_bytes()
        session.add(
            ExportFile(
                request_id=req.id,
                name=path.name,
                path=str(path),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        )
    record(
        session,
        actor=actor.username,
        action="export.create",
        object=f"export:{req.id}",
        details={"agreement": rec.id, "kind": req.kind, "files": [p.name for p in stored]},
    )
    return req


def files_of(session: Session, req: ExportRequest) -> list[ExportFile]:
    return list(session.scalars(select(ExportFile).where(ExportFile.request_id == req.id)))


def automatic_checks(
    session: Session,
    agreement: Agreement,
    *,
    kind: str,
    paths: Sequence[Path],
    figure_data: dict[str, str],
    queries: Sequence[str] = (),
) -> dict[str, Any]:
    """Output forms and the file gate; raises PolicyViolation on the first mechanical problem.

    The same function runs on a stored request at submission and on a candidate the
    workspace client checks before submitting, so both give the same verdict.
    """
    if kind == "dp":
        if "dp_table" not in agreement.outputs:
            raise PolicyViolation(
                "export-output-form",
                "agreement clause outputs",
                "this agreement does not allow DP tables to leave",
            )
        return {"outputs": "dp_table", "dp": "released through OpenDP and charged"}
    for path in paths:
        file_kind = EXTENSIONS.get(path.suffix.lower())
        form = FORM_OF.get(file_kind or "")
        if form and form not in agreement.outputs:
            allowed = ", ".join(agreement.outputs)
            hint = " (tables of statistics leave as DP releases)" if form == "table" else ""
            raise PolicyViolation(
                "export-output-form",
                "agreement clause outputs",
                f"{path.name}: this agreement lets {allowed} leave, not {form}s{hint}",
            )
    checked = check_files(
        paths, agreement=agreement, catalog=catalog_entries(session), figure_data=figure_data
    )
    tables = table_checks(session, agreement, queries, paths)
    return {
        "files": [{"name": c.path.name, "kind": c.kind, "rows": c.rows} for c in checked],
        "tables": tables,
    }


def table_checks(
    session: Session, agreement: Agreement, queries: Sequence[str], paths: Sequence[Path]
) -> list[dict[str, Any]]:
    """Disclosure checks of each CSV table computed from the rows behind it (ACRO's rules,
    the agreement's thresholds); a table with cells that must be suppressed is refused, so
    the researcher suppresses them before a reviewer spends time."""
    tables = []
    for rerun in rerun_files(session, agreement.id, list(queries), list(paths)):
        summary = rerun.check.summary() if rerun.check else {"why_not": rerun.why_not}
        tables.append({"file": rerun.file, "column": rerun.column, **summary})
    failing = [t for t in tables if t.get("status") == "fail"]
    if failing:
        named = "; ".join(
            f"{t['file']} {t['column']}: "
            + ", ".join(f"{rule} {n}" for rule, n in t["flagged"].items() if n)
            for t in failing
        )
        raise PolicyViolation(
            "export-disclosive-cells",
            "agreement clause disclosure; Shanghai Art.28(3)",
            f"cells computed from too few or too dominant records ({named}); suppress them "
            "(or aggregate more coarsely) and submit again",
        )
    return tables


def _automatic_checks(session: Session, req: ExportRequest) -> dict[str, Any]:
    if req.kind == "dp" and req.dp_result is None:
        raise PolicyViolation(
            "export-dp-interrupted",
            "agreement clause outputs",
            "the DP release behind this request was charged but stopped before its result "
            "was computed, so there is nothing to review; the charge stands (nothing was "
            "shown); release again to export",
        )
    agreement = as_contract(get_agreement(session, req.agreement_id))
    paths = [Path(f.path) for f in files_of(session, req)]
    return automatic_checks(
        session,
        agreement,
        kind=req.kind,
        paths=paths,
        figure_data=req.figure_data,
        queries=req.queries,
    )


def _move(
    session: Session,
    req: ExportRequest,
    action: ExportAction,
    actor: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    new = next_status(req.status, action)
    record(
        session,
        actor=actor,
        action=f"export.{action.value}",
        object=f"export:{req.id}",
        details={"from": req.status, "to": new.value, "reason": reason, **(details or {})},
    )
    req.status = new
    req.status_reason = reason
    req.updated_at = utcnow()


def _get(session: Session, actor: User, request_id: int) -> ExportRequest:
    req = session.get(ExportRequest, request_id)
    if req is None:
        raise NotFound(f"export request {request_id} does not exist", rule="export-unknown")
    visible_agreement(session, actor, req.agreement_id)  # same visibility as the agreement
    return req


def submit_request(*, session: Session, actor: User, request_id: int) -> ExportRequest:
    """Hand in a draft (or a returned request); the automatic checks decide at once."""
    req = _get(session, actor, request_id)
    if req.author != actor.username:
        raise PermissionDenied(
            "only the author submits an export request", rule="export-author", article=ART_AUTHOR
        )
    _move(session, req, ExportAction.submit, actor.username)
    try:
        req.checks = _automatic_checks(session, req)
    except SandboxError as exc:
        req.checks = {"refused": exc.to_dict()}
        _move(session, req, ExportAction.fail_checks, "platform", reason=str(exc))
        return req
    _move(session, req, ExportAction.pass_checks, "platform")
    return req


def submit_dp_result(
    *, session: Session, actor: User, request_id: int, result: dict[str, Any]
) -> ExportRequest:
    """Attach the computed result to a DP release's draft and hand it in."""
    req = _get(session, actor, request_id)
    if req.kind != "dp" or req.dp_result is not None or req.status != ExportStatus.draft:
        raise ValidationFailed(
            f"export request {req.id} is not a DP draft awaiting its result",
            rule="export-content",
        )
    req.dp_result = result
    return submit_request(session=session, actor=actor, request_id=req.id)


def withdraw_request(*, session: Session, actor: User, request_id: int) -> ExportRequest:
    req = _get(session, actor, request_id)
    if req.author != actor.username:
        raise PermissionDenied(
            "only the author withdraws an export request", rule="export-author", article=ART_AUTHOR
        )
    _move(session, req, ExportAction.withdraw, actor.username)
    return req


def withdraw_for_ended_agreement(session: Session, req: ExportRequest, status: str) -> None:
    """The platform withdraws an unfinished request whose agreement ended: its files go
    with the agreement's other workspace files (R16), so nobody could review them."""
    _move(
        session,
        req,
        ExportAction.withdraw,
        "platform",
        reason=f"agreement {status}; its workspace files are destroyed (Rizhao Art.31)",
    )


def review_request(
    *,
    session: Session,
    settings: Settings,
    actor: User,
    request_id: int,
    action: ExportAction,
    reason: str = "",
) -> ExportRequest:
    """A provider reviewer's move; enough approvals release the signed bundle."""
    req = _get(session, actor, request_id)
    rec = get_agreement(session, req.agreement_id)
    if action in AUTHOR_ACTIONS:
        raise PermissionDenied(
            f"{action.value} is the author's move", rule="export-author", article=ART_AUTHOR
        )
    check_user_can_review(actor, author=req.author, provider=rec.provider)
    if action in NEEDS_REASON and not reason.strip():
        raise ValidationFailed(
            f"{action.value} needs a reason for the author",
            rule="export-reason",
            article="Wuxi Art.15(3) (decisions state their reasons)",
        )
    if action != ExportAction.approve:
        _move(session, req, action, actor.username, reason)
        if action == ExportAction.revoke:
            discard_bundle(req)
        return req
    next_status(req.status, action)  # refuse early when not in review
    earlier = session.scalar(
        select(ExportDecision).where(
            ExportDecision.request_id == req.id,
            ExportDecision.reviewer == actor.username,
            ExportDecision.decision == "approve",
        )
    )
    if earlier is not None:
        raise PermissionDenied(
            "each reviewer approves once; a second reviewer must be someone else",
            rule="export-independent-reviewers",
            article="agreement clause review.reviewers",
        )
    session.add(
        ExportDecision(
            request_id=req.id, reviewer=actor.username, decision="approve", reason=reason
        )
    )
    session.flush()
    approvals = _approvers(session, req)
    needed = as_contract(rec).review.reviewers
    record(
        session,
        actor=actor.username,
        action="export.approval",
        object=f"export:{req.id}",
        details={"approvals": len(approvals), "needed": needed},
    )
    if len(approvals) >= needed:
        _move(session, req, ExportAction.approve, actor.username, reason)
        _release(session, settings, req, approvals)
    return req


def _approvers(session: Session, req: ExportRequest) -> list[ExportDecision]:
    return list(
        session.scalars(
            select(ExportDecision).where(
                ExportDecision.request_id == req.id, ExportDecision.decision == "approve"
            )
        )
    )


def _dp_csv(folder: Path, result: dict[str, Any]) -> Path:
    path = folder / "dp_release.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(result["columns"])
        writer.writerows(result["rows"])
    return path


def _release(
    session: Session, settings: Settings, req: ExportRequest, approvals: list[ExportDecision]
) -> None:
    rec = get_agreement(session, req.agreement_id)
    agreement = as_contract(rec)
    version = session.scalar(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == rec.id, AgreementVersion.version == rec.version
        )
    )
    paths = [Path(f.path) for f in files_of(session, req)]
    staging = settings.data_dir / "exports" / str(req.id)
    staging.mkdir(parents=True, exist_ok=True)
    dp = None
    if req.dp_result is not None:
        paths = [_dp_csv(staging, req.dp_result)]
        budget = ledger.budget_state(session, rec.id)
        dp = {
            **{k: v for k, v in req.dp_result.items() if k not in ("columns", "rows")},
            "epsilon_remaining": budget.epsilon_remaining,
        }
    destination = settings.data_dir / "releases" / f"{rec.id}-export-{req.id}"
    key = load_or_create_signing_key(signing_key_path(settings.keys_dir))
    content = BundleContent(
        dataset_versions={
            k: str(v) for k, v in (version.dataset_versions if version else {}).items()
        },
        checks=req.checks,
        reviewers=[{"reviewer": a.reviewer, "at": a.at.isoformat()} for a in approvals],
        dp=dp,
        submitted_at=req.created_at,
        extra={"export_request": req.id, "purpose": req.purpose, "queries": req.queries},
    )
    bundle = write_bundle(
        destination,
        paths,
        agreement=agreement,
        catalog=catalog_entries(session),
        content=content,
        key=key,
    )
    req.bundle_path = str(bundle)
    _move(session, req, ExportAction.release, "platform", details={"bundle": bundle.name})


def discard_bundle(req: ExportRequest) -> None:
    """Remove a revoked bundle's files so it can no longer be handed out."""
    if req.bundle_path:
        shutil.rmtree(req.bundle_path, ignore_errors=True)


def list_requests(
    session: Session, actor: User, agreement_id: str | None = None
) -> list[ExportRequest]:
    """Requests the actor may see; a reviewer sees every earlier request of the agreement."""
    q = select(ExportRequest).order_by(ExportRequest.id.desc())
    if agreement_id is not None:
        q = q.where(ExportRequest.agreement_id == agreement_id)
    out = []
    for req in session.scalars(q):
        try:
            visible_agreement(session, actor, req.agreement_id)
        except NotFound:
            continue
        if actor.role == Role.provider and req.status == ExportStatus.draft:
            continue
        out.append(req)
    return out


def get_request(session: Session, actor: User, request_id: int) -> ExportRequest:
    return _get(session, actor, request_id)
