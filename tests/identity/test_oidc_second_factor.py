"""Through a real OpenID Connect provider on 127.0.0.1: an account that needs a second factor
signs in only when the ID token's ``amr`` (and ``acr``, when configured) shows one, on the
platform and in the hub; every refusal is recorded with its rule."""

from __future__ import annotations

import asyncio
import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub_config.oidc_login import platform_account_hook
from sandbox.accounts.attempts import SignInAttempt
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.http.deps import SESSION_COOKIE
from sandbox.settings import Settings
from tests.identity.conftest import PLATFORM
from tests.identity.provider import HUB_CLIENT_ID, Grant, LocalProvider, serving
from tests.identity.test_oidc import events, link, through_provider

HUB = {"Authorization": "Bearer hub-token-for-tests"}


def refused_rules(factory: sessionmaker[Session]) -> list[str]:
    return [json.loads(e.details)["rule"] for e in events(factory, "user.oidc_sign_in_refused")]


def test_staff_need_the_provider_to_report_a_second_factor(
    client: TestClient, factory: sessionmaker[Session], users, provider: LocalProvider
) -> None:
    link(factory, "ops", "subject-ops", provider.issuer)
    provider.subject = "subject-ops"
    for amr in (None, ["pwd"], "otp"):  # absent, a password only, not a list
        provider.quirks.amr = amr  # type: ignore[assignment]
        response = client.get(through_provider(client))
        assert response.status_code == 403 and "oidc-mfa" in response.text
        assert "Rizhao Art.29" in response.text
        assert SESSION_COOKIE not in client.cookies
    assert refused_rules(factory) == ["oidc-mfa"] * 3
    provider.quirks.amr = ["pwd", "otp"]
    response = client.get(through_provider(client), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/operator"
    assert client.get("/api/me").json()["username"] == "ops"


def test_a_configured_assurance_level_is_required_too(
    settings: Settings, factory: sessionmaker[Session], users, provider: LocalProvider
) -> None:
    strict = settings.model_copy(update={"oidc_mfa_acr": ["urn:example:loa:3"]})
    link(factory, "auth", "subject-auth", provider.issuer)
    provider.subject = "subject-auth"
    provider.quirks.amr = ["mfa"]
    with TestClient(create_app(strict), base_url=PLATFORM) as client:
        provider.quirks.acr = "urn:example:loa:2"
        response = client.get(through_provider(client))
        assert response.status_code == 403 and "oidc-acr" in response.text
        provider.quirks.acr = "urn:example:loa:3"
        response = client.get(through_provider(client), follow_redirects=False)
        assert response.headers["location"] == "/authority"
    assert refused_rules(factory) == ["oidc-acr"]


def test_the_hub_lets_in_a_researcher_who_needs_a_second_factor_only_with_one(
    settings: Settings, factory: sessionmaker[Session], users, provider: LocalProvider
) -> None:
    required = settings.model_copy(update={"mfa_researchers": "required"})
    link(factory, "alice", "subject-alice", provider.issuer)
    ask = {"issuer": provider.issuer, "subject": "subject-alice"}
    with TestClient(create_app(required)) as client:
        bare = client.post("/api/hub/oidc-user", json=ask, headers=HUB)
        assert bare.status_code == 403 and bare.json()["rule"] == "oidc-mfa"
        ok = client.post("/api/hub/oidc-user", json={**ask, "amr": ["pwd", "hwk"]}, headers=HUB)
        assert ok.status_code == 200 and ok.json() == {"username": "alice"}
    with transaction(factory) as session:
        attempts = session.scalars(
            select(SignInAttempt).where(SignInAttempt.channel == "hub").order_by(SignInAttempt.id)
        ).all()
        refused = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "hub.sign_in_refused")
        ).all()
    assert [(a.succeeded, a.factor) for a in attempts] == [(False, "oidc"), (True, "oidc")]
    assert [json.loads(d)["rule"] for d in refused] == ["oidc-mfa"]


def test_the_hub_hook_sends_the_id_token_factors_over_real_http(
    settings: Settings, factory: sessionmaker[Session], users, provider: LocalProvider
) -> None:
    """The hook reads ``amr``/``acr`` from the ID token the provider issued to the hub."""
    required = settings.model_copy(update={"mfa_researchers": "required"})
    link(factory, "alice", "subject-alice", provider.issuer)

    def id_token(amr: list[str] | None) -> str:
        provider.quirks.amr = amr
        return provider.id_token(Grant(HUB_CLIENT_ID, "", "", None, "subject-alice"))

    with serving(create_app(required)) as platform:
        hook = platform_account_hook(platform, required.hub_service_token, provider.issuer)

        def ask(token: str):  # noqa: ANN202
            state = {"oauth_user": {"sub": "subject-alice"}, "id_token": token}
            return asyncio.run(hook(None, None, {"name": "x", "auth_state": state}))

        assert ask(id_token(["pwd"])) is None
        assert ask(id_token(["pwd", "otp"]))["name"] == "alice"
