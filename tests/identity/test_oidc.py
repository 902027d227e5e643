"""Sign-in through a real OpenID Connect provider on 127.0.0.1, and each check refusing.

The browser's leg to the provider is a real HTTP request; the platform then
redeems the code at the provider's token endpoint and checks the ID token.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.http.deps import SESSION_COOKIE
from sandbox.identity.oidc import link_subject
from sandbox.web.oidc import STATE_COOKIE
from tests.identity.provider import LocalProvider, serving


def link(factory: sessionmaker[Session], username: str, subject: str, issuer: str) -> None:
    with transaction(factory) as session:
        ops = session.scalar(select(User).where(User.username == "ops"))
        link_subject(session=session, actor=ops, username=username, issuer=issuer, subject=subject)


def through_provider(client: TestClient, start_at: str = "/auth/oidc/login") -> str:
    """Start a sign-in and let the provider answer; return the callback path and query."""
    start = client.get(start_at, follow_redirects=False)
    assert start.status_code == 302, start.text
    with httpx.Client() as browser:
        answer = browser.get(start.headers["location"], follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def events(factory: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with transaction(factory) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def assert_refused(response: httpx.Response, rule: str, client: TestClient) -> None:
    assert response.status_code == 403, response.text
    assert rule in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 403


@pytest.fixture
def linked(factory, users, provider: LocalProvider) -> None:  # noqa: ANN001
    link(factory, "alice", "subject-alice", provider.issuer)


def test_linked_subject_signs_in_with_the_web_session_cookie(client, factory, linked):  # noqa: ANN001
    response = client.get(through_provider(client), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/researcher"
    assert SESSION_COOKIE in client.cookies
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["username"] == "alice"
    (event,) = [e for e in events(factory, "user.sign_in") if e.actor == "alice"]
    assert '"method":"oidc"' in event.details


def test_unlinked_subject_is_refused_and_no_account_is_created(
    client,
    factory,
    users,
    provider,  # noqa: ANN001
):
    provider.subject = "subject-nobody"
    response = client.get(through_provider(client))
    assert_refused(response, "oidc-unlinked", client)
    assert "Wuxi Art.6" in response.text and "平台运营" in response.text
    with transaction(factory) as session:
        assert len(session.scalars(select(User)).all()) == len(users)
    (event,) = events(factory, "user.oidc_sign_in_refused")
    assert "subject-nobody" in event.details and "oidc-unlinked" in event.details


@pytest.mark.parametrize(
    ("fault", "rule"),
    [
        ({"foreign_key": True}, "oidc-signature"),
        ({"hmac_with_client_secret": True}, "oidc-signature"),
        ({"audience": "another-client"}, "oidc-audience"),
        ({"nonce": "a-nonce-from-another-sign-in"}, "oidc-nonce"),
        ({"issued_ago_seconds": 900, "lifetime_seconds": 300}, "oidc-expired"),
    ],
)
def test_a_faulty_id_token_is_refused(client, factory, linked, provider, fault, rule):  # noqa: ANN001
    for name, value in fault.items():
        setattr(provider.quirks, name, value)
    response = client.get(through_provider(client))
    assert_refused(response, rule, client)
    assert "Rizhao Art.29" in response.text
    assert events(factory, "user.sign_in") == []
    assert len(events(factory, "user.oidc_sign_in_refused")) == 1


def test_a_replayed_callback_is_refused(client, factory, linked):  # noqa: ANN001
    callback = through_provider(client)
    assert client.get(callback, follow_redirects=False).status_code == 303
    client.cookies.delete(SESSION_COOKIE)
    # The same answer again, even with this browser's state cookie put back, finds the
    # attempt used up.
    (state,) = parse_qs(urlsplit(callback).query)["state"]
    client.cookies.set(STATE_COOKIE, state)
    assert_refused(client.get(callback), "oidc-state", client)


def test_a_callback_from_another_browsers_sign_in_is_refused(client, settings, linked):  # noqa: ANN001
    callback = through_provider(client)  # the attacker's own sign-in...
    victim = TestClient(client.app, base_url=str(client.base_url))
    victim.get("/auth/oidc/login", follow_redirects=False)  # ...and the victim's, unrelated
    forced = victim.get(callback)  # login CSRF: the attacker's answer in the victim's browser
    assert_refused(forced, "oidc-state", victim)
    # The attacker's attempt was not burnt by the refusal: bad input changes nothing.
    assert client.get(callback, follow_redirects=False).status_code == 303


def test_a_subject_linked_to_a_provider_account_lands_on_the_provider_desk(
    client,
    factory,
    users,
    provider,  # noqa: ANN001
):
    link(factory, "health", "subject-health", provider.issuer)
    provider.subject = "subject-health"
    provider.quirks.amr = ["pwd", "otp"]  # a provider's account needs a second factor
    response = client.get(through_provider(client), follow_redirects=False)
    assert response.headers["location"] == "/provider"
    assert client.get("/api/me").json()["organisation"] == "city-health-commission"


def test_the_sign_in_returns_to_the_page_that_asked_for_it(client, linked):  # noqa: ANN001
    """An anonymous visit to a page sends the visitor to sign in; signing in through the
    provider brings them back there, as the password form does, and never off the site."""
    asked = client.get("/researcher/applications/new", follow_redirects=False)
    assert asked.status_code == 303
    offered = re.search(
        r'href="(/auth/oidc/login[^"]*)"', client.get(asked.headers["location"]).text
    )
    assert (
        offered and offered.group(1) == "/auth/oidc/login?next=%2Fresearcher%2Fapplications%2Fnew"
    )
    back = client.get(through_provider(client, offered.group(1)), follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/researcher/applications/new"
    client.cookies.clear()
    elsewhere = "/auth/oidc/login?next=//elsewhere.example/x"
    back = client.get(through_provider(client, elsewhere), follow_redirects=False)
    assert back.headers["location"] == "/researcher"


def test_the_hub_maps_a_linked_researcher_and_refuses_others(client, factory, users, provider):  # noqa: ANN001
    link(factory, "alice", "subject-alice", provider.issuer)
    link(factory, "ops", "subject-ops", provider.issuer)
    hub = {"Authorization": "Bearer hub-token-for-tests"}
    ask = {"issuer": provider.issuer}
    ok = client.post("/api/hub/oidc-user", json={**ask, "subject": "subject-alice"}, headers=hub)
    assert ok.status_code == 200 and ok.json() == {"username": "alice"}
    ops = client.post("/api/hub/oidc-user", json={**ask, "subject": "subject-ops"}, headers=hub)
    assert ops.status_code == 403 and ops.json()["rule"] == "hub-researchers-only"
    nobody = client.post("/api/hub/oidc-user", json={**ask, "subject": "x"}, headers=hub)
    assert nobody.status_code == 403 and nobody.json()["rule"] == "oidc-unlinked"
    outsider = client.post("/api/hub/oidc-user", json={**ask, "subject": "subject-alice"})
    assert outsider.status_code == 403 and outsider.json()["rule"] == "hub-token"


def test_the_sign_in_page_offers_the_provider_only_when_configured(client, settings):  # noqa: ANN001
    assert 'href="/auth/oidc/login"' in client.get("/signin").text
    plain = settings.model_copy(update={"oidc_issuer": ""})
    with TestClient(create_app(plain)) as without:
        assert 'href="/auth/oidc/login"' not in without.get("/signin").text
        refused = without.get("/auth/oidc/login", follow_redirects=False)
        assert refused.status_code == 403 and "oidc-disabled" in refused.text


def test_the_hub_hook_renames_a_linked_subject_over_real_http(settings, factory, users, provider):  # noqa: ANN001
    import asyncio

    from hub_config.oidc_login import platform_account_hook

    link(factory, "alice", "subject-alice", provider.issuer)
    with serving(create_app(settings)) as platform:
        hook = platform_account_hook(platform, settings.hub_service_token, provider.issuer)
        wrong = platform_account_hook(platform, "not-the-hub", provider.issuer)

        def ask(h, subject: str):  # noqa: ANN001, ANN202
            auth = {"name": subject, "admin": None, "auth_state": {"oauth_user": {"sub": subject}}}
            return asyncio.run(h(None, None, auth))

        assert ask(hook, "subject-alice")["name"] == "alice"
        assert ask(hook, "subject-alice")["admin"] is False
        assert ask(hook, "subject-stranger") is None
        assert ask(wrong, "subject-alice") is None
