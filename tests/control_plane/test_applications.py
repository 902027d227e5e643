"""Applications and their review (R3, R4; Wuxi Art.15, Rizhao Art.20)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from sandbox.applications.models import ApplicationStatus
from sandbox.applications.service import (
    approve_application,
    create_application,
    is_overdue,
    list_applications,
    refuse_application,
    submit_application,
)
from sandbox.audit.filings import Filing
from sandbox.db.base import transaction
from sandbox.errors import Conflict, NotFound, PolicyViolation, ValidationFailed
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, complete_application, publish_all

CAL = WorkCalendar(holidays={date(2027, 1, 1)}, makeup_workdays={date(2027, 1, 9)})
RECEIVED = date(2026, 12, 30)  # Wednesday


@pytest.fixture
def published(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    return users


def _submit(factory, users, fields):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        app = create_application(session=session, actor=users["alice"], fields=fields)
    with transaction(factory) as session:
        return submit_application(
            session=session,
            actor=users["alice"],
            application_id=app.id,
            today=RECEIVED,
            calendar=CAL,
        )


def test_incomplete_application_is_not_forwarded(factory, published):
    users = published
    fields = complete_application(
        scenario="",
        commitment_signed=False,
        datasets={"clinic_visits": ["patient_id", "nope"], "secret_registry": ["cost"]},
    )
    with pytest.raises(ValidationFailed) as err:
        _submit(factory, users, fields)
    msg = err.value.message
    assert err.value.rule == "application-incomplete" and "Wuxi Art.15" in err.value.article
    assert "application scenario" in msg and "signed commitment" in msg
    assert "unknown: nope" in msg and "'secret_registry' is not in the public catalogue" in msg
    with transaction(factory) as session:
        (app,) = list_applications(session, users["alice"])
        assert app.status == ApplicationStatus.draft and app.review_deadline is None
        assert list_applications(session, users["health"]) == []  # not forwarded


def test_deadline_is_ten_working_days_on_the_calendar(factory, published):
    app = _submit(factory, published, complete_application())
    # 31 Dec (1), 1 Jan holiday, 2-3 weekend, 4-8 Jan (2-6), Sat 9 Jan make-up (7),
    # 10 Sun, 11-13 Jan (8-10).
    assert app.review_deadline == date(2027, 1, 13)
    assert app.status == ApplicationStatus.under_review and app.provider == "city-health-commission"
    assert not is_overdue(app, date(2027, 1, 13)) and is_overdue(app, date(2027, 1, 14))


def test_duplicate_submission_is_refused(factory, published):
    app = _submit(factory, published, complete_application())
    with transaction(factory) as session, pytest.raises(Conflict) as err:
        submit_application(
            session=session,
            actor=published["alice"],
            application_id=app.id,
            today=RECEIVED,
            calendar=CAL,
        )
    assert err.value.rule == "application-duplicate-submission"


def test_refusal_needs_reason_and_legal_basis(factory, published):
    app = _submit(factory, published, complete_application())
    with transaction(factory) as session, pytest.raises(ValidationFailed) as err:
        refuse_application(
            session=session,
            actor=published["health"],
            application_id=app.id,
            reason="Scope too wide",
            legal_basis="",
        )
    assert err.value.rule == "refusal-needs-basis"
    with transaction(factory) as session:
        done = refuse_application(
            session=session,
            actor=published["health"],
            application_id=app.id,
            reason="Scope too wide",
            legal_basis="Wuxi Art.15(3)",
        )
    assert done.status == ApplicationStatus.refused


def test_other_provider_cannot_review_and_researchers_see_only_their_own(factory, published):
    app = _submit(factory, published, complete_application())
    with transaction(factory) as session:
        with pytest.raises(NotFound):
            refuse_application(
                session=session,
                actor=published["market"],
                application_id=app.id,
                reason="x",
                legal_basis="y",
            )
        assert list_applications(session, published["bob"]) == []


def test_approval_states_scope_and_produces_an_agreement(factory, published):
    app = _submit(factory, published, complete_application())
    wide = agreement(
        datasets={"clinic_visits": {"columns": ["patient_id", "district", "cost"]}},
        application_id=None,
    )
    with transaction(factory) as session:
        rec = approve_application(
            session=session,
            actor=published["health"],
            application_id=app.id,
            scope="District means only",
            agreement=wide,
        )
    assert rec.status == "active" and rec.application_id == app.id
    with transaction(factory) as session:
        filing = session.scalar(select(Filing).where(Filing.kind == "agreement_signed"))
        assert filing.article == "Rizhao Art.20" and filing.object == "agreement:AGR-T-0001"


def test_agreement_may_not_widen_the_application(factory, published):
    app = _submit(
        factory, published, complete_application(datasets={"clinic_visits": ["district", "cost"]})
    )
    with transaction(factory) as session, pytest.raises(PolicyViolation) as err:
        approve_application(
            session=session,
            actor=published["health"],
            application_id=app.id,
            scope="x",
            agreement=agreement(),
        )
    assert "patient_id" in err.value.message
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Filing)) == 0


def test_application_flow_over_http(client, published):
    alice = login(client, "alice")
    r = client.post("/api/applications", headers=alice, json={"title": "Draft only"})
    assert r.status_code == 201 and "the application scenario (应用场景)" in r.json()["missing"]
    app_id = r.json()["id"]
    r = client.post(f"/api/applications/{app_id}/submit", headers=alice)
    assert r.status_code == 422 and r.json()["rule"] == "application-incomplete"
    body = complete_application()
    body["usage_from"], body["usage_until"] = "2027-01-01", "2027-06-30"
    assert client.patch(f"/api/applications/{app_id}", headers=alice, json=body).status_code == 200
    r = client.post(f"/api/applications/{app_id}/submit", headers=alice)
    assert r.status_code == 200 and r.json()["review_deadline"]
    assert client.post(f"/api/applications/{app_id}/submit", headers=alice).status_code == 409
    health = login(client, "health")
    assert [a["id"] for a in client.get("/api/applications", headers=health).json()] == [app_id]
    r = client.post(
        f"/api/applications/{app_id}/refuse",
        headers=health,
        json={"reason": "no", "legal_basis": ""},
    )
    assert r.status_code == 422 and r.json()["article"].startswith("Wuxi Art.15(3)")
    assert (
        client.get(f"/api/applications/{app_id}", headers=login(client, "bob")).status_code == 404
    )
