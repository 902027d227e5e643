"""Requests for data not in the catalogue (Shanghai Art.10; Wuxi Art.9) over HTTP."""

from __future__ import annotations

from tests.control_plane.conftest import login

REQUEST = {
    "requester": "Wang",
    "contact": "wang@example.invalid",
    "title": "Ambulance response times",
    "description": "To study response times by district.",
    "domain": "health",
}


def test_demand_is_seen_answered_and_fulfilled(client, signed):
    r = client.post("/api/demands", json=REQUEST)
    assert r.status_code == 201
    demand, receipt = r.json()["id"], r.json()["receipt"]
    for name in ("health", "market", "auth", "ops"):
        seen = client.get("/api/demands", headers=login(client, name)).json()
        assert [d["id"] for d in seen] == [demand], name
    assert client.get("/api/demands", headers=login(client, "alice")).status_code == 403
    health, market = login(client, "health"), login(client, "market")
    r = client.post(f"/api/demands/{demand}", json={"to": "answered"}, headers=health)
    assert r.status_code == 422 and r.json()["rule"] == "demand-answer"
    r = client.post(
        f"/api/demands/{demand}",
        json={"to": "answered", "answer": "We hold it; opening planned for next quarter."},
        headers=health,
    )
    assert r.json()["status"] == "answered"
    # Fulfilling names a published dataset of the provider's own.
    for body, who, status, rule in [
        ({"to": "fulfilled", "answer": "open"}, health, 422, "demand-dataset"),
        ({"to": "declined", "answer": "x", "dataset": "clinic_visits"}, health, 422,
         "demand-dataset"),
        ({"to": "fulfilled", "answer": "open", "dataset": "clinic_visits"}, market, 403,
         "provider-owns"),
        ({"to": "fulfilled", "answer": "open", "dataset": "secret_registry"}, health, 404,
         "dataset-unknown"),
    ]:  # fmt: skip
        r = client.post(f"/api/demands/{demand}", json=body, headers=who)
        assert (r.status_code, r.json()["rule"]) == (status, rule)
    r = client.post(
        f"/api/demands/{demand}",
        json={"to": "fulfilled", "answer": "Now open.", "dataset": "clinic_visits"},
        headers=health,
    )
    assert r.json()["status"] == "fulfilled" and r.json()["dataset"] == "clinic_visits"
    status = client.post("/api/demands/receipt", json={"receipt": receipt}).json()
    assert status == {"id": demand, "status": "fulfilled", "answer": "Now open."}


def test_incomplete_demand_is_refused(client, signed):
    r = client.post("/api/demands", json={**REQUEST, "contact": " ", "title": ""})
    assert r.status_code == 422 and r.json()["rule"] == "demand-incomplete"
    assert "a contact" in r.json()["error"] and "what data you need" in r.json()["error"]
    r = client.post("/api/demands", json={**REQUEST, "title": "x" * 201})
    assert r.status_code == 422 and r.json()["rule"] == "demand-title"
    assert client.get("/api/demands", headers=login(client, "auth")).json() == []
