"""Data-quality rectification tasks (Wuxi Art.13): raised by the authority, due in 10 working
days on the platform's calendar, flagged when overdue, answered and closed by the provider."""

from __future__ import annotations

from datetime import date

from sandbox.catalog.service import publish_dataset
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.feedback.models import ObjectionStatus
from sandbox.feedback.objections import handle_objection, raise_objection
from sandbox.oversight.quality import handle_task, list_tasks, raise_task
from sandbox.workcalendar import HOLIDAYS_2026, MAKEUP_WORKDAYS_2026, WorkCalendar
from tests.control_plane.conftest import login

CALENDAR = WorkCalendar(HOLIDAYS_2026, MAKEUP_WORKDAYS_2026)


def test_due_in_ten_working_days_and_overdue_after(factory, signed):
    auth, health = signed["auth"], signed["health"]
    with transaction(factory) as session:
        # Raised on Wednesday 30 September 2026: the National Day week (1-7 October) is not
        # counted, Saturday 10 October is a make-up working day.
        task = raise_task(
            session=session, actor=auth, dataset="clinic_visits",
            description="Empty district values.", today=date(2026, 9, 30), calendar=CALENDAR,
        )  # fmt: skip
        assert task.due_on == date(2026, 10, 20)
        on_time = list_tasks(session, health, today=date(2026, 10, 20), overdue_only=True)
        late = list_tasks(session, health, today=date(2026, 10, 21), overdue_only=True)
        assert on_time == [] and [t.id for t in late] == [task.id]
        assert list_tasks(session, signed["market"], today=date(2026, 10, 21)) == []
    with transaction(factory) as session:
        handle_task(
            session=session, actor=health, task_id=task.id, to="answered",
            answer="Backfilling districts from the registry.",
        )  # fmt: skip
        assert list_tasks(session, auth, today=date(2026, 12, 1), overdue_only=True) == []


def test_closing_waits_for_a_new_version_over_http(client, factory, signed, settings, catalog_dir):
    auth, health = login(client, "auth"), login(client, "health")
    r = client.post(
        "/api/quality-tasks",
        json={"dataset": "clinic_visits", "description": "Duplicate rows.",
              "require_new_version": True},
        headers=auth,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["dataset"] == "clinic_visits" and task["version_at_raise"] == 1
    refused = client.post(
        "/api/quality-tasks", json={"dataset": "clinic_visits", "description": "x"}, headers=health
    )
    assert refused.status_code == 403
    market = client.post(
        f"/api/quality-tasks/{task['id']}",
        json={"to": "closed", "answer": "done"},
        headers=login(client, "market"),
    )
    assert market.status_code == 403
    early = client.post(
        f"/api/quality-tasks/{task['id']}", json={"to": "closed", "answer": "done"}, headers=health
    )
    assert early.status_code == 403 and early.json()["rule"] == "quality-task-new-version"
    assert early.json()["article"] == "Wuxi Art.13"
    entry = load_catalog_entry(catalog_dir / "clinic_visits.yaml")
    with transaction(factory) as session:
        publish_dataset(
            session=session, actor=signed["health"], entry=entry,
            data_path=entry.source_path(), settings=settings,
        )  # fmt: skip
    r = client.post(
        f"/api/quality-tasks/{task['id']}",
        json={"to": "closed", "answer": "Deduplicated in version 2."},
        headers=health,
    )
    assert r.status_code == 200 and r.json()["closed_version"] == 2
    listed = client.get("/api/quality-tasks", headers=health).json()
    assert [(t["id"], t["status"], t["overdue"]) for t in listed] == [(task["id"], "closed", False)]
    assert client.get("/api/quality-tasks?overdue=true", headers=auth).json() == []


def test_confirmed_objection_becomes_a_task(client, factory, signed):
    with transaction(factory) as session:
        o = raise_objection(
            session=session, dataset="clinic_visits", submitter="Li",
            contact="li@example.invalid", description="Costs in fen, not yuan.",
        )  # fmt: skip
    auth = login(client, "auth")
    r = client.post("/api/quality-tasks", json={"objection_id": o.id}, headers=auth)
    assert r.status_code == 422 and r.json()["rule"] == "quality-task-objection"
    with transaction(factory) as session:
        handle_objection(
            session=session, actor=signed["health"], objection_id=o.id, to=ObjectionStatus.confirmed
        )
    r = client.post("/api/quality-tasks", json={"objection_id": o.id}, headers=auth)
    assert r.status_code == 201
    assert r.json()["description"] == "Costs in fen, not yuan." and r.json()["objection_id"] == o.id
    assert (
        client.post("/api/quality-tasks", json={"objection_id": o.id}, headers=auth).status_code
        == 409
    )
