"""Export requests from draft to release: the only way anything leaves a workspace.

Each move goes through :mod:`export_review.workflow`, is recorded in the audit
record in the same transaction, and refusals name their rule. Automatic checks
run at submission so mechanical problems come back to the author before a
reviewer spends time; approval by the required number of provider reviewers
releases a signed bundle (Shanghai Art.25 citation included).

Every request names the output form it leaves as (``export_review.forms``); a figure
leaves as its chart specification, its table and the platform's own drawing of them
(``export_review.chart``), made again for the bundle exactly as the reviewer saw it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review import ledger
from export_review.at_rest import bundle_key, bundle_sealer, plain_copies, write_export_file
from export_review.bundle import BundleContent, write_bundle
from export_review.chart import (
    CHART_FILE,
    ChartSpec,
    ChartTable,
    chart_json,
    check_chart,
    parse_chart,
    read_csv_table,
    render_chart,
    table_from_rows,
)
from export_review.file_gate import EXTENSIONS, check_files, has_identifier_value
from export_review.forms import CLAUSE, FORMS, check_form_allowed, form_of_files, known_form
from export_review.models import ExportDecision, ExportFile, ExportRequest
from export_review.rerun import CursorSource, rerun_files
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
from sandbox.agreements.models import AgreementVersion
from sandbox.agreements.service import (
    as_contract,
    get_agreement,
    researchers_active_agreement,
    visible_agreement,
)
from sandbox.audit.record import record
from sandbox.catalog.service import catalog_entries
from sandbox.contracts import Agreement
from sandbox.db.base import utcnow
from sandbox.db.sealed import session_key_store
from sandbox.errors import (
    NotFound,
    PermissionDenied,
    PolicyViolation,
    SandboxError,
    ValidationFailed,
)
from sandbox.keys.store import key_store
from sandbox.settings import Settings

#: Outputs are the researcher's own, under the agreement that names them (Shanghai Art.15).
ART_AUTHOR = "Shanghai Art.15; agreement clause researchers"


def _store(
    settings: Settings, req: ExportRequest, files: Sequence[tuple[str, bytes]]
) -> list[tuple[Path, bytes]]:
    """Keep the submitted files, sealed (export_review/at_rest.py); each path and content.
    A CSV file is kept with the UTF-8 byte-order mark, so the file reviewed is the file
    released and Excel opens it as UTF-8, not as GBK."""
    folder = settings.data_dir / "exports" / str(req.id)
    folder.mkdir(parents=True, exist_ok=True)
    store = key_store(settings)
    kept = []
    for name, data in files:
        clean = Path(name).name
        if not clean or clean.startswith(".") or clean != name:
            raise ValidationFailed(
                f"file name {name!r} must be a plain name without folders", rule="export-file-name"
            )
        path = folder / clean
        if path.suffix.lower() == ".csv" and not data.startswith(codecs.BOM_UTF8):
            data = codecs.BOM_UTF8 + data
        write_export_file(store, req.agreement_id, req.id, path, data)
        kept.append((path, data))
    return kept


def create_request(
    *,
    session: Session,
    settings: Settings,
    actor: User,
    agreement_id: str,
    purpose: str,
    form: str | None = None,
    files: Sequence[tuple[str, bytes]] = (),
    queries: Sequence[str] = (),
    chart: dict[str, Any] | None = None,
    dp_result: dict[str, Any] | None = None,
    dp_pending: bool = False,
    dp_source: int | None = None,
) -> ExportRequest:
    """A draft from the agreement's researcher in one output ``form`` (when omitted, the one
    its files' kinds name): files, or one DP result already charged; a figure also has its
    ``chart`` specification.

    ``dp_pending`` makes the draft of a DP release in the step that charges it, before its
    noise is drawn; :func:`submit_dp_result` attaches the result and hands it in.
    ``dp_source`` reuses the result of one of the author's earlier DP releases (a figure
    of it: post-processing, nothing is charged again).
    """
    form = known_form(form).name if form else form_of_files([name for name, _ in files])
    rec = researchers_active_agreement(
        session, actor, agreement_id, what="export", rule="export-author", article=ART_AUTHOR
    )
    if not purpose.strip():
        raise ValidationFailed("say what the output is for", rule="export-purpose")
    if dp_source is not None:
        dp_result, queries = _earlier_release(session, actor, rec.id, dp_source)
    dp = dp_result is not None or dp_pending
    if dp == bool(files):
        raise ValidationFailed(
            "an export request holds either files or one DP result", rule="export-content"
        )
    if dp:  # refused before a DP release is charged
        check_form_allowed(as_contract(rec), form, dp=True)
    if (chart is not None) != (form == "figure"):
        raise ValidationFailed(
            "a figure needs its chart specification, and only a figure has one",
            rule="export-chart",
            article=f"{CLAUSE} (figure)",
        )
    req = ExportRequest(
        agreement_id=rec.id,
        author=actor.username,
        kind="dp" if dp else "files",
        form=form,
        purpose=purpose,
        queries=list(queries),
        dp_result=dp_result,
        chart=parse_chart(chart).model_dump() if chart is not None else None,
    )
    session.add(req)
    session.flush()
    stored = _store(settings, req, files)
    for path, data in stored:
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
        details={
            "agreement": rec.id,
            "kind": req.kind,
            "form": form,
            "files": [p.name for p, _ in stored],
            **({"dp_source": dp_source} if dp_source is not None else {}),
        },
    )
    return req


def _earlier_release(
    session: Session, actor: User, agreement_id: str, request_id: int
) -> tuple[dict[str, Any], list[str]]:
    """The result and query of one of ``actor``'s DP releases under the agreement."""
    source = session.get(ExportRequest, request_id)
    if (
        source is None
        or source.agreement_id != agreement_id
        or source.author != actor.username
        or source.kind != "dp"
        or source.dp_result is None
    ):
        raise ValidationFailed(
            f"export request {request_id} is not a DP release of yours under agreement "
            f"{agreement_id}",
            rule="export-dp-source",
        )
    return source.dp_result, list(source.queries)


