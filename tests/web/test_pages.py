"""Page tests without a browser: every page renders for its role, CSRF refusals, cookie
flags, and no data values in URLs (THREAT_MODEL: nothing protected in URLs or logs)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.applications.models import Application
from sandbox.apps.platform import create_app
from sandbox.db.base import transaction
from sandbox.feedback.models import Objection
from sandbox.http.deps import SESSION_COOKIE
from sandbox.identity.organisations import add_organisation
from sandbox.settings import Settings
from tests.control_plane.conftest import PASSWORD
from tests.control_plane.helpers import agreement
from tests.identity.test_organisations import HEALTH_CODE
from tests.second_factor import through_second_step
from tests.web.conftest import submit_for_review

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def sign_in(client: TestClient, username: str) -> None:
    """The sign-in page as a person uses it, with the authenticator's code where asked."""
    token = csrf_token(client, "/signin")
    r = client.post(
        "/signin",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    r = through_second_step(client, r, username)
    assert r.status_code in (200, 303) and SESSION_COOKIE in client.cookies, r.text


def count(factory: sessionmaker[Session], model: type) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_every_role_page_renders(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    app_id = submit_for_review(factory, platform)
    assert client.get("/catalogue").status_code == 200
    assert client.get("/catalogue?domain=health&open_class=conditional&q=clinic").status_code == 200
    assert "clinic_visits" in client.get("/datasets/clinic_visits").text
    assert client.get("/datasets/secret_registry").status_code == 404  # non-open: not revealed
    assert client.get("/keys").status_code == 200
    pages = {
        "alice": ["/researcher", "/researcher/applications/new",
                  f"/researcher/applications/{app_id}"],
        "health": ["/provider", f"/provider/applications/{app_id}", "/provider/publish"],
        "ops": ["/operator", "/authority/audit"],
        "auth": ["/authority", "/authority/audit?page=2"],
    }  # fmt: skip
    for username, paths in pages.items():
        client.cookies.clear()
        sign_in(client, username)
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (username, path, r.text[:500])


def test_role_pages_refuse_other_roles_with_the_rule(
    client: TestClient, platform: dict[str, User]
) -> None:
    r = client.get("/provider", follow_redirects=False)
    assert r.headers["location"] == "/signin?next=%2Fprovider"  # not signed in: sign in first
    sign_in(client, "alice")
    r = client.get("/operator")
    assert r.status_code == 403
    assert 'class="rule">role<' in r.text


def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    form = {"submitter": "Zhang", "contact": "z@example.invalid", "description": "typo"}
    client.get("/catalogue")  # the browser has its CSRF cookie
    r = client.post("/datasets/clinic_visits/objections", data=form)
    assert r.status_code == 403 and 'class="rule">csrf<' in r.text
    r = client.post("/datasets/clinic_visits/objections", data={**form, "csrf_token": "0" * 64})
    assert r.status_code == 403
    assert count(factory, Objection) == 0
    # With the page's own token the same form is accepted.
    token = csrf_token(client, "/datasets/clinic_visits")
    r = client.post("/datasets/clinic_visits/objections", data={**form, "csrf_token": token})
    assert r.status_code == 200 and count(factory, Objection) == 1


def test_a_token_from_before_sign_in_does_not_work_in_the_session(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    """Tokens are bound to the session cookie: one seen before (or by someone else) fails."""
    anonymous_token = csrf_token(client, "/signin")
    sign_in(client, "alice")
    r = client.post("/researcher/applications", data={"title": "x", "csrf_token": anonymous_token})
    assert r.status_code == 403 and 'class="rule">csrf<' in r.text
    assert count(factory, Application) == 0
    fresh = csrf_token(client, "/researcher")
    r = client.post("/researcher/applications", data={"title": "x", "csrf_token": fresh})
    assert r.status_code == 200 and count(factory, Application) == 1


@pytest.mark.parametrize("environment", ["test", "production"])
def test_session_cookie_flags(
    environment: str, settings: Settings, platform: dict[str, User]
) -> None:
    live = settings.model_copy(update={"environment": environment, "secret_key": "k" * 40})
    with TestClient(create_app(live), base_url="https://127.0.0.1") as client:
        token = csrf_token(client, "/signin")
        r = client.post(
            "/signin",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
    cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
    session = cookies["sandbox_session"]
    assert "httponly" in session and "samesite=lax" in session
    assert ("secure" in session.split("; ")) == (environment == "production")


def test_no_data_values_in_urls(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    """Every redirect after a form carries ids only, never what was typed or uploaded."""
    secret = "王小明-13800000000"
    seen: list[str] = []

    def send(path: str, data: dict) -> None:
        token = csrf_token(client, "/signin")
        r = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert r.status_code in (200, 303), r.text[:500]
        seen.append(r.headers.get("location", ""))

    send("/datasets/clinic_visits/objections",
         {"submitter": secret, "contact": secret, "description": secret})  # fmt: skip
    sign_in(client, "alice")
    send("/researcher/applications", {"title": secret, "reason": secret})
    app_id = submit_for_review(factory, platform, title=secret)
    client.cookies.clear()
    sign_in(client, "health")
    send(f"/provider/applications/{app_id}/refuse", {"reason": secret, "legal_basis": secret})
    assert seen and all(secret not in url for url in seen), seen
    assert all(url.startswith("/") for url in seen if url)


def test_refusal_without_legal_basis_names_rule_and_article(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    app_id = submit_for_review(factory, platform)
    sign_in(client, "health")
    token = csrf_token(client, f"/provider/applications/{app_id}")
    r = client.post(
        f"/provider/applications/{app_id}/refuse",
        data={"reason": "out of scope", "legal_basis": "", "csrf_token": token},
    )
    assert r.status_code == 422
    assert 'class="rule">refusal-needs-basis<' in r.text and "Wuxi Art.15(3)" in r.text


def test_approval_builds_the_agreement_from_the_prefilled_form(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    app_id = submit_for_review(factory, platform)
    sign_in(client, "health")
    page = client.get(f"/provider/applications/{app_id}").text
    assert 'value="clinic_visits.patient_id" checked' in page  # prefilled from the application
    token = csrf_token(client, f"/provider/applications/{app_id}")
    expected = agreement()
    form = {
        "csrf_token": token, "scope": "district aggregates", "agreement_id": "AGR-W-1",
        "title": "Clinic costs", "purpose": "Compare costs", "mode": "aggregate",
        "valid_from": "2027-01-01", "valid_until": "2027-06-30",
        "columns": ["clinic_visits.district", "clinic_visits.cost"],
        "min_group_size": "10", "epsilon": "2", "outputs": ["dp_table"],
        "usage_reports": "quarterly",
    }  # fmt: skip
    r = client.post(f"/provider/applications/{app_id}/approve", data=form)
    assert r.status_code == 200, r.text[:800]
    assert "AGR-W-1" in r.text and "epsilon: 2.0" in r.text
    assert "patient_id" not in r.text.split('id="agreement-yaml"')[1]  # narrowed
    assert expected.provider in r.text


def test_a_provider_is_shown_by_the_name_the_register_of_organisations_holds(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    """A department the operator has registered reads by its full name on every page that
    names it; before that, by its short name as an identifier (no list in the code)."""
    shown = '<code class="provider">city-health-commission</code>'
    assert shown in client.get("/datasets/clinic_visits").text
    with transaction(factory) as session:
        add_organisation(
            session=session,
            actor=session.get(User, platform["ops"].id),
            credit_code=HEALTH_CODE,
            name="city-health-commission",
            legal_name="某市卫生健康委员会",
            verified_how="registry lookup",
        )
    for lang in ("zh", "en"):
        client.cookies.set("lang", lang)
        page = client.get("/datasets/clinic_visits").text
        assert shown not in page
        assert 'lang="zh" translate="no">某市卫生健康委员会</span>' in page
