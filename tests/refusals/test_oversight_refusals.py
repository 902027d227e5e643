"""Refusals of oversight (tip-offs, data requests, rectification tasks, violations),
provoked through the services: each carries the rule the register lists and reads in
Chinese."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from query_guard.early_warning.models import Alert
from query_guard.early_warning.service import acknowledge
from sandbox.db.base import transaction
from sandbox.feedback.models import ObjectionStatus
from sandbox.feedback.objections import handle_objection, raise_objection
from sandbox.oversight.demand import handle_demand, submit_demand
from sandbox.oversight.quality import handle_task, raise_task
from sandbox.oversight.tipoffs import handle_tipoff, submit_tipoff
from sandbox.oversight.violations import (
    apply_measure,
    confirm_rectified,
    publish_violation,
    record_violation,
)
from sandbox.workcalendar import WorkCalendar
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

TODAY = date(2026, 9, 30)
CALENDAR = WorkCalendar()


def _task(task_id: int = 1, answer: str = "") -> Provoke:
    return lambda session, users: handle_task(
        session=session, actor=users["health"], task_id=task_id, to="answered", answer=answer
    )


def _measure(measure: str, violation_id: int = 1) -> Provoke:
    return lambda session, users: apply_measure(
        session=session, actor=users["ops"], violation_id=violation_id, measure=measure,
        reason="checked", today=TODAY,
    )  # fmt: skip


CASES: dict[str, tuple[str, Provoke]] = {
    "a tip-off that does not exist": (
        "tipoff-unknown", lambda session, users: handle_tipoff(
            session=session, actor=users["auth"], tipoff_id=999, to="handling")),
    "a tip-off moved back to received": (
        "tipoff-transition", lambda session, users: handle_tipoff(
            session=session, actor=users["auth"], tipoff_id=1, to="received")),
    "a data request that does not exist": (
        "demand-unknown", lambda session, users: handle_demand(
            session=session, actor=users["auth"], demand_id=999, to="answered", answer="a")),
    "a data request moved back to received": (
        "demand-transition", lambda session, users: handle_demand(
            session=session, actor=users["auth"], demand_id=1, to="received", answer="a")),
    "a rectification task that does not exist": ("quality-task-unknown", _task(task_id=999)),
    "a rectification task answered without an answer": ("quality_task-answer", _task()),
    "a rectification task about nothing": (
        "quality-task-incomplete", lambda session, users: raise_task(
            session=session, actor=users["auth"], today=TODAY, calendar=CALENDAR)),
    "a violation that does not exist": ("violation-unknown", _measure("record_only", 999)),
    "a violation from an alert that does not exist": (
        "alert-unknown", lambda session, users: record_violation(
            session=session, actor=users["ops"], kind="platform_rules", evidence="log",
            agreement_id="AGR-T-0001", researcher="alice", alert_id=999)),
    "a measure that is not one": ("violation-measure", _measure("a fine")),
    "a violation rectified before any measure": (
        "violation-transition", lambda session, users: confirm_rectified(
            session=session, actor=users["ops"], violation_id=1, reason="done", today=TODAY)),
}  # fmt: skip


@pytest.fixture
def cases(factory: sessionmaker[Session], signed: Users) -> Users:
    """A tip-off, a data request, a rectification task and a violation, each the first."""
    with transaction(factory) as session:
        submit_tipoff(session=session, actor=None, kind="misuse", description="copied rows")
        submit_demand(
            session=session,
            requester="Li",
            contact="li@example.invalid",
            title="Bus stops",
            description="for a route study",
        )
        raise_task(
            session=session,
            actor=signed["auth"],
            dataset="clinic_visits",
            description="Empty district values.",
            today=TODAY,
            calendar=CALENDAR,
        )
        record_violation(
            session=session, actor=signed["ops"], kind="platform_rules",
            evidence="alert log", agreement_id="AGR-T-0001", researcher="alice",
        )  # fmt: skip
    return signed


test_the_refusal_carries_its_rule_and_reads_in_chinese = refusal_test(CASES, "cases")


def test_a_violation_is_published_once(factory: sessionmaker[Session], cases: Users) -> None:
    def publish(session: Session, users: Users) -> object:
        return publish_violation(session=session, actor=users["ops"], violation_id=1, today=TODAY)

    with transaction(factory) as session:
        _measure("record_only")(session, cases)
        publish(session, cases)
    again = refused(factory, cases, publish)
    assert (
        assert_refused_by(again, "violation-published") == "违规行为 1 已于 2026-09-30 列入违规名单"
    )


def test_a_confirmed_objection_becomes_one_task(
    factory: sessionmaker[Session], cases: Users
) -> None:
    def task(session: Session, users: Users) -> object:
        return raise_task(
            session=session, actor=users["auth"], objection_id=1, today=TODAY, calendar=CALENDAR
        )

    with transaction(factory) as session:
        raise_objection(
            session=session, dataset="clinic_visits", submitter="Li", contact="li@example.invalid",
            description="district misspelt",
        )  # fmt: skip
        handle_objection(
            session=session, actor=cases["health"], objection_id=1, to=ObjectionStatus.confirmed
        )
        task(session, cases)
    assert_refused_by(refused(factory, cases, task), "quality-task-dup")


def test_an_alert_is_acknowledged_once(factory: sessionmaker[Session], cases: Users) -> None:
    def look(session: Session, users: Users) -> object:
        return acknowledge(session, users["ops"], 1)

    with transaction(factory) as session:
        session.add(Alert(agreement_id="AGR-T-0001", researcher="alice", kind="bulk_extraction"))
        session.flush()
        look(session, cases)
    assert assert_refused_by(refused(factory, cases, look), "alert-acknowledged") == "预警 1 已确认"