def files_of(session: Session, req: ExportRequest) -> list[ExportFile]:
    return list(session.scalars(select(ExportFile).where(ExportFile.request_id == req.id)))


def automatic_checks(
    session: Session,
    agreement: Agreement,
    *,
    form: str | None,
    paths: Sequence[Path],
    chart: dict[str, Any] | None = None,
    dp_result: dict[str, Any] | None = None,
    queries: Sequence[str] = (),
    cursors: CursorSource,
) -> dict[str, Any]:
    """Output form, file gate, table checks and the figure's specification; raises
    PolicyViolation on the first mechanical problem.

    The same function runs on a stored request at submission and on a candidate the
    workspace client checks before submitting, so both give the same verdict. Tables are
    re-checked through ``cursors`` (a query worker lends its own open connection).
    """
    dp = dp_result is not None
    form = form or form_of_files([p.name for p in paths])
    check_form_allowed(agreement, form, dp=dp)
    kinds = FORMS[form].file_kinds
    for path in paths:
        kind = EXTENSIONS.get(path.suffix.lower())
        if kind is not None and kind not in kinds:
            raise PolicyViolation(
                "export-file-form",
                CLAUSE,
                f"{path.name}: a {form} export holds "
                f"{', '.join(s for s, k in EXTENSIONS.items() if k in kinds) or 'no files'}, "
                f"not {path.suffix} files; submit it as its own request in the form it is",
            )
    if dp:
        checks: dict[str, Any] = {"form": form, "dp": "released through OpenDP and charged"}
    else:
        checked = check_files(paths, agreement=agreement, catalog=catalog_entries(session))
        checks = {
            "form": form,
            "files": [{"name": c.path.name, "kind": c.kind, "rows": c.rows} for c in checked],
            "tables": table_checks(session, agreement, queries, paths, cursors),
        }
    if form == "figure":
        spec = figure_spec(chart)
        check_chart(spec, figure_table(paths, dp_result))
        checks["chart"] = spec.model_dump()
    return checks


def figure_spec(chart: dict[str, Any] | None) -> ChartSpec:
    """The figure's specification, refused when missing or when its text holds identifiers."""
    if chart is None:
        raise PolicyViolation(
            "export-chart", f"{CLAUSE} (figure)", "a figure needs its chart specification"
        )
    spec = parse_chart(chart)
    if has_identifier_value([spec.title, spec.x_label, spec.y_label]):
        raise PolicyViolation(
            "export-file-identifier",
            "Rizhao Art.29; Putuo Art.32",
            "the chart's title or labels hold a resident ID number or a social credit code",
        )
    return spec


def figure_table(paths: Sequence[Path], dp_result: dict[str, Any] | None) -> ChartTable:
    """The one table a figure is drawn from: its DP release, or its one CSV file."""
    if dp_result is not None:
        return table_from_rows(dp_result["columns"], dp_result["rows"])
    tables = [p for p in paths if EXTENSIONS.get(p.suffix.lower()) == "csv"]
    if len(tables) != 1:
        raise PolicyViolation(
            "export-figure-data",
            f"{CLAUSE} (figure)",
            f"a figure is drawn from one table; this request has {len(tables)} CSV files: "
            "hand in exactly one (or draw the figure from a DP release)",
        )
    return read_csv_table(tables[0])


def table_checks(
    session: Session,
    agreement: Agreement,
    queries: Sequence[str],
    paths: Sequence[Path],
    cursors: CursorSource,
) -> list[dict[str, Any]]:
    """Disclosure checks of each CSV table computed from the rows behind it (ACRO's rules,
    the agreement's thresholds); a table with cells that must be suppressed is refused, so
    the researcher suppresses them before a reviewer spends time."""
    tables = []
    for rerun in rerun_files(session, agreement.id, list(queries), list(paths), cursors):
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


