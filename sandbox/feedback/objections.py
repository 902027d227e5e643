"""Objections to errors or omissions in a dataset (数据纠错, R10; Shanghai Art.21, Wuxi Art.17).

Anyone may raise one. Once the provider basically confirms it, the dataset is
marked "under objection" at once; the provider then handles and answers it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of
from sandbox.audit.record import record
from sandbox.catalog.models import Dataset
from sandbox.catalog.service import get_public_dataset
from sandbox.db.base import utcnow
from sandbox.errors import InvalidStateTransition, NotFound, ValidationFailed
from sandbox.feedback.models import Objection, ObjectionStatus

ARTICLE = "Shanghai Art.21; Wuxi Art.17"
S = ObjectionStatus

#: (from, to) -> whether an answer to the submitter is required.
TRANSITIONS: dict[tuple[S, S], bool] = {
    (S.received, S.confirmed): False,
    (S.received, S.rejected): True,
    (S.confirmed, S.resolved): True,
}


def raise_objection(
    *, session: Session, dataset: str, submitter: str, contact: str, description: str
) -> Objection:
    """Open to the public: no account needed."""
    ds = get_public_dataset(session, dataset)
    if not (submitter.strip() and contact.strip() and description.strip()):
        raise ValidationFailed(
            "an objection needs your name, a contact and a description of the error",
            rule="objection-incomplete",
            article=ARTICLE,
        )
    obj = Objection(dataset_id=ds.id, submitter=submitter, contact=contact, description=description)
    session.add(obj)
    session.flush()
    record(
        session,
        actor=f"public:{submitter}",
        action="objection.raise",
        object=f"dataset:{ds.name}",
        details={"objection": obj.id},
    )
    return obj


def handle_objection(
    *, session: Session, actor: User, objection_id: int, to: ObjectionStatus, answer: str = ""
) -> Objection:
    obj = session.get(Objection, objection_id)
    if obj is None:
        raise NotFound(f"objection {objection_id} does not exist", rule="objection-unknown")
    ds = session.get_one(Dataset, obj.dataset_id)
    require_provider_of(actor, ds.provider)
    needs_answer = TRANSITIONS.get((S(obj.status), to))
    if needs_answer is None:
        raise InvalidStateTransition(
            f"an objection that is {obj.status} cannot become {to.value}",
            rule="objection-transition",
        )
    if needs_answer and not answer.strip():
        raise ValidationFailed(
            "the submitter must be answered", rule="objection-answer", article=ARTICLE
        )
    obj.status = to
    obj.answer = answer or obj.answer
    obj.updated_at = utcnow()
    _refresh_mark(session, ds)
    record(
        session,
        actor=actor.username,
        action=f"objection.{to.value}",
        object=f"dataset:{ds.name}",
        details={"objection": obj.id, "under_objection": ds.under_objection},
    )
    return obj


def _refresh_mark(session: Session, dataset: Dataset) -> None:
    """Marked while any objection is confirmed and not yet resolved."""
    open_confirmed = session.scalar(
        select(Objection.id).where(
            Objection.dataset_id == dataset.id, Objection.status == ObjectionStatus.confirmed
        )
    )
    dataset.under_objection = open_confirmed is not None


def list_objections(session: Session, actor: User) -> list[Objection]:
    q = select(Objection).join(Dataset, Dataset.id == Objection.dataset_id)
    if actor.role == Role.provider:
        q = q.where(Dataset.provider == actor.organisation)
    return list(session.scalars(q.order_by(Objection.id.desc())))
