"""Operator and authority work over HTTP: provisioning, rebuilds, destruction (R16), the record."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from query_guard.keys import key_path
from sandbox.agreements.service import import_agreement
from sandbox.audit.checkpoint import SignedCheckpoint
from sandbox.audit.export import verify_export
from sandbox.db.base import transaction
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, open_agreement_database, publish_all


@pytest.fixture
def signed(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(valid_until=date.today() + timedelta(days=1)),
        )
    return users


def test_provision_builds_only_what_the_agreement_allows(client, signed, settings, catalog_dir):
    assert (
        client.post(
            "/api/workspaces/AGR-T-0001/provision", headers=login(client, "health")
        ).status_code
        == 403
    )
    r = client.post("/api/workspaces/AGR-T-0001/provision", headers=login(client, "ops"))
    assert r.status_code == 200, r.text
    assert r.json()["dataset_versions"] == {"clinic_visits": 1}
    source = pq.read_table(catalog_dir / "data" / "clinic_visits.parquet")
    with open_agreement_database(settings, "AGR-T-0001") as con:
        tables = [t[0] for t in con.sql("SHOW TABLES").fetchall()]
        ids = {row[0] for row in con.sql("SELECT patient_id FROM clinic_visits").fetchall()}
    assert tables == ["clinic_visits"]
    assert ids and not ids & set(source.column("patient_id").to_pylist())  # pseudonyms only
    listed = client.get("/api/workspaces", headers=login(client, "auth")).json()
    assert [w["agreement_id"] for w in listed] == ["AGR-T-0001"]
    assert listed[0]["resources"] is None  # this platform runs no workspaces (no hub token)


def test_complaint_rebuilds_and_ending_destroys(client, signed, settings):
    ops = login(client, "ops")
    client.post("/api/workspaces/AGR-T-0001/provision", headers=ops)
    r = client.post(
        "/api/catalog/clinic_visits/complaints",
        json={
            "complainant": "Zhang",
            "contact": "z",
            "kind": "privacy",
            "description": "identifiable",
            "evidence": "letter",
        },
    )
    health = login(client, "health")
    r = client.post(f"/api/complaints/{r.json()['id']}", headers=health, json={"to": "suspended"})
    assert r.status_code == 200, r.text
    (ws,) = client.get("/api/workspaces", headers=ops).json()
    assert ws["left_out"] == ["clinic_visits"] and ws["dataset_versions"] == {}
    path = settings.agreements_dir / "AGR-T-0001.duckdb"
    with open_agreement_database(settings, "AGR-T-0001") as con:
        assert con.sql("SHOW TABLES").fetchall() == []
    r = client.post(
        "/api/agreements/AGR-T-0001/terminate", headers=health, json={"reason": "complaint upheld"}
    )
    assert r.status_code == 200
    r = client.post("/api/operator/lifecycle/run", headers=ops)
    assert r.json()["destroyed"] == ["AGR-T-0001"]
    assert not path.exists() and not key_path(settings.keys_dir, "AGR-T-0001").exists()


def test_authority_verifies_checkpoints_and_exports_the_record(client, signed, tmp_path: Path):
    assert client.get("/api/audit/verify", headers=login(client, "alice")).status_code == 403
    authority = login(client, "auth")
    verified = client.get("/api/audit/verify", headers=authority).json()
    assert verified["ok"] and verified["count"] > 5
    cp = client.post("/api/audit/checkpoints", headers=authority).json()
    assert cp["public_key"] == client.get("/api/audit/public-key").json()["public_key"]
    r = client.get("/api/audit/export", headers=authority)
    assert r.status_code == 200
    out = tmp_path / "record.jsonl"
    out.write_bytes(r.content)
    kept = SignedCheckpoint.from_json(cp, source="test")
    assert verify_export(out, [kept]).ok
    lines = out.read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[3])
    event["actor"] = "mallory"
    lines[3] = json.dumps(event, ensure_ascii=False)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert not verify_export(out, [kept]).ok
    events = client.get("/api/audit/events?limit=3", headers=authority).json()
    assert [e["seq"] for e in events] == [1, 2, 3]


def test_amendment_rebuilds_the_provisioned_database(client, signed, settings):
    client.post("/api/workspaces/AGR-T-0001/provision", headers=login(client, "ops"))
    narrower = agreement(
        valid_until=date.today() + timedelta(days=1),
        datasets={"clinic_visits": {"columns": ["patient_id", "district"]}},
    )
    r = client.put(
        "/api/agreements/AGR-T-0001",
        headers=login(client, "health"),
        json={"agreement_yaml": narrower.model_dump_json(), "reason": "drop cost"},
    )
    assert r.status_code == 200, r.text
    with open_agreement_database(settings, "AGR-T-0001") as con:
        columns = [row[0] for row in con.sql("DESCRIBE clinic_visits").fetchall()]
    assert "cost" not in columns and "district" in columns
