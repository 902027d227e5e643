"""A real JupyterHub signs researchers in through the local OpenID Connect provider and
takes their hub name from the real platform's link; everyone else is refused.

The hub (with configurable-http-proxy), the provider and the platform each run on
127.0.0.1; the "browser" is an HTTP client following the redirects with its cookies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.identity.provider import HUB_CLIENT_ID, HUB_CLIENT_SECRET, LocalProvider, serving
from tests.identity.test_oidc import link
from tests.resources import require_docker
from tests.workspaces.hub import Hub

HUB_TOKEN = "hub-token-for-tests"
# A real hub, as in tests/workspaces/test_hub.py: with the other tests that start hubs and
# containers on this engine, one after another (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("host-firewall")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """One database is enough here: the platform side runs on both in test_oidc.py."""
    return f"sqlite:///{tmp_path / 'platform.db'}"


@pytest.fixture
def hub(
    settings: Settings,
    factory: sessionmaker[Session],
    users,  # noqa: ANN001
    provider: LocalProvider,
    tmp_path: Path,
) -> Iterator[Hub]:
    require_docker()  # the hub stack (proxy, spawner) is installed with the Docker engine
    link(factory, "alice", "subject-alice", provider.issuer)
    link(factory, "ops", "subject-ops", provider.issuer)
    state = tmp_path / "hub"
    state.mkdir()
    with serving(create_app(settings)) as platform_url:
        hub = Hub(
            state,
            {
                "SANDBOX_HUB_PLATFORM_URL": platform_url,
                "SANDBOX_HUB_PLATFORM_TOKEN": HUB_TOKEN,
                "SANDBOX_HUB_OIDC_ISSUER": provider.issuer,
                "SANDBOX_HUB_OIDC_CLIENT_ID": HUB_CLIENT_ID,
                "SANDBOX_HUB_OIDC_CLIENT_SECRET": HUB_CLIENT_SECRET,
            },
        )
        try:
            yield hub
        finally:
            hub.stop()


def sign_in(hub: Hub) -> tuple[httpx.Client, httpx.Response]:
    """Press the hub's login button, let the provider answer, return to the hub."""
    browser = httpx.Client(timeout=30)
    start = browser.get(f"{hub.url}/hub/oauth_login", params={"next": "/hub/home"})
    assert start.status_code == 302, hub.log_tail()
    at_provider = browser.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    assert at_provider.headers["location"].startswith(f"{hub.url}/hub/oauth_callback?")
    return browser, browser.get(at_provider.headers["location"])


def hub_users(hub: Hub) -> set[str]:
    return {user["name"] for user in hub.api.get("/users").json()}


def actions(factory: sessionmaker[Session], actor: str) -> list[tuple[str, str]]:
    with transaction(factory) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.actor == actor))
        return [(e.action, e.details) for e in rows if e.action.startswith("hub.")]


def test_login_page_offers_the_identity_provider(hub: Hub) -> None:
    page = httpx.get(f"{hub.url}/hub/login")
    assert page.status_code == 200
    assert "oauth_login" in page.text and "统一身份认证" in page.text
    assert 'name="password"' not in page.text  # no second, password way in


def test_linked_researcher_signs_in_under_the_platform_username(
    hub: Hub, factory: sessionmaker[Session]
) -> None:
    browser, back = sign_in(hub)
    assert back.status_code == 302, hub.log_tail()
    assert back.headers["location"] == "/hub/home"
    assert any(name.startswith("jupyterhub-session-id") for name in browser.cookies)
    home = browser.get(f"{hub.url}/hub/home")
    assert home.status_code == 200 and "alice" in home.text
    assert hub_users(hub) == {"alice"}  # never the provider's subject
    assert hub.api.get("/users/alice").json()["admin"] is False
    [(action, details)] = actions(factory, "alice")
    assert action == "hub.sign_in" and '"method":"oidc"' in details


@pytest.mark.parametrize(
    ("subject", "actor", "why"),
    [
        ("subject-ops", "ops", "operators never open a workspace"),
        ("subject-nobody", None, "no account is linked"),
    ],
)
def test_operator_and_unlinked_subjects_are_refused(
    hub: Hub,
    provider: LocalProvider,
    factory: sessionmaker[Session],
    subject: str,
    actor: str | None,
    why: str,
) -> None:
    provider.subject = subject
    browser, back = sign_in(hub)
    assert back.status_code == 403, why
    assert not any(name.startswith("jupyterhub-session-id") for name in browser.cookies)
    assert browser.get(f"{hub.url}/hub/home").status_code == 302  # back to the login page
    assert hub_users(hub) == set(), why
    if actor:
        assert [action for action, _ in actions(factory, actor)] == ["hub.sign_in_refused"]
