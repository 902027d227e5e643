"""Catalogue review (开放清单审查): the authority approves what enters the catalogue.

Shanghai Art.12 has the open list published only after review (经审查后 ... 予以公布);
Wuxi Art.11 has the competent authority review and compile the catalogue, and
Wuxi Art.12 asks for a legality review (合法性审查) of a dataset's open attributes.
So a dataset's first entry, any change of a published entry and any change of its
open class are *proposed*: they wait here ``under_review`` until a user with the
role ``authority`` approves them (``published``) or rejects them (``rejected``),
recording the legality review either way. While it waits, a provider of the
dataset's organisation may take the proposal back (``withdrawn``, with a reason),
so that it can propose again. A refresh of data under an unchanged entry needs no
review (see :func:`sandbox.catalog.service.publish_dataset`).

A rejected or withdrawn proposal's data version never takes effect, and its file
is deleted (:mod:`sandbox.catalog.discard`).

Nothing proposed is visible or usable before approval: the dataset stays out of
the public catalogue and the proposed version out of provisioning. The open-class
rules of R1 (Shanghai Art.11) are checked when the change is proposed and applied
when it is approved: leaving non-open needs a desensitisation or consent basis,
and a stricter class is filed with the authority (备案).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.audit.filings import file_with_authority
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.catalog.discard import DISCARDING, discard_proposed_version
from sandbox.catalog.models import (
    CatalogReview,
    ClassChange,
    Dataset,
    DatasetVersion,
    ReviewKind,
    ReviewStatus,
)
from sandbox.contracts import OpenClass
from sandbox.db.base import utcnow
from sandbox.errors import (
    Conflict,
    InvalidStateTransition,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ValidationFailed,
)

ARTICLE = "Shanghai Art.12; Wuxi Art.11-12"
CLASS_ARTICLE = "Shanghai Art.11; Rizhao Art.17"
S = ReviewStatus

_STRICTNESS = {OpenClass.unconditional: 0, OpenClass.conditional: 1, OpenClass.non_open: 2}


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


#: The authority's decision -> the status it moves a review to.
DECISIONS: dict[Decision, ReviewStatus] = {
    Decision.approve: S.published,
    Decision.reject: S.rejected,
}
#: The moves a review may make: the authority's two need the legality review text, the
#: provider's withdrawal a reason.
TRANSITIONS: frozenset[tuple[ReviewStatus, ReviewStatus]] = frozenset(
    {(S.under_review, S.published), (S.under_review, S.rejected), (S.under_review, S.withdrawn)}
)


# -- the open-class rules (R1) ---------------------------------------------------------


def check_class_basis(dataset: str, old: OpenClass, new: OpenClass, basis: str) -> None:
    """Refuse to leave non-open without a desensitisation or consent basis (Shanghai Art.11)."""
    if old == OpenClass.non_open and new != old and not basis.strip():
        raise PolicyViolation(
            "reclassify-non-open",
            CLASS_ARTICLE,
            f"{dataset} is non-open; it may move to {new.value} only with a recorded "
            "desensitisation (脱敏) or rights-holder consent reference as the basis",
        )


def _apply_class_change(
    session: Session, dataset: Dataset, review: CatalogReview, actor: User
) -> None:
    """Record an approved class change; a stricter class is filed with the authority."""
    old, new = OpenClass(dataset.open_class), OpenClass(review.to_class)
    check_class_basis(dataset.name, old, new, review.basis)
    session.add(
        ClassChange(
            dataset_id=dataset.id,
            from_class=old,
            to_class=new,
            basis=review.basis,
            changed_by=review.submitted_by,
        )
    )
    record(
        session,
        actor=actor.username,
        action="dataset.reclassify",
        object=f"dataset:{dataset.name}",
        details={"from": old.value, "to": new.value, "basis": review.basis, "review": review.id},
    )
    if _STRICTNESS[new] > _STRICTNESS[old]:
        file_with_authority(
            session,
            kind="class_stricter",
            object=f"dataset:{dataset.name}",
            article="Shanghai Art.11",
            summary=f"{dataset.name}: open class {old.value} → {new.value}",
            actor=review.submitted_by,
        )


# -- proposing ---------------------------------------------------------------------------


def pending_review(session: Session, dataset: Dataset) -> CatalogReview | None:
    return session.scalar(
        select(CatalogReview)
        .where(CatalogReview.dataset_id == dataset.id)
        .where(CatalogReview.status == S.under_review)
    )


def refuse_while_pending(session: Session, dataset: Dataset) -> None:
    """One proposal at a time: a second would decide against an entry that may change."""
    pending = pending_review(session, dataset)
    if pending is not None:
        raise Conflict(
            f"dataset {dataset.name} has catalogue review #{pending.id} under way; publish "
            "or reclassify it again after the authority has approved or rejected that review, "
            "or withdraw it first",
            rule="catalog-review-pending",
            article=ARTICLE,
        )


def review_kind(dataset: Dataset, proposed_entry: dict) -> ReviewKind | None:
    """What a proposal needs reviewed; None for a refresh under the published entry."""
    if not dataset.published:
        return ReviewKind.new
    if proposed_entry["open_class"] != dataset.open_class:
        return ReviewKind.class_change
    if proposed_entry != dataset.entry:
        return ReviewKind.entry_change
    return None


def open_review(
    session: Session,
    *,
    dataset: Dataset,
    kind: ReviewKind,
    proposed_entry: dict,
    basis: str,
    version: DatasetVersion | None,
    actor: User,
) -> CatalogReview:
    """File a proposal with the authority, with its audit event; the caller has checked
    that none is pending and that the provider owns the dataset."""
    to_class = OpenClass(proposed_entry["open_class"])
    from_class = None if kind == ReviewKind.new else OpenClass(dataset.open_class)
    if from_class is not None:
        check_class_basis(dataset.name, from_class, to_class, basis)
    review = CatalogReview(
        dataset_id=dataset.id,
        kind=kind,
        status=S.under_review,
        proposed_entry=proposed_entry,
        from_class=from_class,
        to_class=to_class,
        basis=basis.strip(),
        version_id=version.id if version else None,
        submitted_by=actor.username,
        submitted_at=utcnow(),
    )
    session.add(review)
    session.flush()
    details: dict = {"review": review.id, "kind": kind.value, "article": ARTICLE}
    if version is not None:
        details |= {"version": version.version, "rows": version.rows, "sha256": version.sha256}
    if from_class is not None and from_class != to_class:
        details |= {"from": from_class.value, "to": to_class.value}
    record(
        session,
        actor=actor.username,
        action="catalog_review.submit",
        object=f"dataset:{dataset.name}",
        details=details,
    )
    return review


# -- deciding -----------------------------------------------------------------------------


def check_can_decide(actor: User, review: CatalogReview) -> None:
    """Only the competent authority decides, and never on a proposal of its own."""
    if actor.role != Role.authority:
        raise PermissionDenied(
            "only the competent authority (role authority) reviews catalogue entries; "
            f"you are signed in as {actor.role}",
            rule="catalog-review-authority",
            article=ARTICLE,
        )
    if actor.username == review.submitted_by:
        raise PermissionDenied(
            "a catalogue entry is reviewed by someone other than whoever proposed it",
            rule="catalog-review-own",
            article=ARTICLE,
        )


def can_decide(actor: User | None, review: CatalogReview) -> bool:
    """For pages: whether to show the decision form."""
    if actor is None or review.status != S.under_review:
        return False
    try:
        check_can_decide(actor, review)
    except PermissionDenied:
        return False
    return True


def get_review(session: Session, review_id: int) -> CatalogReview:
    review = session.get(CatalogReview, review_id)
    if review is None:
        raise NotFound(
            f"catalogue review {review_id} does not exist", rule="catalog-review-unknown"
        )
    return review


def visible_review(session: Session, actor: User, review_id: int) -> CatalogReview:
    """A review as ``actor`` may see it: providers only their own datasets'."""
    review = get_review(session, review_id)
    if actor.role == Role.provider:
        dataset = session.get_one(Dataset, review.dataset_id)
        if dataset.provider != actor.organisation:
            raise NotFound(
                f"catalogue review {review_id} does not exist", rule="catalog-review-unknown"
            )
    elif actor.role == Role.researcher:
        raise PermissionDenied(
            "catalogue reviews are seen by providers, the operator and the authority",
            rule="role",
        )
    return review


