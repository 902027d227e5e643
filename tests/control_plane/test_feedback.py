"""Objections (R10) and usage reports (R8)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sandbox.agreements.service import get_agreement, import_agreement
from sandbox.catalog.service import get_dataset
from sandbox.db.base import transaction
from sandbox.errors import Conflict, InvalidStateTransition, PermissionDenied, ValidationFailed
from sandbox.feedback.models import ObjectionStatus
from sandbox.feedback.objections import handle_objection, raise_objection
from sandbox.feedback.usage import overdue_reports, period_ends, submit_usage_report
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, publish_all


@pytest.fixture
def published(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    return users


def test_confirmed_objection_marks_the_dataset_until_resolved(factory, published):
    with transaction(factory) as session:
        o = raise_objection(
            session=session,
            dataset="clinic_visits",
            submitter="Li",
            contact="li@example.invalid",
            description="district misspelt",
        )
    health = published["health"]
    with transaction(factory) as session, pytest.raises(PermissionDenied):
        handle_objection(
            session=session,
            actor=published["market"],
            objection_id=o.id,
            to=ObjectionStatus.confirmed,
        )
    with transaction(factory) as session:
        handle_objection(
            session=session, actor=health, objection_id=o.id, to=ObjectionStatus.confirmed
        )
        assert get_dataset(session, "clinic_visits").under_objection
    with transaction(factory) as session, pytest.raises(ValidationFailed, match="answered"):
        handle_objection(
            session=session, actor=health, objection_id=o.id, to=ObjectionStatus.resolved
        )
    with transaction(factory) as session, pytest.raises(InvalidStateTransition):
        handle_objection(
            session=session,
            actor=health,
            objection_id=o.id,
            to=ObjectionStatus.rejected,
            answer="no",
        )
    with transaction(factory) as session:
        handle_objection(
            session=session,
            actor=health,
            objection_id=o.id,
            to=ObjectionStatus.resolved,
            answer="Fixed in version 2.",
        )
        assert not get_dataset(session, "clinic_visits").under_objection


def test_public_objection_and_complaint_over_http(client, published):
    r = client.post(
        "/api/catalog/clinic_visits/objections",
        json={"submitter": "Li", "contact": "x", "description": "wrong"},
    )
    assert r.status_code == 201
    r = client.post(
        "/api/catalog/clinic_visits/complaints",
        json={
            "complainant": "Z",
            "contact": "z",
            "kind": "privacy",
            "description": "identifiable",
            "evidence": "",
        },
    )
    assert r.status_code == 422 and "evidence" in r.json()["error"]
    hidden = client.post(
        "/api/catalog/secret_registry/objections",
        json={"submitter": "a", "contact": "b", "description": "c"},
    )
    assert hidden.status_code == 404  # non-open datasets are not public, not even by name
    listed = client.get("/api/objections", headers=login(client, "health")).json()
    assert [o["description"] for o in listed] == ["wrong"]
    assert client.get("/api/objections", headers=login(client, "market")).json() == []
    assert client.get("/api/objections", headers=login(client, "alice")).status_code == 403


def test_usage_reports_are_scheduled_and_overdue_is_flagged(factory, published):
    start = date(2026, 1, 1)
    agr = agreement(valid_from=start, valid_until=date(2026, 12, 31))
    with transaction(factory) as session:
        import_agreement(session=session, actor=published["health"], agreement=agr)
        rec = get_agreement(session, agr.id)
        assert period_ends(rec) == [
            date(2026, 3, 31),
            date(2026, 6, 30),
            date(2026, 9, 30),
            date(2026, 12, 31),
        ]
        late = overdue_reports(session, date(2026, 4, 16))
        assert [(r.agreement_id, r.period_end) for r in late] == [(agr.id, date(2026, 3, 31))]
    with transaction(factory) as session, pytest.raises(ValidationFailed) as err:
        submit_usage_report(
            session=session,
            actor=published["alice"],
            agreement_id=agr.id,
            period_end=date(2026, 3, 30),
            summary="s",
            outputs="",
        )
    assert "2026-03-31" in err.value.message and err.value.article == "Shanghai Art.25"
    with transaction(factory) as session, pytest.raises(PermissionDenied):
        submit_usage_report(
            session=session,
            actor=published["health"],
            agreement_id=agr.id,
            period_end=date(2026, 3, 31),
            summary="s",
            outputs="",
        )
    with transaction(factory) as session:
        submit_usage_report(
            session=session,
            actor=published["alice"],
            agreement_id=agr.id,
            period_end=date(2026, 3, 31),
            summary="Means per district.",
            outputs="Report, citing the city health commission.",
        )
    with transaction(factory) as session:
        assert overdue_reports(session, date(2026, 4, 16)) == []
        with pytest.raises(Conflict):
            submit_usage_report(
                session=session,
                actor=published["alice"],
                agreement_id=agr.id,
                period_end=date(2026, 3, 31),
                summary="again",
                outputs="",
            )
    assert date(2026, 3, 31) + timedelta(days=15) == date(2026, 4, 15)
