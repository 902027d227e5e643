"""Refusals of objections, rights complaints and usage reports, provoked through the
services: each carries the rule the register lists and reads in Chinese."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.agreements.service import import_agreement
from sandbox.db.base import transaction
from sandbox.feedback.complaints import file_complaint, handle_complaint
from sandbox.feedback.models import ComplaintStatus, ObjectionStatus
from sandbox.feedback.objections import handle_objection, raise_objection
from sandbox.feedback.usage import submit_usage_report
from tests.control_plane.helpers import agreement
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

#: The first reporting period's end of the quarterly agreement below.
PERIOD_END = date(2026, 3, 31)


def _objection(to: ObjectionStatus, objection_id: int = 1, answer: str = "") -> Provoke:
    return lambda session, users: handle_objection(
        session=session, actor=users["health"], objection_id=objection_id, to=to, answer=answer
    )


def _complaint(to: ComplaintStatus, complaint_id: int = 1, answer: str = "") -> Provoke:
    return lambda session, users: handle_complaint(
        session=session, actor=users["health"], complaint_id=complaint_id, to=to, answer=answer
    )


def _report(who: str = "alice", period_end: date = PERIOD_END, summary: str = "s") -> Provoke:
    return lambda session, users: submit_usage_report(
        session=session,
        actor=users[who],
        agreement_id="AGR-T-0001",
        period_end=period_end,
        summary=summary,
        outputs="",
    )


CASES: dict[str, tuple[str, Provoke]] = {
    "an objection that does not exist": (
        "objection-unknown", _objection(ObjectionStatus.confirmed, objection_id=999)),
    "an objection resolved before it is confirmed": (
        "objection-transition", _objection(ObjectionStatus.resolved, answer="done")),
    "an objection rejected without an answer": (
        "objection-answer", _objection(ObjectionStatus.rejected)),
    "a complaint that does not exist": (
        "complaint-unknown", _complaint(ComplaintStatus.suspended, complaint_id=999)),
    "a complaint restored before it is suspended": (
        "complaint-transition", _complaint(ComplaintStatus.restored, answer="done")),
    "a complaint dismissed without an answer": (
        "complaint-answer", _complaint(ComplaintStatus.dismissed)),
    "a usage report by the provider": ("usage-report-author", _report(who="health")),
    "a usage report for a day that ends no period": (
        "usage-report-period", _report(period_end=date(2026, 3, 30))),
    "a usage report that says nothing": ("usage-report-summary", _report(summary=" ")),
}  # fmt: skip


@pytest.fixture
def raised(factory: sessionmaker[Session], published: Users) -> Users:
    """The catalogue published, an objection and a complaint received, an agreement."""
    with transaction(factory) as session:
        raise_objection(
            session=session,
            dataset="clinic_visits",
            submitter="Li",
            contact="li@example.invalid",
            description="district misspelt",
        )
        file_complaint(
            session=session, dataset="clinic_visits", complainant="Z", contact="z",
            kind="privacy", description="identifiable", evidence="screenshot",
        )  # fmt: skip
        agr = agreement(valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31))
        import_agreement(session=session, actor=published["health"], agreement=agr)
    return published


test_the_refusal_carries_its_rule_and_reads_in_chinese = refusal_test(CASES, "raised")


def test_a_period_is_reported_once(factory: sessionmaker[Session], raised: Users) -> None:
    with transaction(factory) as session:
        _report()(session, raised)
    again = refused(factory, raised, _report())
    assert assert_refused_by(again, "usage-report-duplicate") == (
        "截止于 2026-03-31 的报告期的报告已经提交"
    )
