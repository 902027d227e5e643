"""Tip-offs (Shanghai Art.27) and security problems (Wuxi Art.17) over HTTP: anyone sends one,
it reaches the provider concerned and the authority, is answered, and can become a violation."""

from __future__ import annotations

from tests.control_plane.conftest import login


def _ids(client, name: str) -> list[int]:  # noqa: ANN001
    return [t["id"] for t in client.get("/api/tipoffs", headers=login(client, name)).json()]


def test_public_tipoff_is_routed_answered_and_read_with_its_receipt(client, signed):
    r = client.post(
        "/api/tipoffs",
        json={"kind": "misuse", "description": "A clinic table was posted online.",
              "dataset": "clinic_visits", "contact": "tips@example.invalid"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    tip, receipt = r.json()["id"], r.json()["receipt"]
    assert r.json()["routed_to"] == "city-health-commission"
    general = client.post(
        "/api/tipoffs", json={"kind": "security_problem", "description": "Login page over http."}
    ).json()
    assert general["routed_to"] == "authority"
    assert _ids(client, "health") == [tip]
    assert _ids(client, "market") == []
    assert _ids(client, "auth") == _ids(client, "ops") == [general["id"], tip]
    assert client.get("/api/tipoffs", headers=login(client, "alice")).status_code == 403

    status = client.post("/api/tipoffs/receipt", json={"receipt": receipt}).json()
    assert status == {"id": tip, "status": "received", "answer": ""}
    wrong = client.post("/api/tipoffs/receipt", json={"receipt": "not-a-code"})
    assert wrong.status_code == 404 and wrong.json()["rule"] == "receipt"

    health = login(client, "health")
    r = client.post(f"/api/tipoffs/{tip}", json={"to": "answered"}, headers=health)
    assert r.status_code == 422 and r.json()["rule"] == "tipoff-answer"
    r = client.post(f"/api/tipoffs/{tip}", json={"to": "closed"}, headers=health)
    assert (
        r.status_code == 409
        and "allowed: answered, converted, dismissed, handling" in (r.json()["error"])
    )
    assert client.post(f"/api/tipoffs/{tip}", json={"to": "handling"}, headers=health).is_success
    market = client.post(
        f"/api/tipoffs/{tip}",
        json={"to": "dismissed", "answer": "no"},
        headers=login(client, "market"),
    )
    assert market.status_code == 404
    r = client.post(
        f"/api/tipoffs/{tip}",
        json={"to": "answered", "answer": "The table was aggregated; no breach."},
        headers=health,
    )
    assert r.json()["status"] == "answered"
    status = client.post("/api/tipoffs/receipt", json={"receipt": receipt}).json()
    assert status["answer"] == "The table was aggregated; no breach."


def test_tipoff_becomes_a_violation(client, signed):
    alice = login(client, "alice")
    # Only a signed-in user who can see the agreement may name it.
    anonymous = client.post(
        "/api/tipoffs",
        json={"kind": "misuse", "description": "x", "agreement_id": "AGR-T-0001"},
    )
    assert anonymous.status_code == 422 and anonymous.json()["rule"] == "tipoff-agreement"
    hidden = client.post(
        "/api/tipoffs",
        json={"kind": "misuse", "description": "x", "agreement_id": "AGR-T-0001"},
        headers=login(client, "bob"),
    )
    assert hidden.status_code == 404
    r = client.post(
        "/api/tipoffs",
        json={"kind": "security_problem", "description": "My colleague shares the workspace.",
              "agreement_id": "AGR-T-0001"},
        headers=alice,
    )  # fmt: skip
    tip = r.json()["id"]
    health = login(client, "health")
    r = client.post(f"/api/tipoffs/{tip}", json={"to": "converted", "answer": "x"}, headers=health)
    assert r.status_code == 422 and r.json()["rule"] == "tipoff-convert"
    auth = login(client, "auth")
    r = client.post(
        "/api/violations",
        json={"kind": "security_measures", "tipoff_id": tip, "researcher": "alice",
              "evidence": "Shared credentials confirmed by the hub log."},
        headers=auth,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["source"] == "tipoff" and v["agreement_id"] == "AGR-T-0001"
    assert f"tipoff:{tip}" in v["references"]
    converted = [t for t in client.get("/api/tipoffs", headers=auth).json() if t["id"] == tip]
    assert converted[0]["status"] == "converted"
    again = client.post(
        "/api/violations",
        json={"kind": "security_measures", "tipoff_id": tip, "researcher": "alice",
              "evidence": "again"},
        headers=auth,
    )  # fmt: skip
    assert again.status_code == 409


def test_bad_tipoffs_change_nothing(client, signed):
    for body, rule in [
        ({"kind": "gossip", "description": "x"}, "tipoff-kind"),
        ({"kind": "misuse", "description": "  "}, "tipoff-incomplete"),
        ({"kind": "misuse", "description": "x", "dataset": "secret_registry"}, "dataset-unknown"),
    ]:
        r = client.post("/api/tipoffs", json=body)
        assert r.status_code in (404, 422) and r.json()["rule"] == rule
    assert _ids(client, "auth") == []
