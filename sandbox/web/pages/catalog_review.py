"""The authority's catalogue review pages (Shanghai Art.12; Wuxi Art.11-12).

A queue of proposed entries, and for each the decision form beside what would
change: the published entry against the proposed one, the open class and its
basis, the proposed data version's quality report. Approval and rejection both
record the legality review (合法性审查); the service refuses either without it.
The operator may read the queue; only the authority sees the form.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.catalog.models import Dataset
from sandbox.catalog.review import (
    Decision,
    can_decide,
    decide_review,
    entry_changes,
    list_reviews,
    proposed_version,
    visible_review,
    withdrawal_reason,
)
from sandbox.http.deps import DbDep, OversightDep, UserDep
from sandbox.input_limits import LongText
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/authority/catalog-reviews")


@router.get("")
def queue(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    """Reviews under way first (oldest first), then the decided ones (newest first)."""
    with db.tx() as session:
        reviews = list_reviews(session, user)
        names = {r.dataset_id: session.get_one(Dataset, r.dataset_id).name for r in reviews}
    pending = [r for r in reviews if r.status == "under_review"]
    decided = [r for r in reversed(reviews) if r.status != "under_review"]
    return render(
        request,
        "authority/catalog_reviews.html",
        {"pending": pending, "decided": decided, "names": names},
    )


@router.get("/{review_id}")
def show(request: Request, review_id: int, db: DbDep, user: UserDep) -> HTMLResponse:
    with db.tx() as session:
        review = visible_review(session, user, review_id)
        dataset = session.get_one(Dataset, review.dataset_id)
        current = dataset.entry if dataset.published else None
        context = {
            "review": review,
            "dataset": dataset,
            "changes": entry_changes(current, review.proposed_entry),
            "version": proposed_version(session, review),
            "can_decide": can_decide(user, review),
            "withdrawal_reason": withdrawal_reason(session, review),
        }
    return render(request, "authority/catalog_review.html", context)


@router.post("/{review_id}")
def decide(
    review_id: int, db: DbDep, user: UserDep,
    decision: Annotated[Decision, Form()], legality_review: Annotated[LongText, Form()] = "",
) -> RedirectResponse:  # fmt: skip
    with db.tx() as session:
        decide_review(
            session=session, actor=user, review_id=review_id, decision=decision,
            legality_review=legality_review,
        )  # fmt: skip
    return see_other(f"/authority/catalog-reviews/{review_id}")
