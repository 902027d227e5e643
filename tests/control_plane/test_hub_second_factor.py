"""The hub and the second factor: a researcher who has one gives its code at the hub's login
(real TOTP codes, each accepted once), and a workspace token is issued only after a hub
sign-in that passed it (issue 15 item 3)."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tornado import web

from hub_config.auth import ControlPlaneAuthenticator
from hub_config.control_plane import HttpControlPlane
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.control_plane.conftest import PASSWORD
from tests.control_plane.test_hub_api import HUB, hub_client  # noqa: F401
from tests.identity.provider import serving
from tests.second_factor import enrol, next_code

SPAWN = {"username": "alice", "server_name": "agr-t-0001"}


def hub_sign_in(client: TestClient, otp: str = ""):  # noqa: ANN201
    body = {"username": "alice", "password": PASSWORD, "otp": otp}
    return client.post("/api/hub/authenticate", json=body, headers=HUB)


def test_the_hub_asks_for_the_code_and_spawns_only_after_it(
    hub_client: TestClient,  # noqa: F811
    factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    # Signed in to the hub before setting up an authenticator: that session is not enough.
    assert hub_sign_in(hub_client).json() == {"authenticated": True}
    enrol(factory, settings.keys_dir, "alice")
    stale = hub_client.post("/api/hub/spawn-authorization", json=SPAWN, headers=HUB)
    assert stale.status_code == 403 and stale.json()["rule"] == "mfa-hub-session"
    missing = hub_sign_in(hub_client)
    assert missing.status_code == 403 and missing.json()["rule"] == "mfa-required"
    code = next_code(factory, settings.keys_dir, "alice")
    assert hub_sign_in(hub_client, code).json() == {"authenticated": True}
    replayed = hub_sign_in(hub_client, code)
    assert replayed.status_code == 403 and replayed.json()["rule"] == "mfa-code"
    # The replay is the latest hub sign-in attempt, but it failed: the last success counts.
    spawned = hub_client.post("/api/hub/spawn-authorization", json=SPAWN, headers=HUB)
    assert spawned.status_code == 200, spawned.text
    with transaction(factory) as session:
        refused = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "hub.sign_in_refused")
        ).all()
        spawn_refused = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "hub.spawn_refused")
        ).all()
    assert [json.loads(d)["rule"] for d in refused] == ["mfa-required", "mfa-code"]
    assert [json.loads(d)["rule"] for d in spawn_refused] == ["mfa-hub-session"]


def test_the_hubs_login_form_shows_the_refusal_over_real_http(
    settings: Settings, factory: sessionmaker[Session], users
) -> None:
    enrol(factory, settings.keys_dir, "alice")
    app = create_app(settings.model_copy(update={"hub_service_token": "hub-secret-for-tests"}))
    with serving(app) as platform:
        auth = ControlPlaneAuthenticator(
            control_plane=HttpControlPlane(platform, "hub-secret-for-tests")
        )
        form = {"username": "alice", "password": PASSWORD}
        code = next_code(factory, settings.keys_dir, "alice")
        wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
        with pytest.raises(web.HTTPError) as refused:
            asyncio.run(auth.authenticate(None, {**form, "otp": wrong}))
        assert refused.value.status_code == 403
        assert "mfa-code" in refused.value.get_message()
        assert asyncio.run(auth.authenticate(None, {**form, "otp": code})) == "alice"
