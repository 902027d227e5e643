"""Catalogue review by the competent authority (Shanghai Art.12; Wuxi Art.11-12).

Providers see the reviews of their own datasets; the operator sees all; only the
authority decides, recording its legality review with either decision. A provider
of the dataset's organisation may withdraw a proposal still under review, with a
reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.orm import Session

from sandbox.api.views import catalog_review_view
from sandbox.catalog.models import CatalogReview, Dataset
from sandbox.catalog.review import (
    Decision,
    decide_review,
    list_reviews,
    proposed_version,
    visible_review,
    withdraw_review,
    withdrawal_reason,
)
from sandbox.http.deps import DbDep, UserDep
from sandbox.input_limits import LongText

router = APIRouter(prefix="/api/catalog-reviews", tags=["catalogue review"])


def _view(session: Session, review: CatalogReview) -> dict[str, Any]:
    dataset = session.get_one(Dataset, review.dataset_id)
    view = catalog_review_view(review, dataset, proposed_version(session, review))
    if review.status == "withdrawn":
        view["withdrawal_reason"] = withdrawal_reason(session, review)
    return view


@router.get("")
def reviews(db: DbDep, user: UserDep, status: str = "") -> list[dict[str, Any]]:
    """The review queue, oldest first; ``status=under_review`` for what waits for a decision."""
    with db.tx() as session:
        return [_view(session, r) for r in list_reviews(session, user, status)]


@router.get("/{review_id}")
def show_review(review_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        return _view(session, visible_review(session, user, review_id))


class DecisionIn(BaseModel):
    decision: Decision
    #: 合法性审查: required with either decision (Wuxi Art.12).
    legality_review: LongText = ""


@router.post("/{review_id}")
def decide(review_id: int, body: DecisionIn, db: DbDep, user: UserDep) -> dict[str, Any]:
    """Approve (the entry and its version are published) or reject, with the legality review."""
    with db.tx() as session:
        review = decide_review(
            session=session,
            actor=user,
            review_id=review_id,
            decision=body.decision,
            legality_review=body.legality_review,
        )
        return _view(session, review)


class WithdrawalIn(BaseModel):
    #: Why the provider takes its proposal back: required.
    reason: LongText = ""


@router.post("/{review_id}/withdraw")
def withdraw(review_id: int, body: WithdrawalIn, db: DbDep, user: UserDep) -> dict[str, Any]:
    """Withdraw a proposal under review (a provider of the dataset's organisation only);
    its proposed data version is deleted and a new proposal may follow."""
    with db.tx() as session:
        review = withdraw_review(
            session=session, actor=user, review_id=review_id, reason=body.reason
        )
        return _view(session, review)
