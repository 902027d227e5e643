"""Figures the pages show that the services do not compute themselves.

They are read-outs only (a countdown, the budget left); none decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from export_review.ledger import budget_state
from sandbox.agreements.models import AgreementRecord
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import is_overdue
from sandbox.catalog.service import public_datasets
from sandbox.errors import PolicyViolation
from sandbox.workcalendar import WorkCalendar


@dataclass(frozen=True)
class ReviewClock:
    """Where an application stands against its 10-working-day deadline (Wuxi Art.15(3))."""

    deadline: date | None
    working_days_left: int | None
    overdue: bool


def review_clock(app: Application, today: date, calendar: WorkCalendar) -> ReviewClock:
    if app.status != ApplicationStatus.under_review or app.review_deadline is None:
        return ReviewClock(app.review_deadline, None, False)
    left = calendar.working_days_between(today, app.review_deadline)
    return ReviewClock(app.review_deadline, left, is_overdue(app, today))


def applicable_datasets(session: Session) -> list[dict]:
    """The public catalogue's datasets and their columns, for choosing what to apply for."""
    return [
        {
            "name": d.name,
            "title": d.entry["title"],
            "provider": d.provider,
            "columns": d.entry["columns"],
        }
        for d in public_datasets(session)
    ]


def epsilon_left(session: Session, rec: AgreementRecord) -> float:
    """The privacy budget left; the ledger registers a budget at the first DP release,
    so an agreement with no ledger entry has spent nothing of its agreed epsilon."""
    try:
        return budget_state(session, rec.id).epsilon_remaining
    except PolicyViolation:
        return float(rec.spec["privacy"]["epsilon"])


def workspace_url(hub_url: str, username: str, agreement_id: str) -> str:
    """One named JupyterHub server per (researcher, agreement)."""
    return f"{hub_url.rstrip('/')}/hub/spawn/{username}/{agreement_id}"
