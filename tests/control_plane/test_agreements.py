"""Agreements: validation, the authoritative versioned copy, lifecycle (R5, R6, R9, R11, R16)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from sandbox.accounts.service import issue_workspace_token, resolve_token
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.models import AgreementVersion
from sandbox.agreements.service import (
    amend_agreement,
    change_status,
    effective_datasets,
    export_agreement,
    get_agreement,
    import_agreement,
    run_lifecycle,
)
from sandbox.catalog.service import suspended_datasets
from sandbox.contracts import AgreementDataset, load_agreement_text
from sandbox.db.base import transaction
from sandbox.errors import (
    Conflict,
    ContractError,
    InvalidStateTransition,
    PolicyViolation,
    ValidationFailed,
)
from sandbox.feedback.complaints import file_complaint, handle_complaint
from sandbox.feedback.models import ComplaintStatus
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, publish_all

TODAY = date.today()


@pytest.fixture
def published(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    return users


def _import(factory, users, agr, who="health"):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        return import_agreement(session=session, actor=users[who], agreement=agr)


@pytest.mark.parametrize(
    ("datasets", "error", "rule"),
    [
        ({"nope": {"columns": ["x"]}}, ContractError, "agreement-dataset"),
        ({"clinic_visits": {"columns": ["ghost"]}}, ContractError, "agreement-columns"),
        ({"secret_registry": {"columns": ["cost"]}}, PolicyViolation, "non-open-never-provisioned"),
        (
            {"clinic_visits": {"columns": ["cost"], "row_filter": "ghost > 1"}},
            ContractError,
            "row-filter",
        ),
        (
            {"clinic_visits": {"columns": ["cost"], "row_filter": "cost > (SELECT 1)"}},
            ContractError,
            "row-filter",
        ),
        (
            {"clinic_visits": {"columns": ["cost"], "row_filter": "cost >"}},
            ContractError,
            "row-filter",
        ),
    ],
)
def test_invalid_agreements_are_refused(factory, published, datasets, error, rule):
    with pytest.raises(error) as err:
        _import(factory, published, agreement(datasets=datasets))
    assert err.value.rule == rule
    with transaction(factory) as session, pytest.raises(Exception, match="does not exist"):
        get_agreement(session, "AGR-T-0001")


def test_unknown_fields_and_incoherent_dates_are_errors():
    with pytest.raises(ContractError, match="surprise: unknown field"):
        load_agreement_text("id: A\nsurprise: 1\n")
    with pytest.raises(Exception, match="valid_until must not be before valid_from"):
        agreement(valid_until=TODAY - timedelta(days=30))


def test_database_copy_is_authoritative_and_versioned(factory, published):
    agr = agreement()
    _import(factory, published, agr)
    assert _import(factory, published, agr).version == 1  # the same file is accepted
    with pytest.raises(Conflict) as err:
        _import(factory, published, agreement(purpose="Something else"))
    assert err.value.rule == "agreement-authoritative-copy"
    narrower = agreement(datasets={"clinic_visits": AgreementDataset(columns=["district"])})
    with transaction(factory) as session:
        rec = amend_agreement(
            session=session, actor=published["health"], agreement=narrower, reason="drop cost"
        )
    assert rec.version == 2
    with transaction(factory) as session:
        versions = session.scalars(select(AgreementVersion).order_by(AgreementVersion.version))
        assert [(v.version, v.dataset_versions) for v in versions] == [
            (1, {"clinic_visits": 1}),
            (2, {"clinic_visits": 1}),
        ]
        exported = load_agreement_text(export_agreement(session, published["alice"], "AGR-T-0001"))
        assert exported == narrower


def test_suspension_needs_rectification_deadline_and_missed_deadline_ends(factory, published):
    _import(factory, published, agreement())
    with transaction(factory) as session, pytest.raises(ValidationFailed) as err:
        change_status(
            session=session,
            actor=published["ops"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.suspend,
            reason="no MFA",
            today=TODAY,
        )
    assert "Shanghai Art.26, 36" in err.value.message
    with transaction(factory) as session:
        token, _ = issue_workspace_token(
            session, published["alice"], get_agreement(session, "AGR-T-0001")
        )
    with transaction(factory) as session:
        rec = change_status(
            session=session,
            actor=published["ops"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.suspend,
            reason="no MFA",
            rectification_days=5,
            today=TODAY,
        )
        assert rec.rectification_deadline == TODAY + timedelta(days=5)
    with transaction(factory) as session:
        assert resolve_token(session, token) is None  # dead before the call returned
        with pytest.raises(PolicyViolation, match="workspaces run only under an active"):
            issue_workspace_token(session, published["alice"], get_agreement(session, "AGR-T-0001"))
    with transaction(factory) as session:
        assert run_lifecycle(session, today=TODAY + timedelta(days=5)) == []
        assert run_lifecycle(session, today=TODAY + timedelta(days=6)) == [
            ("AGR-T-0001", "terminated")
        ]
    with transaction(factory) as session, pytest.raises(InvalidStateTransition) as err:
        change_status(
            session=session,
            actor=published["health"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.reinstate,
            reason="too late",
            today=TODAY,
        )
    assert "allowed: nothing (it has ended)" in err.value.message


def test_expiry_by_date(factory, published):
    _import(factory, published, agreement(valid_until=TODAY))
    with transaction(factory) as session:
        assert run_lifecycle(session, today=TODAY) == []
        assert run_lifecycle(session, today=TODAY + timedelta(days=1)) == [
            ("AGR-T-0001", "expired")
        ]


def test_rights_complaint_suspends_the_dataset_everywhere(factory, published):
    _import(factory, published, agreement())
    with transaction(factory) as session:
        c = file_complaint(
            session=session,
            dataset="clinic_visits",
            complainant="Zhang",
            contact="z@example.invalid",
            kind="privacy",
            description="my visits are identifiable",
            evidence="letter",
        )
    with transaction(factory) as session:
        handle_complaint(
            session=session,
            actor=published["health"],
            complaint_id=c.id,
            to=ComplaintStatus.suspended,
        )
    with transaction(factory) as session:
        assert "clinic_visits" in suspended_datasets(session)
        rec = get_agreement(session, "AGR-T-0001")
        assert rec.status == "active" and effective_datasets(session, rec) == {}
    with transaction(factory) as session, pytest.raises(ValidationFailed):
        handle_complaint(
            session=session,
            actor=published["health"],
            complaint_id=c.id,
            to=ComplaintStatus.restored,
        )  # the complainant must be answered
    with transaction(factory) as session:
        handle_complaint(
            session=session,
            actor=published["health"],
            complaint_id=c.id,
            to=ComplaintStatus.restored,
            answer="Verified: aggregated only.",
        )
    with transaction(factory) as session:
        assert "clinic_visits" not in suspended_datasets(session)


def test_lifecycle_over_http_with_roles(client, published):
    _yaml = agreement().model_dump(mode="json")
    import yaml as _y

    text = _y.safe_dump(_yaml, allow_unicode=True)
    r = client.post(
        "/api/agreements",
        headers={**login(client, "alice"), "content-type": "application/yaml"},
        content=text,
    )
    assert r.status_code == 403
    health = {**login(client, "health"), "content-type": "application/yaml"}
    assert client.post("/api/agreements", headers=health, content=text).status_code == 201
    r = client.post(
        "/api/agreements/AGR-T-0001/terminate",
        headers=login(client, "market"),
        json={"reason": "x"},
    )
    assert r.status_code == 403 and r.json()["rule"] == "provider-owns"
    r = client.post(
        "/api/agreements/AGR-T-0001/reinstate", headers=login(client, "ops"), json={"reason": "x"}
    )
    assert r.status_code == 409 and "allowed: expire, suspend, terminate" in r.json()["error"]
    assert client.get("/api/agreements/AGR-T-0001", headers=login(client, "bob")).status_code == 404
    shown = client.get("/api/agreements/AGR-T-0001", headers=login(client, "alice")).json()
    assert shown["status"] == "active" and shown["versions"][0]["dataset_versions"] == {
        "clinic_visits": 1
    }
    filings = client.get("/api/filings", headers=login(client, "auth")).json()
    assert filings[0]["kind"] == "agreement_signed"
