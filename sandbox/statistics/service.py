"""The figures the platform reports to the authority, computed from the database as it stands.

Every figure is a count grouped by one attribute, plus the review turnaround
in working days (Wuxi Art.15(3): 10 working days). Counts never include data
values, only numbers of catalogue entries, applications and so on.
"""

from __future__ import annotations

import csv
import io
import statistics as stats
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from export_review.models import ExportRequest
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.agreements.models import AgreementRecord
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import is_overdue
from sandbox.catalog.models import CatalogReview, Dataset
from sandbox.oversight.models import QualityTask, Violation
from sandbox.workcalendar import WorkCalendar

ARTICLE = "Shanghai Art.41; Wuxi Art.26"
#: Working days a provider has to answer an application (Wuxi Art.15(3)).
REVIEW_DAYS = 10

#: (name, Chinese title, English title, column counted). Adding a figure is adding a row.
COUNTS = (
    ("datasets_by_class", "数据集（按开放类型）", "Datasets by open class", Dataset.open_class),
    ("datasets_by_status", "数据集（按开放状态）", "Datasets by status", Dataset.status),
    (
        "catalog_reviews_by_status",
        "目录审查（按状态）",
        "Catalogue reviews by status",
        CatalogReview.status,
    ),
    ("applications_by_status", "申请（按结果）", "Applications by outcome", Application.status),
    ("agreements_by_status", "协议（按状态）", "Agreements by status", AgreementRecord.status),
    ("exports_by_status", "导出申请（按状态）", "Exports by status", ExportRequest.status),
    ("violations_by_status", "违规（按处理状态）", "Violations by status", Violation.status),
    ("violations_by_kind", "违规（按类型）", "Violations by kind", Violation.kind),
    (
        "quality_tasks_by_status",
        "质量问题（按状态）",
        "Quality tasks by status",
        QualityTask.status,
    ),
)


@dataclass(frozen=True)
class Figure:
    name: str
    title_zh: str
    title_en: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Turnaround:
    """Review times of decided applications, in working days from receipt to decision."""

    decided: int
    mean_working_days: float | None
    median_working_days: float | None
    max_working_days: int | None
    within_deadline: int
    late: int
    overdue_now: int


@dataclass(frozen=True)
class Statistics:
    as_of: date
    figures: list[Figure]
    turnaround: Turnaround
    article: str = ARTICLE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"as_of": self.as_of.isoformat()}


def compute(
    *, session: Session, actor: User, calendar: WorkCalendar, today: date, timezone: str
) -> Statistics:
    """The figures as of ``today``; only the authority and the operator read them."""
    require_role(actor, Role.authority, Role.operator)
    figures = [Figure(name, zh, en, _count(session, column)) for name, zh, en, column in COUNTS]
    domains = Counter(entry.get("domain", "") for entry in session.scalars(select(Dataset.entry)))
    figures.insert(
        1,
        Figure(
            "datasets_by_domain",
            "数据集（按领域）",
            "Datasets by domain",
            dict(sorted(domains.items())),
        ),
    )
    return Statistics(today, figures, _turnaround(session, calendar, today, ZoneInfo(timezone)))


def _count(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
    return {str(value): n for value, n in rows}


def _turnaround(session: Session, calendar: WorkCalendar, today: date, tz: ZoneInfo) -> Turnaround:
    days: list[int] = []
    overdue_now = 0
    for app in session.scalars(select(Application).where(Application.received_on.is_not(None))):
        if app.status in (ApplicationStatus.approved, ApplicationStatus.refused) and app.decided_at:
            decided_on = _local(app.decided_at, tz)
            days.append(calendar.working_days_between(app.received_on, decided_on))
        overdue_now += is_overdue(app, today)
    return Turnaround(
        decided=len(days),
        mean_working_days=round(stats.fmean(days), 2) if days else None,
        median_working_days=stats.median(days) if days else None,
        max_working_days=max(days, default=None),
        within_deadline=sum(d <= REVIEW_DAYS for d in days),
        late=sum(d > REVIEW_DAYS for d in days),
        overdue_now=overdue_now,
    )


def _local(instant: datetime, tz: ZoneInfo) -> date:
    """The local calendar day of a stored instant (SQLite hands them back without a zone: UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(tz).date()


def as_csv(report: Statistics) -> str:
    """``figure,key,value`` rows: every count, then the turnaround figures."""
    rows = [("as_of", "", report.as_of.isoformat())]
    rows += [(f.name, key, str(n)) for f in report.figures for key, n in f.counts.items()]
    rows += [
        ("review_turnaround", key, "" if value is None else str(value))
        for key, value in asdict(report.turnaround).items()
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("figure", "key", "value"))
    writer.writerows(rows)
    return out.getvalue()
