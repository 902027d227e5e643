"""Refusals of accounts and applications, provoked through the services: each carries the
rule the register lists and reads in Chinese."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.attempts import record_attempt
from sandbox.accounts.backoff import ADDRESS, check_backoff
from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.accounts.totp import start_enrolment
from sandbox.applications.service import (
    approve_application,
    create_application,
    get_application,
    submit_application,
    update_application,
)
from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.db.base import transaction
from sandbox.identity.organisations import add_organisation
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.helpers import agreement, complete_application
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

SUBMITTED = date(2026, 12, 30)
#: A unified social credit code that passes GB 32100 (an organisation that does not exist).
CREDIT_CODE = "91320200MA1N2P3Q4" + credit_code_check_char("91320200MA1N2P3Q4")


def _organisation(session: Session, users: Users) -> object:
    return add_organisation(
        session=session, actor=users["ops"], credit_code=CREDIT_CODE, name="江南大学",
        legal_name="江南大学", verified_how="business licence",
    )  # fmt: skip


def _user(username: str, password: str = "long enough password", org: str = "") -> Provoke:
    return lambda session, _: create_user(
        session=session, username=username, password=password, role=Role.provider,
        display_name=username, organisation=org,
    )  # fmt: skip


CASES: dict[str, tuple[str, Provoke]] = {
    "an account name taken": ("user-duplicate", _user("alice", org="city-health-commission")),
    "a short password": ("password-length", _user("carol", "short", "city-health-commission")),
    "a provider without an organisation": ("user-fields", _user("dave")),
    "an organisation registered twice": (
        "organisation-duplicate", lambda session, users: [
            _organisation(session, users) for _ in range(2)]),
    "an application that does not exist": (
        "application-unknown", lambda session, users: get_application(
            session, users["alice"], 999)),
    "an application with a field it does not have": (
        "application-fields", lambda session, users: create_application(
            session=session, actor=users["alice"], fields={"budget": 1})),
    "an agreement wider than its application": (
        "agreement-within-application", lambda session, users: approve_application(
            session=session, actor=users["health"], application_id=1, scope="district costs",
            agreement=agreement(datasets={"secret_registry": {"columns": ["cost"]}}))),
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


def test_an_authenticator_is_set_up_once(
    factory: sessionmaker[Session], submitted: Users, settings: Settings
) -> None:
    """The provider set one up before signing in (the platform's fixture)."""

    def enrol(session: Session, users: Users) -> object:
        return start_enrolment(session, users["health"], settings.keys_dir)

    assert_refused_by(refused(factory, submitted, enrol), "mfa-enrolled")


def test_many_failures_from_one_address_make_it_wait(
    factory: sessionmaker[Session], published: Users
) -> None:
    """Past the address rule's free failures, against any accounts, the address waits."""
    now = datetime(2026, 12, 30, 9, tzinfo=UTC)
    with transaction(factory) as session:
        for i in range(ADDRESS.free + 1):
            record_attempt(
                session, username=f"guess{i}", address="203.0.113.7", channel="web",
                succeeded=False, at=now - timedelta(seconds=i),
            )  # fmt: skip

    def sign_in(session: Session, _: Users) -> object:
        check_backoff(session, username="carol", address="203.0.113.7", now=now)
        return None

    shown = assert_refused_by(refused(factory, published, sign_in), "sign-in-backoff-address")
    assert shown.startswith("最近一小时内从您的网络地址登录失败 11 次：请等待")
