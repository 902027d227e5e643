"""Tip-offs about misuse (举报, Shanghai Art.27) and security problems users report
(Wuxi Art.17).

Anyone may send one, with or without an account. It is routed to the provider
concerned — through the dataset it names, or, for a signed-in user, the
agreement it names — and always to the authority (and the operator, who runs
the platform). They handle it and answer; the reporter reads the answer with
the receipt code they were given. A tip-off that proves a violation becomes
one (:func:`sandbox.oversight.violations.record_violation`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.agreements.service import visible_agreement
from sandbox.audit.record import record
from sandbox.catalog.service import get_public_dataset
from sandbox.errors import NotFound, ValidationFailed
from sandbox.oversight.models import TipOff, TipOffStatus
from sandbox.oversight.receipts import new_receipt
from sandbox.oversight.workflow import Workflow, advance

ARTICLE = "Shanghai Art.27; Wuxi Art.17"
#: kind -> the article that lets anyone send it.
KINDS = {"misuse": "Shanghai Art.27", "security_problem": "Wuxi Art.17"}
S = TipOffStatus
WORKFLOW = Workflow(
    "tipoff",
    ARTICLE,
    {
        (S.received, S.handling): False,
        (S.received, S.answered): True,
        (S.received, S.dismissed): True,
        (S.handling, S.answered): True,
        (S.handling, S.dismissed): True,
        # Set only by recording a violation from the tip-off.
        (S.received, S.converted): False,
        (S.handling, S.converted): False,
    },
    transition_rule="tipoff-transition",
    answer_rule="tipoff-answer",
)


def submit_tipoff(
    *,
    session: Session,
    actor: User | None,
    kind: str,
    description: str,
    reporter: str = "",
    contact: str = "",
    dataset: str = "",
    agreement_id: str = "",
) -> tuple[TipOff, str]:
    """Open to everyone; returns the tip-off and its receipt code (shown once)."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"kind must be one of {', '.join(KINDS)}", rule="tipoff-kind", article=ARTICLE
        )
    if not description.strip():
        raise ValidationFailed(
            "describe what you saw (what, when, which data)",
            rule="tipoff-incomplete",
            article=ARTICLE,
        )
    provider, dataset_id, object_ = "", None, "platform"
    if agreement_id:
        if actor is None:
            raise ValidationFailed(
                "only a signed-in user may name an agreement; name the dataset instead",
                rule="tipoff-agreement",
                article=ARTICLE,
            )
        provider = visible_agreement(session, actor, agreement_id).provider
        object_ = f"agreement:{agreement_id}"
    if dataset:
        ds = get_public_dataset(session, dataset)
        if provider and ds.provider != provider:
            raise ValidationFailed(
                f"dataset {dataset!r} is not provided under agreement {agreement_id}; "
                "name one of them, or both when they belong together",
                rule="tipoff-routing",
                article=ARTICLE,
            )
        provider, dataset_id = ds.provider, ds.id
        object_ = object_ if agreement_id else f"dataset:{ds.name}"
    code, digest = new_receipt()
    tip = TipOff(
        kind=kind,
        reporter=reporter.strip() or (actor.username if actor else ""),
        contact=contact.strip(),
        description=description,
        dataset_id=dataset_id,
        agreement_id=agreement_id or None,
        provider=provider,
        receipt_hash=digest,
        status=S.received,
    )
    session.add(tip)
    session.flush()
    record(
        session,
        actor=actor.username if actor else f"public:{tip.reporter or 'anonymous'}",
        action="tipoff.submit",
        object=object_,
        details={"tipoff": tip.id, "kind": kind, "routed_to": provider or "authority"},
    )
    return tip, code


def can_handle(actor: User, tip: TipOff) -> bool:
    """The authority and the operator see every tip-off; a provider those routed to it."""
    if actor.role in (Role.authority, Role.operator):
        return True
    return actor.role == Role.provider and bool(tip.provider) and actor.organisation == tip.provider


def get_tipoff(session: Session, actor: User, tipoff_id: int) -> TipOff:
    tip = session.get(TipOff, tipoff_id)
    if tip is None or not can_handle(actor, tip):
        raise NotFound(f"tip-off {tipoff_id} does not exist", rule="tipoff-unknown")
    return tip


def handle_tipoff(
    *, session: Session, actor: User, tipoff_id: int, to: str, answer: str = ""
) -> TipOff:
    require_role(actor, Role.provider, Role.authority, Role.operator)
    tip = get_tipoff(session, actor, tipoff_id)
    if to == S.converted:
        raise ValidationFailed(
            "a tip-off becomes a violation by recording the violation from it "
            "(POST /api/violations with tipoff_id)",
            rule="tipoff-convert",
            article=ARTICLE,
        )
    mark_handled(session, tip, to=to, actor=actor, answer=answer)
    return tip


def mark_handled(session: Session, tip: TipOff, *, to: str, actor: User, answer: str = "") -> None:
    """Move the tip-off (also used when it becomes a violation)."""
    advance(
        session,
        WORKFLOW,
        tip,
        to=to,
        actor=actor.username,
        object=f"tipoff:{tip.id}",
        answer=answer,
        details={"tipoff": tip.id},
    )
    tip.handled_by = actor.username


def list_tipoffs(session: Session, actor: User) -> list[TipOff]:
    require_role(actor, Role.provider, Role.authority, Role.operator)
    rows = session.scalars(select(TipOff).order_by(TipOff.id.desc()))
    return [t for t in rows if can_handle(actor, t)]
