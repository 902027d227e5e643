"""An agreement's refusals, provoked through the service: each carries the rule the
register lists and reads in Chinese."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import (
    amend_agreement,
    change_status,
    get_agreement,
    import_agreement,
)
from sandbox.db.base import transaction
from sandbox.refusal_text import say
from tests.control_plane.helpers import agreement
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

TODAY = date.today()


def _amend(reason: str = "narrower", **changes: object) -> Provoke:
    def amend(session: Session, users: Users) -> object:
        changed = agreement(**changes)
        actor = users["health"]
        return amend_agreement(session=session, actor=actor, agreement=changed, reason=reason)

    return amend


def _move(action: AgreementAction, reason: str = "checked") -> Provoke:
    def move(session: Session, users: Users) -> object:
        return change_status(
            session=session,
            actor=users["health"],
            agreement_id="AGR-T-0001",
            action=action,
            reason=reason,
            today=TODAY,
        )

    return move


CASES: dict[str, tuple[str, Provoke]] = {
    "an agreement that does not exist": (
        "agreement-unknown", lambda session, _: get_agreement(session, "AGR-NONE")),
    "a researcher who is not registered": (
        "agreement-researchers",
        lambda session, users: import_agreement(
            session=session, actor=users["health"],
            agreement=agreement(id="AGR-T-0002", researchers=["nobody"]))),
    "a join on a column that identifies no one": (
        "agreement-joins",
        lambda session, users: import_agreement(
            session=session, actor=users["health"],
            agreement=agreement(id="AGR-T-0002", joins=[["clinic_visits.district"] * 2]))),
    "an amendment without a reason": ("agreement-amend-reason", _amend(reason=" ")),
    "an amendment to another provider": (
        "agreement-amend", _amend(provider="city-market-regulation")),
    "an amendment that changes nothing": ("agreement-amend-noop", _amend()),
    "expiry by hand": ("agreement-expiry", _move(AgreementAction.expire)),
    "a termination without a reason": ("agreement-reason", _move(AgreementAction.terminate, "")),
    "reinstating an active agreement": ("agreement-transition", _move(AgreementAction.reinstate)),
}  # fmt: skip


test_the_refusal_carries_its_rule_and_reads_in_chinese = refusal_test(CASES, "signed")


def test_an_ended_agreement_is_not_amended(factory: sessionmaker[Session], signed: Users) -> None:
    with transaction(factory) as session:
        _move(AgreementAction.terminate)(session, signed)
    refusal = refused(factory, signed, _amend())
    assert_refused_by(refusal, "agreement-ended")
    shown = say("agreement-ended", refusal.message, "zh")
    assert shown == "协议 AGR-T-0001 的状态为已终止；已结束的协议不能变更"
