"""The query service over real HTTP (TestClient), real DuckDB files and a real platform database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from query_guard.service.models import QueryLog
from sandbox.accounts.models import ApiToken, User
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.models import AgreementRecord
from sandbox.agreements.service import change_status, get_agreement
from sandbox.apps.worker import create_worker_app
from sandbox.audit.models import AuditEvent
from sandbox.catalog.models import Dataset, DatasetStatus
from sandbox.clock import today
from sandbox.db.base import transaction
from sandbox.feedback.complaints import ComplaintStatus, file_complaint, handle_complaint
from sandbox.feedback.usage import period_ends
from tests.query_service.conftest import (
    AGGREGATE,
    BOBS,
    RECORD,
    RECORD_MAX_ROWS,
    World,
    assert_close_to,
    bearer,
    login,
)

BY_DISTRICT = (
    "SELECT district, count(*) AS n, sum(cost) AS total FROM clinic_visits "
    "GROUP BY district ORDER BY district"
)


def _query(qs: TestClient, world: World, agreement_id: str, sql: str, **headers: str):
    return qs.post(
        "/qs/query", json={"sql": sql}, headers={**bearer(world.tokens[agreement_id]), **headers}
    )


def _events(world: World, action: str) -> list[dict]:
    with transaction(world.factory) as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [json.loads(e.details) | {"actor": e.actor, "object": e.object} for e in rows]


def test_allowed_query_returns_the_numbers_of_the_agreement_database(
    qs: TestClient, world: World, tmp_path: Path
) -> None:
    expected = world.direct(AGGREGATE, BY_DISTRICT, tmp_path)
    r = _query(qs, world, AGGREGATE, BY_DISTRICT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(r.content).read_all()
    got = list(zip(*(table.column(c).to_pylist() for c in ("district", "n", "total")), strict=True))
    assert_close_to(got, expected)
    decision = json.loads(table.schema.metadata[b"query_guard.decision"])
    assert decision["action"] == "rewrite"  # anonymised (QG-022)
    disclosure = json.loads(table.schema.metadata[b"query_guard.disclosure"])
    assert disclosure["perturbed"] is True

    as_json = _query(qs, world, AGGREGATE, BY_DISTRICT, Accept="application/json")
    assert as_json.status_code == 200
    again = [tuple(row) for row in as_json.json()["rows"]]
    assert [r[:2] for r in again] == [g[:2] for g in got]  # the same noise again
    assert [r[2] for r in again] == pytest.approx([g[2] for g in got], rel=1e-9)  # sum order

    [event, _] = _events(world, "query")
    assert event["decision"] == "rewrite" and event["rows"] == len(expected)
    assert event["actor"] == "alice" and event["object"] == f"agreement:{AGGREGATE}"
    # The record keeps the checked query and the digest of what the guard compiled it to.
    compiled = decision["sql"].encode()  # as the answer's metadata says it ran
    assert event["compiled_sha256"] == hashlib.sha256(compiled).hexdigest()
    assert "__qg_" not in event["ran"] and "clinic_visits" in event["ran"]


def test_blocked_query_returns_reasons_and_is_recorded(qs: TestClient, world: World) -> None:
    r = _query(qs, world, AGGREGATE, "SELECT patient_id, cost FROM clinic_visits")
    assert r.status_code == 403
    body = r.json()
    assert body["action"] == "block" and body["rule"] == "QG-007"
    assert {"rule": "QG-007"}.items() <= body["reasons"][0].items()
    assert body["reasons"][0]["article"]
    [event] = _events(world, "query")
    assert event["decision"] == "block" and event["rows"] == 0
    assert [x["rule"] for x in event["reasons"]] == [x["rule"] for x in body["reasons"]]
    # the factory fixture verifies the whole audit chain after the test


def test_identifier_literals_are_hashed_in_the_record(qs: TestClient, world: World) -> None:
    raw_ids = ["11010519491231002X", "91350100M000100Y43"]
    _query(
        qs,
        world,
        AGGREGATE,
        f"SELECT count(*) AS n FROM clinic_visits WHERE patient_id = '{raw_ids[0]}'",
    )
    _query(
        qs,
        world,
        AGGREGATE,
        f"SELECT count(*) AS n FROM clinic_visits WHERE district = '{raw_ids[1]}'",
    )
    _query(
        qs,
        world,
        AGGREGATE,
        "SELECT count(*) AS n FROM clinic_visits WHERE "
        "patient_id IN ('abc', 'def') AND district = '梁溪区'",
    )
    events = _events(world, "query")
    text = json.dumps(events, ensure_ascii=False)
    assert len(events) == 3
    for raw in (*raw_ids, "'abc'", "'def'"):
        assert raw not in text
    assert "梁溪区" in text  # ordinary literals stay readable
    assert events[0]["sql"].count("'h:") == 1 and events[2]["sql"].count("'h:") == 2


def test_record_mode_counts_rows_returned(qs: TestClient, world: World) -> None:
    for _ in range(3):
        r = _query(qs, world, RECORD, "SELECT district, cost FROM clinic_visits")
        assert r.status_code == 200, r.text
        assert pa.ipc.open_stream(r.content).read_all().num_rows == RECORD_MAX_ROWS
    with transaction(world.factory) as session:
        logged = session.scalars(select(QueryLog).where(QueryLog.agreement_id == RECORD)).all()
    assert [(q.mode, q.action, q.rows) for q in logged] == [
        ("record", "rewrite", RECORD_MAX_ROWS)
    ] * 3


def test_suspended_dataset_is_refused_citing_shanghai_art22(qs: TestClient, world: World) -> None:
    with transaction(world.factory) as session:
        c = file_complaint(
            session=session,
            dataset="clinic_visits",
            complainant="Zhang",
            contact="z@example.invalid",
            kind="privacy",
            description="My visits are identifiable.",
            evidence="Letter.",
        )
        handle_complaint(
            session=session,
            actor=world.users["health"],
            complaint_id=c.id,
            to=ComplaintStatus.suspended,
        )
    r = _query(qs, world, AGGREGATE, BY_DISTRICT)
    assert r.status_code == 403
    assert r.json()["rule"] == "QG-005" and "Shanghai Art.22" in r.json()["article"]
    scope = qs.get("/qs/agreement", headers=bearer(world.tokens[AGGREGATE])).json()
    assert scope["datasets"]["clinic_visits"]["suspended"] is True


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_missing_or_unknown_token_is_refused(qs: TestClient, headers: dict) -> None:
    r = qs.post("/qs/query", json={"sql": "SELECT 1"}, headers=headers)
    assert r.status_code == 401 and r.json()["rule"] == "workspace-token"


def test_platform_token_is_refused(qs: TestClient, world: World) -> None:
    r = qs.post("/qs/query", json={"sql": BY_DISTRICT}, headers=login(qs, "alice"))
    assert r.status_code == 401 and r.json()["rule"] == "workspace-token"


def test_revoked_and_expired_tokens_are_refused(qs: TestClient, world: World) -> None:
    with transaction(world.factory) as session:
        change_status(
            session=session,
            actor=world.users["health"],
            agreement_id=AGGREGATE,
            action=AgreementAction.suspend,
            reason="Security measures missing.",
            rectification_days=10,
            today=today(),
        )
        for row in session.scalars(select(ApiToken).where(ApiToken.agreement_id == BOBS)):
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    for agreement_id in (AGGREGATE, BOBS):
        r = _query(qs, world, agreement_id, BY_DISTRICT)
        assert r.status_code == 401 and r.json()["rule"] == "workspace-token"


def test_agreement_not_active_is_refused_even_with_a_live_token(
    qs: TestClient, world: World
) -> None:
    with transaction(world.factory) as session:
        session.get_one(AgreementRecord, AGGREGATE).status = "suspended"
    r = _query(qs, world, AGGREGATE, BY_DISTRICT)
    assert r.status_code == 403
    assert r.json()["rule"] == "agreement-not-active"
    assert r.json()["article"] == "Shanghai Art.26, 36"


def _expire_token(session, world: World) -> None:
    for row in session.scalars(select(ApiToken).where(ApiToken.agreement_id == AGGREGATE)):
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)


def _revoke_token(session, world: World) -> None:
    for row in session.scalars(select(ApiToken).where(ApiToken.agreement_id == AGGREGATE)):
        row.revoked = True


def _deactivate_researcher(session, world: World) -> None:
    session.get_one(User, world.users["alice"].id).active = False


def _suspend_agreement(session, world: World) -> None:
    session.get_one(AgreementRecord, AGGREGATE).status = "suspended"


def _drop_researcher(session, world: World) -> None:
    rec = session.get_one(AgreementRecord, AGGREGATE)
    others = [r for r in rec.spec["researchers"] if r != "alice"]
    rec.spec = {**rec.spec, "researchers": others or ["bob"]}


def _end_period(session, world: World) -> None:
    rec = session.get_one(AgreementRecord, AGGREGATE)
    ended = (today() - timedelta(days=1)).isoformat()
    rec.spec = {**rec.spec, "valid_until": ended}


def _close_dataset(session, world: World) -> None:
    session.scalars(
        select(Dataset).where(Dataset.name == "clinic_visits")
    ).one().status = DatasetStatus.withdrawn


@pytest.mark.parametrize(
    ("change", "status", "rule"),
    [
        (_expire_token, 401, "workspace-token"),
        (_revoke_token, 401, "workspace-token"),
        (_deactivate_researcher, 401, "workspace-token"),
        (_suspend_agreement, 403, "agreement-not-active"),
        (_drop_researcher, 403, "agreement-researcher"),
        (_end_period, 403, "agreement-not-in-period"),
        (_close_dataset, 403, "QG-005"),
    ],
)
def test_a_change_takes_effect_on_the_next_query_after_answered_ones(
    qs: TestClient, world: World, change, status: int, rule: str
) -> None:
    """The service keeps the callers it authorised; none survives a change to the rows it
    was made from."""
    for _ in range(2):
        assert _query(qs, world, AGGREGATE, BY_DISTRICT).status_code == 200
    with transaction(world.factory) as session:
        change(session, world)
    r = _query(qs, world, AGGREGATE, BY_DISTRICT)
    assert (r.status_code, r.json()["rule"]) == (status, rule), r.text


def test_worker_serves_its_own_agreement_only(world: World) -> None:
    with TestClient(create_worker_app(world.settings, AGGREGATE)) as worker:
        own = _query(worker, world, AGGREGATE, BY_DISTRICT)
        other = _query(worker, world, BOBS, BY_DISTRICT)
    assert own.status_code == 200
    assert other.status_code == 403 and other.json()["rule"] == "worker-agreement"


def test_scope_shows_the_agreement_never_data(qs: TestClient, world: World) -> None:
    r = qs.get("/qs/agreement", headers=bearer(world.tokens[RECORD]))
    assert r.status_code == 200
    scope = r.json()
    assert scope["id"] == RECORD and scope["mode"] == "record"
    assert scope["disclosure"]["max_result_rows"] == RECORD_MAX_ROWS
    columns = scope["datasets"]["clinic_visits"]["columns"]
    assert [(c["name"], c["sensitivity"]) for c in columns] == [
        ("patient_id", "identifier"),
        ("district", "quasi_identifier"),
        ("cost", "none"),
    ]


def test_usage_report_goes_through_the_door(qs: TestClient, world: World) -> None:
    with transaction(world.factory) as session:
        first_end = period_ends(get_agreement(session, AGGREGATE))[0]
    body = {"period_end": first_end.isoformat(), "summary": "Mean costs per district."}
    r = qs.post("/qs/usage-reports", json=body, headers=bearer(world.tokens[AGGREGATE]))
    assert r.status_code == 201, r.text
    assert r.json()["agreement_id"] == AGGREGATE
    again = qs.post("/qs/usage-reports", json=body, headers=bearer(world.tokens[AGGREGATE]))
    assert again.status_code == 409
    [event] = _events(world, "usage_report.submit")
    assert event["actor"] == "alice"
