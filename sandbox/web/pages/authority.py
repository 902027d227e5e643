"""The authority's pages: the audit record (paged) and its verification (R7), filings (备案),
overdue reviews and usage reports (R4, R8). The operator may read the record too.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import is_overdue
from sandbox.audit.checkpoint import load_signing_key, public_key_hex, stored_checkpoints
from sandbox.audit.filings import list_filings
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import VerifyResult, verify_chain
from sandbox.clock import today
from sandbox.errors import SandboxError
from sandbox.feedback.usage import overdue_reports
from sandbox.http.deps import DbDep, OversightDep, SettingsDep
from sandbox.settings import Settings
from sandbox.web.rendering import page_router, render

router = page_router("/authority")
PAGE_SIZE = 50


def _home(
    request: Request, db: DbDep, verified: VerifyResult | None = None, note: str = ""
) -> HTMLResponse:
    day = today()
    with db.tx() as session:
        under_review = session.scalars(
            select(Application).where(Application.status == ApplicationStatus.under_review)
        )
        context = {
            "filings": list_filings(session),
            "overdue_applications": [a for a in under_review if is_overdue(a, day)],
            "overdue_reports": overdue_reports(session, day),
            "verified": verified,
            "note": note,
        }
    return render(request, "authority/home.html", context)


@router.get("")
def home(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    return _home(request, db)


def _verify(session: Session, settings: Settings) -> tuple[VerifyResult, str]:
    """Re-walk the chain, with the stored checkpoints when the platform's key is at hand."""
    try:
        key = load_signing_key(settings.keys_dir, create=False)
    except SandboxError as exc:
        return verify_chain(session), f"stored checkpoints not checked: {exc.message}"
    return verify_chain(session, stored_checkpoints(session, public_key_hex(key))), ""


@router.post("/verify")
def verify(request: Request, db: DbDep, user: OversightDep, settings: SettingsDep) -> HTMLResponse:
    with db.tx() as session:
        result, note = _verify(session, settings)
    return _home(request, db, result, note)


@router.get("/audit")
def audit(request: Request, db: DbDep, user: OversightDep, page: int = 1) -> HTMLResponse:
    """The record, newest first; details are what the services recorded (never data values)."""
    page = max(page, 1)
    with db.tx() as session:
        total = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        events = session.scalars(
            select(AuditEvent)
            .order_by(AuditEvent.seq.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "authority/audit.html",
        {"events": events, "page": page, "pages": pages, "total": total},
    )
