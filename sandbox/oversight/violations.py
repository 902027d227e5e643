"""Violations by data users, their measures, rectification and the public register
(R6, R9; Shanghai Art.28, 36, 43; Wuxi Art.15(4)).

The authority and the operator record a violation against a researcher under
one agreement — from an early-warning alert, from a tip-off, or from their own
review — with evidence. A measure is then taken by those Art.28 charges with
it, the operator (市大数据中心) or the agreement's provider, through the
agreement's own lifecycle (:func:`sandbox.agreements.service.change_status`):
*limit* or *close* access suspends the agreement with a rectification deadline
(Art.36), *terminate* ends it, *record_only* takes no measure on access. A
violation may be published on the platform's register, which shows the
organisation, the measure, its date and the article — never evidence or data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from query_guard.early_warning.models import Alert
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of, require_role
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import change_status, get_agreement
from sandbox.audit.record import record
from sandbox.errors import Conflict, NotFound, ValidationFailed
from sandbox.oversight import tipoffs
from sandbox.oversight.models import TipOff, TipOffStatus, Violation, ViolationStatus
from sandbox.oversight.workflow import Workflow, advance

ARTICLE = "Shanghai Art.28"
#: kind -> the article it breaches (Shanghai Art.28 items, with Art.36 and 43 where they apply).
KINDS: dict[str, str] = {
    "platform_rules": "Shanghai Art.28(1)",
    "illegal_means": "Shanghai Art.28(2)",
    "rights_infringement": "Shanghai Art.28(3), Art.43(2)",
    "beyond_scenario": "Shanghai Art.28(4); Wuxi Art.15(4)",
    "agreement_breach": "Shanghai Art.28(5), Art.43(1)",
    "security_measures": "Shanghai Art.36, Art.43(4)",
}
S = ViolationStatus
#: measure -> (what it does to the agreement, the state the violation moves to).
MEASURES: dict[str, tuple[AgreementAction | None, ViolationStatus]] = {
    "record_only": (None, S.closed),
    "limit": (AgreementAction.suspend, S.rectifying),
    "close": (AgreementAction.suspend, S.rectifying),
    "terminate": (AgreementAction.terminate, S.terminated),
}
#: Every move carries its reason, kept as the case's answer.
WORKFLOW = Workflow(
    "violation",
    "Shanghai Art.28, 36",
    {
        (S.recorded, S.closed): True,
        (S.recorded, S.rectifying): True,
        (S.recorded, S.terminated): True,
        (S.rectifying, S.rectified): True,
        (S.rectifying, S.terminated): True,
    },
    transition_rule="violation-transition",
    answer_rule="violation-answer",
)


def _source(alert_id: int | None, tipoff_id: int | None) -> str:
    if alert_id is not None and tipoff_id is not None:
        raise ValidationFailed(
            "a violation comes from one alert, one tip-off, or a review; not from both",
            rule="violation-source",
            article=ARTICLE,
        )
    return "alert" if alert_id is not None else "tipoff" if tipoff_id is not None else "review"


def _take(field: str, given: str, found: str | None) -> str:
    """The alert or tip-off says which agreement/researcher; a different value is refused."""
    if given and found and given != found:
        raise ValidationFailed(
            f"{field} {given!r} differs from the {found!r} the source names",
            rule="violation-source",
            article=ARTICLE,
        )
    return given or found or ""


def record_violation(
    *,
    session: Session,
    actor: User,
    kind: str,
    evidence: str,
    references: Sequence[str] = (),
    agreement_id: str = "",
    researcher: str = "",
    alert_id: int | None = None,
    tipoff_id: int | None = None,
) -> Violation:
    """予以记录 (Shanghai Art.28): the authority or the operator records; no measure yet."""
    require_role(actor, Role.authority, Role.operator)
    source = _source(alert_id, tipoff_id)
    if kind not in KINDS:
        raise ValidationFailed(
            f"kind must be one of {', '.join(KINDS)} (the items of Shanghai Art.28)",
            rule="violation-kind",
            article=ARTICLE,
        )
    refs = [r.strip() for r in references if r.strip()]
    if not evidence.strip():
        raise ValidationFailed(
            "a violation is recorded with its evidence", rule="violation-evidence", article=ARTICLE
        )
    tip: TipOff | None = None
    if alert_id is not None:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} does not exist", rule="alert-unknown")
        agreement_id = _take("agreement", agreement_id, alert.agreement_id)
        researcher = _take("researcher", researcher, alert.researcher)
        refs.append(f"alert:{alert_id}")
    if tipoff_id is not None:
        tip = tipoffs.get_tipoff(session, actor, tipoff_id)
        agreement_id = _take("agreement", agreement_id, tip.agreement_id)
        refs.append(f"tipoff:{tipoff_id}")
    _check_unused(session, alert_id, tipoff_id)
    if not agreement_id:
        raise ValidationFailed(
            "name the agreement the violation happened under", rule="violation-agreement"
        )
    rec = get_agreement(session, agreement_id)
    if researcher not in rec.spec["researchers"]:
        raise ValidationFailed(
            f"name the researcher: one of {', '.join(rec.spec['researchers'])} "
            f"(the researchers of {rec.id})",
            rule="violation-researcher",
            article=ARTICLE,
        )
    user = session.scalar(select(User).where(User.username == researcher))
    v = Violation(
        agreement_id=rec.id,
        researcher=researcher,
        organisation=user.organisation if user else "",
        kind=kind,
        source=source,
        alert_id=alert_id,
        tipoff_id=tipoff_id,
        evidence=evidence,
        references=refs,
        recorded_by=actor.username,
        status=S.recorded,
    )
    session.add(v)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="violation.record",
        object=f"agreement:{rec.id}",
        details={"violation": v.id, "kind": kind, "source": source, "article": KINDS[kind]},
    )
    if tip is not None:
        tipoffs.mark_handled(session, tip, to=TipOffStatus.converted, actor=actor)
    return v


def _check_unused(session: Session, alert_id: int | None, tipoff_id: int | None) -> None:
    for column, value in ((Violation.alert_id, alert_id), (Violation.tipoff_id, tipoff_id)):
        if value is None:
            continue
        existing = session.scalar(select(Violation.id).where(column == value))
        if existing is not None:
            raise Conflict(
                f"violation {existing} was already recorded from this {column.key[:-3]}",
                rule="violation-duplicate",
            )


def can_see(actor: User, v: Violation, provider: str) -> bool:
    """Authority and operator: all; a provider: on its agreements; a researcher: their own."""
    if actor.role in (Role.authority, Role.operator):
        return True
    if actor.role == Role.provider:
        return actor.organisation == provider
    return actor.username == v.researcher


def get_violation(session: Session, actor: User, violation_id: int) -> Violation:
    v = session.get(Violation, violation_id)
    if v is None or not can_see(actor, v, get_agreement(session, v.agreement_id).provider):
        raise NotFound(f"violation {violation_id} does not exist", rule="violation-unknown")
    return v


def list_violations(session: Session, actor: User) -> list[Violation]:
    rows = session.execute(
        select(Violation, AgreementRecord.provider)
        .join(AgreementRecord, AgreementRecord.id == Violation.agreement_id)
        .order_by(Violation.id.desc())
    )
    return [v for v, provider in rows if can_see(actor, v, provider)]


def _require_measure_taker(actor: User, rec: AgreementRecord) -> None:
    """Art.28: the platform (operator) and the provider take measures, each in its own remit."""
    if actor.role != Role.operator:
        require_provider_of(actor, rec.provider)


def apply_measure(
    *,
    session: Session,
    actor: User,
    violation_id: int,
    measure: str,
    reason: str,
    rectification_days: int | None = None,
    today: date,
) -> Violation:
    """Limit, close or end access (or record only), through the agreement's lifecycle."""
    v = get_violation(session, actor, violation_id)
    rec = get_agreement(session, v.agreement_id)
    _require_measure_taker(actor, rec)
    if measure not in MEASURES:
        raise ValidationFailed(
            f"measure must be one of {', '.join(MEASURES)}",
            rule="violation-measure",
            article=ARTICLE,
        )
    action, to = MEASURES[measure]
    WORKFLOW.check(v.status, to, reason)
    # The lifecycle job may already have ended an agreement not rectified in time (Art.36).
    if action is not None and not (
        action == AgreementAction.terminate and rec.status == AgreementStatus.terminated
    ):
        change_status(
            session=session,
            actor=actor,
            agreement_id=rec.id,
            action=action,
            reason=f"violation {v.id}: {reason}",
            rectification_days=rectification_days,
            today=today,
        )
    v.measure, v.measured_by, v.measured_on = measure, actor.username, today
    v.rectification_deadline = rec.rectification_deadline if to == S.rectifying else None
    _move(session, v, to=to, actor=actor, reason=reason, details={"measure": measure})
    return v


