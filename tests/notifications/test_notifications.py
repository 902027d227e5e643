"""Notices of deadlines and decisions: made once, stored in the app, emailed once over real SMTP."""

from __future__ import annotations

from datetime import date, timedelta
from email import message_from_string
from email.header import decode_header, make_header

import pytest
from sqlalchemy import select

from export_review.requests import create_request, submit_request
from export_review.rerun import own_cursors
from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.applications.service import (
    create_application,
    refuse_application,
    submit_application,
)
from sandbox.catalog.review import Decision, decide_review
from sandbox.catalog.service import change_open_class
from sandbox.contracts import OpenClass
from sandbox.db.base import transaction
from sandbox.keys.store import key_store
from sandbox.notifications.models import Notification
from sandbox.notifications.service import run
from sandbox.oversight.quality import raise_task
from sandbox.oversight.tipoffs import submit_tipoff
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, complete_application, publish_all

RECEIVED = date(2026, 12, 30)
#: The scene's catalogue: both entries were proposed by health and approved by auth.
APPROVED = {
    ("catalog_review_approved", "dataset:clinic_visits"),
    ("catalog_review_approved", "dataset:secret_registry"),
}


@pytest.fixture
def scene(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    """An application under review, and an agreement whose report and expiry come up.

    Returns the day the job runs: the eve of the review deadline.
    """
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        for name in ("alice", "health"):
            session.get(User, users[name].id).email = f"{name}@example.invalid"
        app = create_application(
            session=session, actor=users["alice"], fields=complete_application()
        )
        app = submit_application(
            session=session,
            actor=users["alice"],
            application_id=app.id,
            today=RECEIVED,
            calendar=WorkCalendar(),
        )
        day = app.review_deadline - timedelta(days=1)
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(
                valid_from=day - timedelta(days=100), valid_until=day + timedelta(days=20)
            ),
        )
    return day


def kinds(factory, username: str) -> set[tuple[str, str]]:  # noqa: ANN001
    with transaction(factory) as session:
        rows = session.scalars(select(Notification).where(Notification.recipient == username))
        return {(n.kind, n.object) for n in rows}


def subjects(inbox) -> list[tuple[list[str], str]]:  # noqa: ANN001
    return [
        (to, str(make_header(decode_header(message_from_string(text)["Subject"]))))
        for to, text in inbox.messages
    ]


def test_deadlines_are_noticed_once_in_the_app_and_by_email(factory, settings, scene, smtp):
    mailing = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    first = run(factory, mailing, scene)
    assert kinds(factory, "health") == {
        ("review_due", "application:1"),
        ("agreement_expiring_30", "agreement:AGR-T-0001"),
        *APPROVED,
    }
    assert kinds(factory, "alice") == {
        ("usage_report_due", "agreement:AGR-T-0001"),
        ("agreement_expiring_30", "agreement:AGR-T-0001"),
    }
    # auth heard of both proposals, but has no address: in the app only
    assert {kind for kind, _ in kinds(factory, "auth")} == {"catalog_review_submitted"}
    assert len(first.emailed) == 6 and first.failed == [] and first.created == 8
    sent = subjects(smtp)
    assert (
        sorted(to[0] for to, _ in sent)
        == ["alice@example.invalid"] * 2 + ["health@example.invalid"] * 4
    )
    assert any(s == "申请审核即将到期 / Application review due: application:1" for _, s in sent)

    again = run(factory, mailing, scene)
    assert (again.created, again.emailed) == (0, [])
    assert len(smtp.messages) == 6  # nothing sent twice

    later = run(factory, mailing, scene + timedelta(days=14))  # past review; 6 days to expiry
    assert ("review_overdue", "application:1") in kinds(factory, "health")
    assert ("agreement_expiring_7", "agreement:AGR-T-0001") in kinds(factory, "alice")
    assert later.created == len(later.emailed) == len(smtp.messages) - 6


