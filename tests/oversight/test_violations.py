"""Violations (R6, R9; Shanghai Art.28, 36, 43) over HTTP: recorded from an alert, a review or a
tip-off; measures through the agreement's lifecycle; rectification; the public register."""

from __future__ import annotations

from sqlalchemy import select

from query_guard.early_warning.models import Alert
from sandbox.agreements.service import get_agreement
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from tests.control_plane.conftest import login

EVIDENCE = {"evidence": "Queries joined visits to an outside list.", "references": ["audit:12"]}


def _alert(factory) -> int:  # noqa: ANN001
    with transaction(factory) as session:
        alert = Alert(agreement_id="AGR-T-0001", researcher="alice", kind="bulk_extraction")
        session.add(alert)
        session.flush()
        return alert.id


def _actions(factory) -> list[str]:  # noqa: ANN001
    with transaction(factory) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_violation_from_alert_limits_access_until_rectified(client, factory, signed):
    alert_id = _alert(factory)
    auth, ops, health = login(client, "auth"), login(client, "ops"), login(client, "health")
    body = {"kind": "beyond_scenario", "alert_id": alert_id, **EVIDENCE}
    r = client.post("/api/violations", json=body, headers=auth)
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["agreement_id"], v["researcher"], v["organisation"]) == (
        "AGR-T-0001",
        "alice",
        "江南大学",
    )
    assert v["source"] == "alert" and f"alert:{alert_id}" in v["references"]
    assert v["article"].startswith("Shanghai Art.28(4)")
    again = client.post("/api/violations", json=body, headers=auth)
    assert again.status_code == 409 and again.json()["rule"] == "violation-duplicate"

    # The authority records but takes no measure: Art.28 gives that to the platform and provider.
    refused = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "limit", "reason": "out of scope", "rectification_days": 5},
        headers=auth,
    )
    assert refused.status_code == 403
    no_days = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "limit", "reason": "out of scope"},
        headers=health,
    )
    assert no_days.status_code == 422 and no_days.json()["rule"] == "agreement-rectification"
    r = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "limit", "reason": "out of scope", "rectification_days": 5},
        headers=health,
    )
    assert r.status_code == 200, r.text
    limited = r.json()
    assert limited["status"] == "rectifying" and limited["rectification_deadline"]
    with transaction(factory) as session:
        rec = get_agreement(session, "AGR-T-0001")
        assert rec.status == "suspended"
        assert rec.rectification_deadline.isoformat() == limited["rectification_deadline"]

    r = client.post(f"/api/violations/{v['id']}/rectified", json={"reason": "  "}, headers=ops)
    assert r.status_code == 422 and r.json()["rule"] == "violation-answer"
    r = client.post(
        f"/api/violations/{v['id']}/rectified", json={"reason": "keys rotated"}, headers=ops
    )
    assert r.status_code == 200 and r.json()["status"] == "rectified"
    with transaction(factory) as session:
        assert get_agreement(session, "AGR-T-0001").status == "active"
    assert _actions(factory)[-4:] == [
        "agreement.suspend",
        "violation.rectifying",
        "agreement.reinstate",
        "violation.rectified",
    ]


def test_terminate_publish_and_the_public_register(client, factory, signed):
    ops = login(client, "ops")
    body = {"kind": "illegal_means", "agreement_id": "AGR-T-0001", "researcher": "alice"}
    v = client.post("/api/violations", json={**body, **EVIDENCE}, headers=ops).json()
    assert v["source"] == "review"
    early = client.post(f"/api/violations/{v['id']}/publish", headers=ops)
    assert early.status_code == 422 and early.json()["rule"] == "violation-publish"
    assert client.get("/api/violations/register").json() == []
    r = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "terminate", "reason": "scraped the data"},
        headers=ops,
    )
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    with transaction(factory) as session:
        assert get_agreement(session, "AGR-T-0001").status == "terminated"
    assert client.post(f"/api/violations/{v['id']}/publish", headers=ops).status_code == 200
    twice = client.post(f"/api/violations/{v['id']}/publish", headers=ops)
    assert twice.status_code == 409
    register = client.get("/api/violations/register")  # public: no sign-in
    assert register.status_code == 200
    (entry,) = register.json()
    assert set(entry) == {"organisation", "measure", "date", "article"}
    assert entry["organisation"] == "江南大学" and entry["measure"] == "terminate"
    assert entry["article"] == "Shanghai Art.28(2)"
    assert "alice" not in register.text and "scraped" not in register.text
    # No further measure after the end.
    r = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "limit", "reason": "x", "rectification_days": 3},
        headers=ops,
    )
    assert r.status_code == 409 and "allowed: nothing" in r.json()["error"]


def test_who_sees_and_bad_input_changes_nothing(client, factory, signed):
    auth = login(client, "auth")
    before = len(_actions(factory))
    bad = [
        ({"kind": "theft", "agreement_id": "AGR-T-0001", "researcher": "alice"}, "violation-kind"),
        ({"kind": "platform_rules", "agreement_id": "AGR-T-0001", "researcher": "bob"},
         "violation-researcher"),
        ({"kind": "platform_rules", "researcher": "alice"}, "violation-agreement"),
        ({"kind": "platform_rules", "agreement_id": "AGR-T-0001", "researcher": "alice",
          "evidence": " "}, "violation-evidence"),
        ({"kind": "platform_rules", "alert_id": 1, "tipoff_id": 1}, "violation-source"),
    ]  # fmt: skip
    for body, rule in bad:
        r = client.post("/api/violations", json={**EVIDENCE, **body}, headers=auth)
        assert r.status_code == 422 and r.json()["rule"] == rule, (body, r.text)
        assert r.json()["article"] or rule == "violation-agreement"
    assert len(_actions(factory)) == before
    r = client.post(
        "/api/violations",
        json={**EVIDENCE, "kind": "platform_rules", "agreement_id": "AGR-T-0001",
              "researcher": "alice"},
        headers=login(client, "alice"),
    )  # fmt: skip
    assert r.status_code == 403
    v = client.post(
        "/api/violations",
        json={**EVIDENCE, "kind": "platform_rules", "agreement_id": "AGR-T-0001",
              "researcher": "alice"},
        headers=auth,
    ).json()  # fmt: skip
    seen = {
        name: [x["id"] for x in client.get("/api/violations", headers=login(client, name)).json()]
        for name in ("auth", "ops", "health", "market", "alice", "bob")
    }
    assert seen == {
        "auth": [v["id"]], "ops": [v["id"]], "health": [v["id"]],
        "market": [], "alice": [v["id"]], "bob": [],
    }  # fmt: skip
    hidden = client.get(f"/api/violations/{v['id']}", headers=login(client, "market"))
    assert hidden.status_code == 404
    foreign = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "record_only", "reason": "warned"},
        headers=login(client, "market"),
    )
    assert foreign.status_code == 404
    done = client.post(
        f"/api/violations/{v['id']}/measure",
        json={"measure": "record_only", "reason": "warned in writing"},
        headers=login(client, "health"),
    )
    assert done.status_code == 200 and done.json()["status"] == "closed"
    with transaction(factory) as session:
        assert get_agreement(session, "AGR-T-0001").status == "active"
