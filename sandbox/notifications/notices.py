"""Which notices are due today, derived from the platform's state and its audit record.

Deadlines are read from the applications and agreements as they stand;
decisions are read from the audit record, so no module that decides needs to
know that notices exist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from export_review.models import ExportRequest
from sandbox.accounts.models import Role, User
from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.audit.models import AuditEvent
from sandbox.catalog.models import CatalogReview
from sandbox.feedback.usage import report_schedule
from sandbox.oversight.models import QualityTask, QualityTaskStatus

#: kind -> (Chinese, English, the article behind the deadline or decision).
KINDS: dict[str, tuple[str, str, str]] = {
    "review_due": ("申请审核即将到期", "Application review due", "Wuxi Art.15(3)"),
    "review_overdue": ("申请审核已超期", "Application review overdue", "Wuxi Art.15(3)"),
    "rectification_due": ("整改期限将至", "Rectification due", "Shanghai Art.26, 36"),
    "rectification_overdue": ("整改期限已过", "Rectification overdue", "Shanghai Art.26, 36"),
    "usage_report_due": ("使用情况报告即将到期", "Usage report due", "Shanghai Art.25"),
    "usage_report_overdue": ("使用情况报告已逾期", "Usage report overdue", "Shanghai Art.25"),
    "agreement_expiring_30": (
        "协议30日内到期",
        "Agreement expires within 30 days",
        "Shanghai Art.15",
    ),
    "agreement_expiring_7": ("协议7日内到期", "Agreement expires within 7 days", "Shanghai Art.15"),
    "application_approved": ("申请已批准", "Application approved", "Wuxi Art.15(3)"),
    "application_refused": ("申请未获批准", "Application refused", "Wuxi Art.15(3)"),
    "export_released": ("导出成果已发布", "Export released", "Shanghai Art.25"),
    "export_returned": ("导出申请已退回修改", "Export returned for changes", "Shanghai Art.28"),
    "catalog_review_submitted": (
        "开放清单待审查",
        "Catalogue entry awaits review",
        "Shanghai Art.12; Wuxi Art.11-12",
    ),
    "catalog_review_approved": (
        "开放清单审查通过",
        "Catalogue entry approved",
        "Shanghai Art.12; Wuxi Art.11-12",
    ),
    "catalog_review_rejected": (
        "开放清单审查未通过",
        "Catalogue entry rejected",
        "Shanghai Art.12; Wuxi Art.11-12",
    ),
    "catalog_review_withdrawn": (
        "开放清单申请已撤回",
        "Catalogue proposal withdrawn",
        "Shanghai Art.12; Wuxi Art.11-12",
    ),
    "quality_task_raised": ("数据质量整改任务", "Data-quality task raised", "Wuxi Art.13"),
    "quality_task_due": ("质量整改期限将至", "Data-quality task due", "Wuxi Art.13"),
    "quality_task_overdue": ("质量整改已超期", "Data-quality task overdue", "Wuxi Art.13"),
    "tipoff_received": (
        "收到举报或安全问题报告",
        "Tip-off received",
        "Shanghai Art.27; Wuxi Art.17",
    ),
}
#: Calendar days before a deadline at which its "due" notice goes out.
WARN_DAYS = {"review": 3, "rectification": 3, "usage_report": 7, "quality_task": 3}
#: Days before an agreement's last day at which its expiry notices go out, nearest first.
EXPIRY_WARNINGS = (7, 30)
#: Audit actions that are decisions someone must hear of, and the notice each makes.
DECISIONS = {
    "application.approve": "application_approved",
    "application.refuse": "application_refused",
    "export.release": "export_released",
    "export.return": "export_returned",
    "export.fail_checks": "export_returned",
    "catalog_review.submit": "catalog_review_submitted",
    "catalog_review.published": "catalog_review_approved",
    "catalog_review.rejected": "catalog_review_rejected",
    "catalog_review.withdrawn": "catalog_review_withdrawn",
    "quality_task.raise": "quality_task_raised",
    "tipoff.submit": "tipoff_received",
}


@dataclass(frozen=True)
class Notice:
    recipient: str
    kind: str
    object: str
    #: The due date (ISO) of a deadline, or the instant of a decision: part of the key.
    due: str
    detail: str
    due_on: date | None = None

    @property
    def key(self) -> str:
        return "|".join((self.recipient, self.kind, self.object, self.due))

    @property
    def subject(self) -> str:
        zh, en, _ = KINDS[self.kind]
        return f"{zh} / {en}: {self.object}"

    @property
    def body(self) -> str:
        zh, en, article = KINDS[self.kind]
        lines = [f"{en} — {zh}", f"{self.object}: {self.detail}"]
        if self.due_on is not None:
            lines.append(f"Due / 期限: {self.due_on.isoformat()}")
        lines.append(f"Basis / 依据: {article}")
        return "\n".join(lines)


def stage(base: str, today: date, due: date) -> str | None:
    """``<base>_overdue`` after the deadline, ``<base>_due`` shortly before it, else nothing."""
    if today > due:
        return f"{base}_overdue"
    if (due - today).days <= WARN_DAYS[base]:
        return f"{base}_due"
    return None


def _providers(session: Session) -> dict[str, list[str]]:
    """Each provider organisation's active accounts: a provider's notices go to all of them."""
    providers: dict[str, list[str]] = defaultdict(list)
    for user in session.scalars(select(User).where(User.role == Role.provider, User.active)):
        providers[user.organisation].append(user.username)
    return providers


def _authorities(session: Session) -> list[str]:
    query = select(User.username).where(User.role == Role.authority, User.active)
    return list(session.scalars(query))


def deadline_notices(session: Session, today: date) -> list[Notice]:
    """Reviews, rectifications, usage reports, quality tasks and expiries near or past."""
    providers = _providers(session)
    out: list[Notice] = []
    reviews = select(Application).where(
        Application.status == ApplicationStatus.under_review,
        Application.review_deadline.is_not(None),
    )
    for app in session.scalars(reviews):
        kind = stage("review", today, app.review_deadline)
        out += _to(
            providers[app.provider], kind, f"application:{app.id}", app.review_deadline, app.title
        )
    live = select(AgreementRecord).where(AgreementRecord.status.not_in(list(ENDED)))
    for rec in session.scalars(live):
        obj, researchers = f"agreement:{rec.id}", list(rec.spec.get("researchers", []))
        if rec.status == AgreementStatus.suspended and rec.rectification_deadline:
            kind = stage("rectification", today, rec.rectification_deadline)
            out += _to(researchers, kind, obj, rec.rectification_deadline, rec.status_reason)
        for due in report_schedule(session, rec, today):
            if due.submitted_at is None:
                kind = stage("usage_report", today, due.due_on)
                out += _to(researchers, kind, obj, due.due_on, f"period ending {due.period_end}")
        days_left = (rec.valid_until - today).days
        reached = [n for n in EXPIRY_WARNINGS if 0 <= days_left <= n]
        if rec.status == AgreementStatus.active and reached:
            out += _to(
                researchers + providers[rec.provider],
                f"agreement_expiring_{reached[0]}",
                obj,
                rec.valid_until,
                rec.spec.get("title", ""),
            )
    open_tasks = select(QualityTask).where(QualityTask.status == QualityTaskStatus.open)
    for task in session.scalars(open_tasks):
        kind = stage("quality_task", today, task.due_on)
        obj = f"quality_task:{task.id}"
        out += _to(providers[task.provider], kind, obj, task.due_on, task.description)
    return out


def _to(recipients: list[str], kind: str | None, obj: str, due: date, detail: str) -> list[Notice]:
    if kind is None:
        return []
    return [Notice(r, kind, obj, due.isoformat(), detail, due) for r in recipients]


def decision_notices(session: Session, after: int) -> tuple[list[Notice], int]:
    """Notices for the decisions recorded after audit ``seq`` ``after``; and the head ``seq``."""
    head = session.scalar(select(func.max(AuditEvent.seq))) or 0
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.seq > after, AuditEvent.action.in_(list(DECISIONS)))
        .order_by(AuditEvent.seq)
    )
    out = []
    for event in events:
        recipients, detail = _decision_targets(session, event)
        kind = DECISIONS[event.action]
        out += [Notice(r, kind, event.object, event.at, detail) for r in recipients]
    return out, head


def _decision_targets(session: Session, event: AuditEvent) -> tuple[list[str], str]:
    """Who must hear of the decision, and what to tell them (reasons as recorded)."""
    kind, _, ident = event.object.partition(":")
    details = json.loads(event.details)
    reason = "; ".join(
        f"{k}: {details[k]}" for k in ("reason", "legal_basis", "scope") if details.get(k)
    )
    if kind == "application" and ident.isdigit():
        app = session.get(Application, int(ident))
        applicant = session.get(User, app.applicant_id) if app else None
        detail = " — ".join(p for p in (app.title if app else "", reason) if p)
        return ([applicant.username] if applicant else []), detail
    if kind == "export" and ident.isdigit():
        req = session.get(ExportRequest, int(ident))
        return ([req.author] if req else []), reason or (req.purpose if req else "")
    if event.action.startswith("catalog_review."):
        return _catalog_review_targets(session, event.action, details)
    if event.action == "quality_task.raise":
        task = session.get(QualityTask, details["task"])
        return (_providers(session)[task.provider] if task else []), (
            task.description if task else ""
        )
    if event.action == "tipoff.submit":
        routed = details.get("routed_to", "authority")
        providers = _providers(session)[routed] if routed != "authority" else []
        return [*_authorities(session), *providers], f"tip-off #{details['tipoff']}"
    return [], ""


def _catalog_review_targets(session: Session, action: str, details: dict) -> tuple[list[str], str]:
    """A proposal and its withdrawal go to the authority; its decision back to the
    provider who proposed it."""
    review = session.get(CatalogReview, details["review"])
    if review is None:
        return [], ""
    if action == "catalog_review.submit":
        return _authorities(session), f"review #{review.id} ({review.kind})"
    if action == "catalog_review.withdrawn":
        return _authorities(session), f"review #{review.id} withdrawn: {details['reason']}"
    return [review.submitted_by], review.legality_review
