"""The provider's export review, side by side: the output itself, the automatic checks
(re-run from the underlying rows where the request's queries allow), DP parameters and
the budget left, and every earlier request of the same agreement.

Who may review and what may follow what are ``export_review.workflow``'s rules (the
author never reviews; return and reject need a reason; two reviewers are independent);
a refusal is shown on the review page with its rule, in the form of the move refused
(a missing reason beside its field).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from export_review.requests import files_of, get_request, list_requests, review_request
from export_review.rerun import rerun_tables
from export_review.workflow import NEEDS_REASON, ExportAction, user_can_review
from sandbox.accounts.models import User
from sandbox.agreements.service import as_contract, get_agreement
from sandbox.api.routes.query_service import get_service
from sandbox.http.deps import DbDep, ProviderDep, SettingsDep
from sandbox.input_limits import LongText
from sandbox.web.export_views import decisions_of, rerun_view, reviewer_moves, shown_file
from sandbox.web.form_refusal import ANY_RULE, shows_again
from sandbox.web.rendering import page_router, render, see_other
from sandbox.web.views import epsilon_left

router = page_router("/provider/exports")


def _review_page(request: Request, session: Session, user: User, request_id: int) -> HTMLResponse:
    req = get_request(session, user, request_id)
    rec = get_agreement(session, req.agreement_id)
    files = files_of(session, req)
    context = {
        "req": req,
        "rec": rec,
        "files": [shown_file(session, req, f) for f in files],
        "reruns": [  # through this process's own connections to the agreement's file
            rerun_view(r)
            for r in rerun_tables(session, req, files, get_service(request).cache.cursor)
        ],
        "epsilon_left": epsilon_left(session, rec),
        "earlier": [r for r in list_requests(session, user, req.agreement_id) if r.id < req.id],
        "decisions": decisions_of(session, req),
        "reviewers_needed": as_contract(rec).review.reviewers,
        "moves": reviewer_moves(req.status),
        "needs_reason": NEEDS_REASON,
        "can_review": user_can_review(user, author=req.author, provider=rec.provider),
    }
    return render(request, "provider/export_review.html", context)


@router.get("/{request_id}")
def review(request: Request, request_id: int, db: DbDep, user: ProviderDep) -> HTMLResponse:
    with db.tx() as session:
        return _review_page(request, session, user, request_id)


@router.post("/{request_id}/review")
@shows_again(
    "/provider/exports/{request_id}", form="move-{action}",
    rules={"export-reason": "reason", ANY_RULE: None}, labels={"reason": "reason_for_author"},
)  # fmt: skip
def decide(
    request_id: int,
    db: DbDep,
    settings: SettingsDep,
    user: ProviderDep,
    action: Annotated[ExportAction, Form()],
    reason: Annotated[LongText, Form()] = "",
) -> Response:
    """Start review, approve, return, reject or revoke; a refusal comes back on the page."""
    with db.tx() as session:
        review_request(
            session=session, settings=settings, actor=user, request_id=request_id,
            action=action, reason=reason,
        )  # fmt: skip
    return see_other(f"/provider/exports/{request_id}")
