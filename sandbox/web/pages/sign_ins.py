"""The operator's sign-in page: failed sign-ins by account and by address, the wait the
backoff imposes on each now (sandbox/accounts/backoff.py), and resetting a lost
authenticator (sandbox/accounts/totp.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.accounts.backoff import ACCOUNT, ADDRESS, CAP_SECONDS
from sandbox.accounts.sign_in_report import MAX_HOURS, failure_report
from sandbox.accounts.totp import reset_factor
from sandbox.http.deps import DbDep, OperatorDep
from sandbox.http.sign_in import request_time
from sandbox.identity.organisations import find_user
from sandbox.input_limits import Name
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/operator")


@router.get("/sign-ins")
def sign_ins(
    request: Request,
    db: DbDep,
    user: OperatorDep,
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS)] = 24,
) -> HTMLResponse:
    with db.tx() as session:
        report = failure_report(session, user, now=request_time(request), hours=hours)
        context = {
            "report": report,
            "hours": hours,
            "rules": {"account": ACCOUNT, "address": ADDRESS, "cap": CAP_SECONDS},
        }
        return render(request, "operator/sign_ins.html", context)


@router.post("/second-factor/reset")
def reset_authenticator(
    db: DbDep, user: OperatorDep, username: Annotated[Name, Form()]
) -> RedirectResponse:
    """The user's lost authenticator goes and their sessions end (recorded); they set up a
    new one at their next sign-in."""
    with db.tx() as session:
        reset_factor(session, user, find_user(session, username))
    return see_other("/operator/sign-ins")
