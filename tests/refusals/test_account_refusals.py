"""Refusals of accounts and applications, provoked through the services: each carries the
rule the register lists and reads in Chinese."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.applications.service import (
    create_application,
    get_application,
    submit_application,
    update_application,
)
from sandbox.db.base import transaction
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.helpers import complete_application
from tests.refusals.provoke import Provoke, Users, refusal_test

SUBMITTED = date(2026, 12, 30)


def _user(username: str, password: str = "long enough password", org: str = "") -> Provoke:
    return lambda session, _: create_user(
        session=session, username=username, password=password, role=Role.provider,
        display_name=username, organisation=org,
    )  # fmt: skip


CASES: dict[str, tuple[str, Provoke]] = {
    "an account name taken": ("user-duplicate", _user("alice", org="city-health-commission")),
    "a short password": ("password-length", _user("carol", "short", "city-health-commission")),
    "a provider without an organisation": ("user-fields", _user("dave")),
    "an application that does not exist": (
        "application-unknown", lambda session, users: get_application(
            session, users["alice"], 999)),
    "an application with a field it does not have": (
        "application-fields", lambda session, users: create_application(
            session=session, actor=users["alice"], fields={"budget": 1})),
    "a submitted application edited": (
        "application-state", lambda session, users: update_application(
            session=session, actor=users["alice"], application_id=1, fields={"title": "x"})),
}  # fmt: skip


@pytest.fixture
def submitted(factory: sessionmaker[Session], published: Users) -> Users:
    """alice's first application, complete and submitted to the health provider."""
    with transaction(factory) as session:
        alice = published["alice"]
        app = create_application(session=session, actor=alice, fields=complete_application())
        submit_application(
            session=session, actor=alice, application_id=app.id, today=SUBMITTED,
            calendar=WorkCalendar(),
        )  # fmt: skip
    return published


test_the_refusal_carries_its_rule_and_reads_in_chinese = refusal_test(CASES, "submitted")
