"""Usage reports: researchers tell how they used the data, as the agreement says
(R8; Shanghai Art.25). Reports not in by their due date are flagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import User
from sandbox.agreements.models import AgreementRecord
from sandbox.agreements.service import visible_agreement
from sandbox.audit.record import record
from sandbox.db.base import utcnow
from sandbox.errors import Conflict, PermissionDenied, ValidationFailed
from sandbox.feedback.models import UsageReport

ARTICLE = "Shanghai Art.25"
#: Calendar days after a period ends before its report is overdue.
GRACE_DAYS = 15
_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def period_ends(rec: AgreementRecord) -> list[date]:
    """The last day of every reporting period; the agreement's last day always closes one."""
    frequency = rec.spec.get("usage_reports")
    if frequency is None:
        return []
    ends: list[date] = []
    step = _MONTHS.get(frequency)
    if step:
        n = 1
        while (end := _add_months(rec.valid_from, step * n) - timedelta(days=1)) < rec.valid_until:
            ends.append(end)
            n += 1
    ends.append(rec.valid_until)
    return ends


@dataclass(frozen=True)
class ReportDue:
    agreement_id: str
    period_end: date
    due_on: date
    submitted_at: datetime | None
    overdue: bool


def report_schedule(session: Session, rec: AgreementRecord, today: date) -> list[ReportDue]:
    submitted = {
        r.period_end: r.submitted_at
        for r in session.scalars(select(UsageReport).where(UsageReport.agreement_id == rec.id))
    }
    out = []
    for end in period_ends(rec):
        due = end + timedelta(days=GRACE_DAYS)
        at = submitted.get(end)
        out.append(ReportDue(rec.id, end, due, at, overdue=at is None and today > due))
    return out


def overdue_reports(session: Session, today: date) -> list[ReportDue]:
    return [
        due
        for rec in session.scalars(select(AgreementRecord))
        for due in report_schedule(session, rec, today)
        if due.overdue
    ]


def submit_usage_report(
    *,
    session: Session,
    actor: User,
    agreement_id: str,
    period_end: date,
    summary: str,
    outputs: str,
) -> UsageReport:
    rec = visible_agreement(session, actor, agreement_id)
    if actor.username not in rec.spec["researchers"]:
        raise PermissionDenied(
            "usage reports are made by the agreement's researchers", rule="usage-report-author"
        )
    if period_end not in period_ends(rec):
        allowed = ", ".join(d.isoformat() for d in period_ends(rec)) or "none (not required)"
        raise ValidationFailed(
            f"{period_end} does not end a reporting period of {rec.id}; periods end on {allowed}",
            rule="usage-report-period",
            article=ARTICLE,
        )
    if not summary.strip():
        raise ValidationFailed(
            "say how the data was used", rule="usage-report-summary", article=ARTICLE
        )
    exists = session.scalar(
        select(UsageReport.id).where(
            UsageReport.agreement_id == rec.id, UsageReport.period_end == period_end
        )
    )
    if exists is not None:
        raise Conflict(
            f"the report for the period ending {period_end} was already submitted",
            rule="usage-report-duplicate",
        )
    report = UsageReport(
        agreement_id=rec.id,
        researcher=actor.username,
        period_end=period_end,
        due_on=period_end + timedelta(days=GRACE_DAYS),
        summary=summary,
        outputs=outputs,
        submitted_at=utcnow(),
    )
    session.add(report)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="usage_report.submit",
        object=f"agreement:{rec.id}",
        details={"period_end": period_end.isoformat()},
    )
    return report
