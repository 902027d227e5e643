"""Acknowledging an early-warning alert (R12; Shanghai Art.37), from the provider's or the
operator's page. Who may acknowledge which alert is the early-warning service's rule."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from query_guard.early_warning.service import acknowledge
from sandbox.http.deps import DbDep, UserDep
from sandbox.web.rendering import back_url, page_router, see_other

router = page_router()


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(
    request: Request, alert_id: int, db: DbDep, user: UserDep
) -> RedirectResponse:
    with db.tx() as session:
        acknowledge(session, user, alert_id)
    return see_other(back_url(request))
