"""When neither the hub nor the Docker engine answers, a termination still commits and
kills the tokens, records what was tried, and says plainly that no container could be
confirmed gone (rule ``workspace-runtime``) instead of pretending it was."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, publish_all
from tests.workspaces.hub import free_port


def test_termination_without_hub_or_engine_is_refused_loudly_after_revoking(
    settings: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing listens on either address: a closed loopback port and a missing socket.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    settings = settings.model_copy(
        update={"hub_url": f"http://127.0.0.1:{free_port()}", "hub_api_token": "t"}
    )
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(session=session, actor=users["health"], agreement=agreement())

    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/api/agreements/AGR-T-0001/terminate",
            json={"reason": "breach"},
            headers=login(client, "ops"),
        )
        assert answer.status_code == 503
        assert answer.json()["rule"] == "workspace-runtime"
        assert "terminated and its tokens are revoked" in answer.json()["error"]
        shown = client.get("/api/agreements/AGR-T-0001", headers=login(client, "ops"))
        assert shown.json()["status"] == "terminated"

    with transaction(factory) as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "workspace.stop")
        ).all()
        details = json.loads(event.details)
    assert details["docker_error"] and details["hub_error"] and details["servers_stopped"] == []