def test_decisions_are_derived_from_the_record(factory, settings, users, scene, smtp):
    with transaction(factory) as session:
        refuse_application(
            session=session,
            actor=users["health"],
            application_id=1,
            reason="scenario not specific",
            legal_basis="Wuxi Art.15(3)",
        )
        req = create_request(
            session=session,
            settings=settings,
            actor=users["alice"],
            agreement_id="AGR-T-0001",
            purpose="district table",
            files=[("table.csv", b"district,n\nA,3\n")],
        )
        submit_request(
            session=session,
            actor=users["alice"],
            request_id=req.id,
            cursors=own_cursors(key_store(settings)),
        )
    mailing = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    run(factory, mailing, scene)
    alice = kinds(factory, "alice")
    assert ("application_refused", "application:1") in alice
    assert ("export_returned", f"export:{req.id}") in alice
    with transaction(factory) as session:
        refused = session.scalar(
            select(Notification).where(Notification.kind == "application_refused")
        )
    assert "scenario not specific" in refused.body and "Wuxi Art.15(3)" in refused.body
    assert run(factory, mailing, scene).created == 0  # the record is not read twice


def test_a_failed_send_is_tried_again_and_then_sent_once(factory, settings, scene, smtp):
    nowhere = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 1})
    failed = run(factory, nowhere, scene)
    assert failed.emailed == [] and len(failed.failed) == 6
    mailing = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    retried = run(factory, mailing, scene)
    assert sorted(retried.emailed) == sorted(failed.failed) and len(smtp.messages) == 6
    assert run(factory, mailing, scene).emailed == []


def test_users_read_and_mark_their_own_notices_over_http(client, factory, settings, scene):
    run(factory, settings, scene)  # no SMTP configured: stored in the app only
    alice = login(client, "alice")
    listed = client.get("/api/notifications", headers=alice).json()
    assert {n["kind"] for n in listed} == {"usage_report_due", "agreement_expiring_30"}
    assert all(not n["emailed"] and n["read_at"] is None for n in listed)
    target = listed[0]["id"]
    assert (
        client.post(f"/api/notifications/{target}/read", headers=login(client, "bob")).status_code
        == 404
    )
    marked = client.post(f"/api/notifications/{target}/read", headers=alice)
    assert marked.status_code == 200 and marked.json()["read_at"]
    unread = client.get("/api/notifications?unread=true", headers=alice).json()
    assert [n["id"] for n in unread] == [listed[1]["id"]]
    assert client.post("/api/notifications/run", headers=alice).status_code == 403
    assert client.post("/api/notifications/run", headers=login(client, "ops")).status_code == 200


def test_oversight_duties_are_noticed(factory, settings, users, scene):  # noqa: ANN001
    """Catalogue proposals reach the authority and decisions the provider; quality tasks
    and tip-offs reach the provider they concern (and tip-offs the authority)."""
    run(factory, settings, scene)  # the scene's own notices, out of the way
    with transaction(factory) as session:
        review = change_open_class(
            session=session,
            actor=users["health"],
            name="clinic_visits",
            to_class=OpenClass.unconditional,
            basis="",
        )
        task = raise_task(
            session=session,
            actor=users["auth"],
            dataset="clinic_visits",
            description="district codes out of date",
            today=scene,
            calendar=WorkCalendar(),
        )
        submit_tipoff(
            session=session,
            actor=None,
            kind="misuse",
            description="a table with names was shown at a conference",
            dataset="clinic_visits",
        )
    run(factory, settings, scene)
    assert ("catalog_review_submitted", "dataset:clinic_visits") in kinds(factory, "auth")
    assert ("tipoff_received", "dataset:clinic_visits") in kinds(factory, "auth")
    health = kinds(factory, "health")
    assert {("quality_task_raised", "dataset:clinic_visits")} <= health
    assert ("tipoff_received", "dataset:clinic_visits") in health
    assert not {k for k, _ in kinds(factory, "market")} & {"quality_task_raised", "tipoff_received"}

    with transaction(factory) as session:
        decide_review(
            session=session,
            actor=users["auth"],
            review_id=review.id,
            decision=Decision.reject,
            legality_review="the identifier column makes it unfit for unconditional opening",
        )
    run(factory, settings, task.due_on - timedelta(days=1))
    run(factory, settings, task.due_on + timedelta(days=1))
    health = kinds(factory, "health")
    assert ("catalog_review_rejected", "dataset:clinic_visits") in health
    assert {("quality_task_due", f"quality_task:{task.id}")} <= health
    assert ("quality_task_overdue", f"quality_task:{task.id}") in health
    with transaction(factory) as session:
        rejected = session.scalar(
            select(Notification).where(Notification.kind == "catalog_review_rejected")
        )
    assert "unfit for unconditional opening" in rejected.body
    assert "Shanghai Art.12" in rejected.body