def decide_review(
    *,
    session: Session,
    actor: User,
    review_id: int,
    decision: Decision,
    legality_review: str,
) -> CatalogReview:
    """Approve (publish the proposed entry and version) or reject, with the legality review."""
    review = get_review(session, review_id)
    check_can_decide(actor, review)
    to = DECISIONS[Decision(decision)]
    if (review.status, to) not in TRANSITIONS:
        raise InvalidStateTransition(
            f"catalogue review {review.id} is already {review.status}; only a review under "
            "way can be approved or rejected",
            rule="catalog-review-transition",
            article=ARTICLE,
        )
    if not legality_review.strip():
        raise ValidationFailed(
            f"to {decision.value} catalogue review {review.id}, record the legality review "
            "(合法性审查): whether the open class, conditions and data items are lawful, and why",
            rule="catalog-review-legality",
            article="Wuxi Art.12",
        )
    dataset = session.get_one(Dataset, review.dataset_id)
    if to == S.published:
        _publish(session, dataset, review, actor)
    review.status = to
    review.legality_review = legality_review.strip()
    review.reviewed_by = actor.username
    review.reviewed_at = utcnow()
    details: dict = {"review": review.id, "kind": review.kind, "article": ARTICLE}
    record(
        session,
        actor=actor.username,
        action=f"catalog_review.{to.value}",
        object=f"dataset:{dataset.name}",
        details=details | _discarded_details(session, review),
    )
    _discard(session, review)
    return review