def confirm_rectified(
    *, session: Session, actor: User, violation_id: int, reason: str, today: date
) -> Violation:
    """Rectified in time: access comes back (the agreement is reinstated)."""
    v = get_violation(session, actor, violation_id)
    rec = get_agreement(session, v.agreement_id)
    _require_measure_taker(actor, rec)
    WORKFLOW.check(v.status, S.rectified, reason)
    change_status(
        session=session,
        actor=actor,
        agreement_id=rec.id,
        action=AgreementAction.reinstate,
        reason=f"violation {v.id} rectified: {reason}",
        today=today,
    )
    _move(session, v, to=S.rectified, actor=actor, reason=reason)
    return v


def _move(
    session: Session,
    v: Violation,
    *,
    to: ViolationStatus,
    actor: User,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    deadline = v.rectification_deadline.isoformat() if v.rectification_deadline else None
    advance(
        session,
        WORKFLOW,
        v,
        to=to,
        actor=actor.username,
        object=f"agreement:{v.agreement_id}",
        answer=reason,
        details={"violation": v.id, "rectification_deadline": deadline, **(details or {})},
    )


def publish_violation(
    *, session: Session, actor: User, violation_id: int, today: date
) -> Violation:
    """予以公示 (Shanghai Art.28): once a measure is decided, on the public register."""
    v = get_violation(session, actor, violation_id)
    _require_measure_taker(actor, get_agreement(session, v.agreement_id))
    if not v.measure:
        raise ValidationFailed(
            "the register shows the violation with its measure: decide the measure first",
            rule="violation-publish",
            article=ARTICLE,
        )
    if v.published_on is not None:
        raise Conflict(
            f"violation {v.id} has been on the register since {v.published_on}",
            rule="violation-published",
        )
    v.published_on, v.published_by = today, actor.username
    record(
        session,
        actor=actor.username,
        action="violation.publish",
        object=f"agreement:{v.agreement_id}",
        details={"violation": v.id, "measure": v.measure, "article": KINDS[v.kind]},
    )
    return v


def public_register(session: Session) -> list[dict[str, Any]]:
    """What the public sees: organisation, measure, date and article; nothing else."""
    published = session.scalars(
        select(Violation)
        .where(Violation.published_on.is_not(None))
        .order_by(Violation.published_on.desc(), Violation.id.desc())
    )
    return [
        {
            "organisation": v.organisation,
            "measure": v.measure,
            "date": v.measured_on,
            "article": KINDS[v.kind],
        }
        for v in published
    ]
