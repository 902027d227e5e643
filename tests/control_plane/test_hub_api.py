"""The hub's questions to the platform: sign-in and spawn authorization (issue 5)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status, import_agreement
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.clock import today
from sandbox.db.base import transaction
from sandbox.workspaces.names import network_name
from tests.control_plane.conftest import PASSWORD
from tests.control_plane.helpers import agreement, publish_all

HUB = {"Authorization": "Bearer hub-secret-for-tests"}


@pytest.fixture
def hub_client(settings, factory, users, catalog_dir):  # noqa: ANN001, ANN201
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    settings = settings.model_copy(update={"hub_service_token": "hub-secret-for-tests"})
    with TestClient(create_app(settings)) as c:
        yield c


def test_only_the_hub_may_ask(hub_client):
    body = {"username": "alice", "password": PASSWORD}
    assert hub_client.post("/api/hub/authenticate", json=body).status_code == 403
    wrong = {"Authorization": "Bearer guess"}
    r = hub_client.post("/api/hub/authenticate", json=body, headers=wrong)
    assert r.status_code == 403 and r.json()["rule"] == "hub-token"


def test_only_researchers_sign_in_to_the_hub(hub_client):
    def ok(user: str, password: str = PASSWORD) -> bool:
        r = hub_client.post(
            "/api/hub/authenticate", json={"username": user, "password": password}, headers=HUB
        )
        return r.json()["authenticated"]

    assert ok("alice")
    assert not ok("alice", "wrong-password")
    assert not ok("ops") and not ok("health")  # operators get no hub account


def test_spawn_needs_an_active_agreement_naming_the_researcher(hub_client, factory, users):
    ask = {"username": "alice", "server_name": "agr-t-0001"}
    r = hub_client.post("/api/hub/spawn-authorization", json=ask, headers=HUB)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agreement_id"] == "AGR-T-0001" and body["network_name"] == network_name(
        "AGR-T-0001"
    )
    scope = hub_client.get("/qs/agreement", headers={"Authorization": f"Bearer {body['token']}"})
    assert scope.status_code == 200
    bob = hub_client.post(
        "/api/hub/spawn-authorization", json={**ask, "username": "bob"}, headers=HUB
    )
    assert bob.status_code == 403 and bob.json()["rule"] == "agreement-researcher"
    with transaction(factory) as session:
        change_status(
            session=session,
            actor=users["ops"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.suspend,
            reason="audit finding",
            rectification_days=3,
            today=today(),
        )
    r = hub_client.post("/api/hub/spawn-authorization", json=ask, headers=HUB)
    assert r.status_code == 403 and r.json()["rule"] == "agreement-not-active"
    with transaction(factory) as session:
        refused = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "hub.spawn_refused")
        ).all()
    assert [json.loads(d)["rule"] for d in refused] == [
        "agreement-researcher",
        "agreement-not-active",
    ]
    revoked = hub_client.get("/qs/agreement", headers={"Authorization": f"Bearer {body['token']}"})
    assert revoked.status_code in (401, 403)