# -- withdrawing --------------------------------------------------------------------------


def check_can_withdraw(actor: User, review: CatalogReview, dataset: Dataset) -> None:
    """Only a provider of the dataset's organisation takes a proposal back; the authority
    rejects instead, so that its legality review is on the record."""
    if actor.role == Role.authority:
        raise PermissionDenied(
            f"the authority does not withdraw catalogue review {review.id}; it rejects it "
            "with a legality review",
            rule="catalog-review-withdraw-provider",
            article=ARTICLE,
        )
    if actor.role != Role.provider or actor.organisation != dataset.provider:
        raise PermissionDenied(
            f"catalogue review {review.id} may be withdrawn only by a provider of "
            f"{dataset.provider}, whose dataset it proposes; you are signed in as {actor.role}"
            + (f" of {actor.organisation}" if actor.organisation else ""),
            rule="catalog-review-withdraw-provider",
            article=ARTICLE,
        )


def can_withdraw(actor: User | None, review: CatalogReview, dataset: Dataset) -> bool:
    """For pages: whether to show the withdrawal form."""
    if actor is None or review.status != S.under_review:
        return False
    try:
        check_can_withdraw(actor, review, dataset)
    except PermissionDenied:
        return False
    return True


def withdraw_review(*, session: Session, actor: User, review_id: int, reason: str) -> CatalogReview:
    """Take a proposal back before the authority decides, with the reason on the record.

    Without this a provider who finds a mistake in what it proposed waits for a
    rejection, and :func:`refuse_while_pending` blocks every new proposal meanwhile.
    The reason is kept in the audit event (:func:`withdrawal_reason`); the proposed
    version's file is deleted as for a rejection.
    """
    review = get_review(session, review_id)
    dataset = session.get_one(Dataset, review.dataset_id)
    check_can_withdraw(actor, review, dataset)
    if (review.status, S.withdrawn) not in TRANSITIONS:
        raise InvalidStateTransition(
            f"catalogue review {review.id} is already {review.status}; only a review under "
            "way can be withdrawn",
            rule="catalog-review-transition",
            article=ARTICLE,
        )
    if not reason.strip():
        raise ValidationFailed(
            f"to withdraw catalogue review {review.id}, give the reason (for the authority "
            "and the record)",
            rule="catalog-review-withdraw-reason",
            article=ARTICLE,
        )
    review.status = S.withdrawn
    details: dict = {
        "review": review.id,
        "kind": review.kind,
        "reason": reason.strip(),
        "article": ARTICLE,
    }
    record(
        session,
        actor=actor.username,
        action="catalog_review.withdrawn",
        object=f"dataset:{dataset.name}",
        details=details | _discarded_details(session, review),
    )
    _discard(session, review)
    return review


