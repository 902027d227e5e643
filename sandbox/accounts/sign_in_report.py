"""The operator's view of failed sign-ins: by account, by address, the latest ones, and
the wait each rule imposes now (R12 early warning of anomalies; Rizhao Art.29).

Only the operator sees it: it holds addresses and the names people typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sandbox.accounts.attempts import (
    FailureGroup,
    SignInAttempt,
    failures_by_account,
    failures_by_address,
    recent_failures,
)
from sandbox.accounts.backoff import account_wait, address_wait
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role

#: The longest look back the operator can ask for (a month).
MAX_HOURS = 24 * 31


@dataclass(frozen=True)
class Row:
    """One account or address: its failures since the report's start and its wait now."""

    group: FailureGroup
    wait_seconds: int
    rule: str


@dataclass(frozen=True)
class FailureReport:
    since: datetime
    by_account: list[Row]
    by_address: list[Row]
    recent: list[SignInAttempt]


def failure_report(session: Session, actor: User, *, now: datetime, hours: int) -> FailureReport:
    """Failed sign-ins of the last ``hours`` (1 to :data:`MAX_HOURS`), for the operator."""
    require_role(actor, Role.operator)
    since = now - timedelta(hours=max(1, min(hours, MAX_HOURS)))
    accounts = []
    for group in failures_by_account(session, since=since):
        wait = account_wait(session, group.key, now)
        accounts.append(Row(group, wait.seconds, wait.rule.rule))
    addresses = []
    for group in failures_by_address(session, since=since):
        wait = address_wait(session, group.key, now) if group.key else None
        addresses.append(Row(group, wait.seconds if wait else 0, wait.rule.rule if wait else ""))
    return FailureReport(since, accounts, addresses, recent_failures(session, since=since))
