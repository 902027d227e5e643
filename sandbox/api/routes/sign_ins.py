"""The operator's record of failed sign-ins, by account and by address (Rizhao Art.29)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sandbox.accounts.sign_in_report import MAX_HOURS, FailureReport, Row, failure_report
from sandbox.http.deps import DbDep, OperatorDep
from sandbox.http.sign_in import request_time

router = APIRouter(prefix="/api/operator", tags=["operator"])


def _row(row: Row) -> dict[str, Any]:
    return {
        "key": row.group.key,
        "failures": row.group.failures,
        "first": row.group.first.isoformat(),
        "last": row.group.last.isoformat(),
        "spread": row.group.spread,
        "wait_seconds": row.wait_seconds,
        "rule": row.rule,
    }


def report_view(report: FailureReport) -> dict[str, Any]:
    """The report as JSON: ``spread`` is how many addresses tried an account, or how many
    accounts one address tried."""
    return {
        "since": report.since.isoformat(),
        "by_account": [_row(r) for r in report.by_account],
        "by_address": [_row(r) for r in report.by_address],
        "recent": [
            {
                "at": a.at.isoformat(),
                "username": a.username,
                "address": a.address,
                "channel": a.channel,
            }
            for a in report.recent
        ],
    }


@router.get("/sign-in-failures")
def sign_in_failures(
    request: Request,
    db: DbDep,
    user: OperatorDep,
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS)] = 24,
) -> dict[str, Any]:
    """Failed sign-ins of the last ``hours``, and the wait each account and address has now."""
    with db.tx() as session:
        return report_view(failure_report(session, user, now=request_time(request), hours=hours))