def _automatic_checks(
    session: Session, req: ExportRequest, cursors: CursorSource
) -> dict[str, Any]:
    if req.kind == "dp" and req.dp_result is None:
        raise PolicyViolation(
            "export-dp-interrupted",
            "agreement clause outputs",
            "the DP release behind this request was charged but stopped before its result "
            "was computed, so there is nothing to review; the charge stands (nothing was "
            "shown); release again to export",
        )
    agreement = as_contract(get_agreement(session, req.agreement_id))
    files = files_of(session, req)
    with plain_copies(session_key_store(session), req.agreement_id, files) as paths:
        return automatic_checks(
            session,
            agreement,
            form=req.form,
            paths=paths,
            chart=req.chart,
            dp_result=req.dp_result,
            queries=req.queries,
            cursors=cursors,
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


def submit_request(
    *,
    session: Session,
    actor: User,
    request_id: int,
    cursors: CursorSource,
) -> ExportRequest:
    """Hand in a draft (or a returned request); the automatic checks decide at once (tables
    re-checked through ``cursors``, see :func:`automatic_checks`)."""
    req = _get(session, actor, request_id)
    if req.author != actor.username:
        raise PermissionDenied(
            "only the author submits an export request", rule="export-author", article=ART_AUTHOR
        )
    _move(session, req, ExportAction.submit, actor.username)
    try:
        req.checks = _automatic_checks(session, req, cursors)
    except SandboxError as exc:
        req.checks = {"refused": exc.to_dict()}
        _move(session, req, ExportAction.fail_checks, "platform", reason=str(exc))
        return req
    _move(session, req, ExportAction.pass_checks, "platform")
    return req


def submit_dp_result(
    *,
    session: Session,
    actor: User,
    request_id: int,
    result: dict[str, Any],
    cursors: CursorSource,
) -> ExportRequest:
    """Attach the computed result to a DP release's draft and hand it in."""
    req = _get(session, actor, request_id)
    if req.kind != "dp" or req.dp_result is not None or req.status != ExportStatus.draft:
        raise ValidationFailed(
            f"export request {req.id} is not a DP draft awaiting its result",
            rule="export-content",
        )
    req.dp_result = result
    return submit_request(session=session, actor=actor, request_id=req.id, cursors=cursors)


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
            article="Wuxi Art.15(3)",  # decisions state their reasons
        )
    if action != ExportAction.approve:
        _move(session, req, action, actor.username, reason)
        if action == ExportAction.revoke:
            discard_bundle(session, settings, req)
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
    """The DP table as CSV in UTF-8 with BOM, which Excel opens as UTF-8."""
    path = folder / "dp_release.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
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
    store = key_store(settings)
    name = f"{rec.id}-export-{req.id}"
    with (
        plain_copies(store, rec.id, files_of(session, req)) as paths,
        tempfile.TemporaryDirectory(prefix="release-") as made,
    ):
        dp = None
        if req.dp_result is not None:
            paths = [_dp_csv(Path(made), req.dp_result)]
            budget = ledger.budget_state(session, rec.id)
            dp = {
                **{k: v for k, v in req.dp_result.items() if k not in ("columns", "rows")},
                "epsilon_remaining": budget.epsilon_remaining,
            }
        if req.form == "figure":
            paths += figure_files(req, paths, Path(made) / "figure")
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
            settings.data_dir / "releases" / name,
            paths,
            agreement=agreement,
            catalog=catalog_entries(session),
            content=content,
            key=load_or_create_signing_key(signing_key_path(settings.keys_dir)),
            seal=bundle_sealer(store, name),
        )
    req.bundle_path = str(bundle)
    _move(session, req, ExportAction.release, "platform", details={"bundle": bundle.name})


def figure_files(req: ExportRequest, paths: Sequence[Path], folder: Path) -> list[Path]:
    """The figure's specification and the platform's drawing of it from its table (PNG, SVG),
    written into ``folder``: what the reviewer saw, drawn again for the bundle."""
    spec = figure_spec(req.chart)
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / CHART_FILE
    spec_path.write_text(chart_json(spec), encoding="utf-8")
    return [spec_path, *render_chart(spec, figure_table(paths, req.dp_result), folder)]


def discard_bundle(session: Session, settings: Settings, req: ExportRequest) -> None:
    """Remove a revoked bundle's files so it can no longer be handed out, and destroy its
    key (``key.destroy`` in the record), so no copy of it opens, a backup's neither."""
    if not req.bundle_path:
        return
    shutil.rmtree(req.bundle_path, ignore_errors=True)
    if key_store(settings).destroy_data_key(bundle_key(Path(req.bundle_path).name)):
        record(
            session,
            actor="platform",
            action="key.destroy",
            object=f"export:{req.id}",
            details={"key": "release bundle key", "reason": "release revoked"},
        )


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