def withdrawal_reason(session: Session, review: CatalogReview) -> str:
    """The reason a withdrawn review was taken back, as the audit record holds it."""
    if review.status != S.withdrawn:
        return ""
    dataset = session.get_one(Dataset, review.dataset_id)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "catalog_review.withdrawn")
        .where(AuditEvent.object == f"dataset:{dataset.name}")
        .order_by(AuditEvent.seq.desc())
    )
    for event in events:
        details = json.loads(event.details)
        if details.get("review") == review.id:
            return str(details.get("reason", ""))
    return ""


def _discarded_details(session: Session, review: CatalogReview) -> dict:
    """For the audit event: the version whose file a closing review deletes."""
    if review.status not in DISCARDING or review.version_id is None:
        return {}
    version = session.get_one(DatasetVersion, review.version_id)
    return {"discarded_version": version.version, "sha256": version.sha256}


def _discard(session: Session, review: CatalogReview) -> None:
    """Delete the proposed version's file once the new status is flushed (see discard.py)."""
    if review.status in DISCARDING:
        session.flush()
        discard_proposed_version(session, review, article=ARTICLE)


def _publish(session: Session, dataset: Dataset, review: CatalogReview, actor: User) -> None:
    """Make the approved entry (and its version) the one the catalogue and agreements use."""
    if dataset.published and review.to_class != dataset.open_class:
        _apply_class_change(session, dataset, review, actor)
    dataset.entry = review.proposed_entry
    dataset.open_class = review.to_class
    dataset.published = True
    if review.version_id is not None:
        version = session.get_one(DatasetVersion, review.version_id)
        version.published = True
        version.published_at = utcnow()


# -- reading ------------------------------------------------------------------------------


def list_reviews(session: Session, actor: User, status: str = "") -> list[CatalogReview]:
    """The authority's queue (oldest first); providers see their own datasets' reviews."""
    if actor.role == Role.researcher:
        raise PermissionDenied(
            "catalogue reviews are seen by providers, the operator and the authority",
            rule="role",
        )
    q = select(CatalogReview).join(Dataset, Dataset.id == CatalogReview.dataset_id)
    if actor.role == Role.provider:
        q = q.where(Dataset.provider == actor.organisation)
    if status:
        if status not in set(ReviewStatus):
            raise ValidationFailed(
                f"unknown review status {status!r}; allowed: {', '.join(ReviewStatus)}",
                rule="catalog-review-status",
            )
        q = q.where(CatalogReview.status == status)
    return list(session.scalars(q.order_by(CatalogReview.id)))


def latest_reviews(session: Session, dataset_ids: Iterable[int]) -> dict[int, CatalogReview]:
    """Each dataset's most recent review, for showing where its entry stands."""
    ids = list(dataset_ids)
    if not ids:
        return {}
    out: dict[int, CatalogReview] = {}
    rows = session.scalars(
        select(CatalogReview).where(CatalogReview.dataset_id.in_(ids)).order_by(CatalogReview.id)
    )
    for review in rows:
        out[review.dataset_id] = review
    return out


def entry_changes(current: dict | None, proposed: dict) -> list[tuple[str, object, object]]:
    """(field, published value, proposed value) for each field the proposal changes."""
    before = current or {}
    return [
        (key, before.get(key), proposed.get(key))
        for key in sorted(set(before) | set(proposed))
        if before.get(key) != proposed.get(key)
    ]


def proposed_version(session: Session, review: CatalogReview) -> DatasetVersion | None:
    return session.get(DatasetVersion, review.version_id) if review.version_id else None
