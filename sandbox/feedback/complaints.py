"""Rights complaints (权益保护, R11; Shanghai Art.22, Wuxi Art.23, Rizhao Art.21).

Anyone who says a dataset infringes their privacy or trade secrets complains
with evidence. The provider suspends the opening at once where needed
(中止开放): the dataset drops out of every agreement using it, and queries to it
are refused citing Shanghai Art.22, while the rest of each agreement goes on.
After verification the dataset is withdrawn or restored, and the complainant
is answered.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of
from sandbox.audit.record import record
from sandbox.catalog.models import Dataset, DatasetStatus
from sandbox.catalog.service import get_public_dataset
from sandbox.db.base import utcnow
from sandbox.errors import InvalidStateTransition, NotFound, ValidationFailed
from sandbox.feedback.models import Complaint, ComplaintStatus

ARTICLE = "Shanghai Art.22; Wuxi Art.23; Rizhao Art.21"
KINDS = ("privacy", "trade_secret", "other")
S = ComplaintStatus

#: (from, to) -> the dataset status the move sets (None: unchanged).
TRANSITIONS: dict[tuple[S, S], DatasetStatus | None] = {
    (S.received, S.suspended): DatasetStatus.suspended,
    (S.received, S.dismissed): None,
    (S.received, S.withdrawn): DatasetStatus.withdrawn,
    (S.suspended, S.withdrawn): DatasetStatus.withdrawn,
    (S.suspended, S.restored): DatasetStatus.open,
    (S.suspended, S.dismissed): DatasetStatus.open,
}
#: Final outcomes answer the complainant.
ANSWERED = frozenset({S.withdrawn, S.restored, S.dismissed})


def file_complaint(
    *,
    session: Session,
    dataset: str,
    complainant: str,
    contact: str,
    kind: str,
    description: str,
    evidence: str,
) -> Complaint:
    ds = get_public_dataset(session, dataset)
    missing = [
        label
        for label, value in (
            ("your name", complainant),
            ("a contact", contact),
            ("a description", description),
            ("evidence", evidence),
        )
        if not value.strip()
    ]
    if kind not in KINDS:
        missing.append(f"the kind of right ({', '.join(KINDS)})")
    if missing:
        raise ValidationFailed(
            "a rights complaint needs " + ", ".join(missing),
            rule="complaint-incomplete",
            article=ARTICLE,
        )
    c = Complaint(
        dataset_id=ds.id,
        complainant=complainant,
        contact=contact,
        kind=kind,
        description=description,
        evidence=evidence,
    )
    session.add(c)
    session.flush()
    record(
        session,
        actor=f"public:{complainant}",
        action="complaint.file",
        object=f"dataset:{ds.name}",
        details={"complaint": c.id, "kind": kind},
    )
    return c


def handle_complaint(
    *, session: Session, actor: User, complaint_id: int, to: ComplaintStatus, answer: str = ""
) -> Complaint:
    c = session.get(Complaint, complaint_id)
    if c is None:
        raise NotFound(f"complaint {complaint_id} does not exist", rule="complaint-unknown")
    ds = session.get_one(Dataset, c.dataset_id)
    require_provider_of(actor, ds.provider)
    key = (S(c.status), to)
    if key not in TRANSITIONS:
        raise InvalidStateTransition(
            f"a complaint that is {c.status} cannot become {to.value}",
            rule="complaint-transition",
        )
    if to in ANSWERED and not answer.strip():
        raise ValidationFailed(
            "the complainant must be answered", rule="complaint-answer", article=ARTICLE
        )
    dataset_status = TRANSITIONS[key]
    if dataset_status is not None:
        ds.status = dataset_status
    c.status = to
    c.answer = answer or c.answer
    c.updated_at = utcnow()
    record(
        session,
        actor=actor.username,
        action=f"complaint.{to.value}",
        object=f"dataset:{ds.name}",
        details={"complaint": c.id, "dataset_status": ds.status, "article": ARTICLE},
    )
    return c


def list_complaints(session: Session, actor: User) -> list[Complaint]:
    q = select(Complaint).join(Dataset, Dataset.id == Complaint.dataset_id)
    if actor.role == Role.provider:
        q = q.where(Dataset.provider == actor.organisation)
    return list(session.scalars(q.order_by(Complaint.id.desc())))
