"""Real-name identity on the pages (Wuxi Art.6; Rizhao Art.10): the operator's register
of accounts and its verification form, one's own account page, and the apply page's
notice and refusal. Real HTTP through the app; refusals name the rule and the article and
change nothing; the resident ID number never appears in a page."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.audit.models import AuditEvent
from sandbox.db.base import transaction
from sandbox.identity.models import PersonIdentity
from tests.control_plane.conftest import resident_id
from tests.web.conftest import application_form
from tests.web.test_pages import csrf_token, sign_in

NUMBER = resident_id(random.Random(11))
WRONG = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")


def _events(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _identity(factory: sessionmaker[Session], user: User) -> tuple | None:
    with transaction(factory) as session:
        found = session.get(PersonIdentity, user.id)
        return None if found is None else (found.legal_name, found.resident_id_hmac)


def _verify(client: TestClient, username: str = "carol", **overrides: str):  # noqa: ANN202
    form = {"username": username, "legal_name": "柯洛", "verified_how": "现场查验身份证",
            "resident_id": NUMBER, **overrides}  # fmt: skip
    token = csrf_token(client, "/operator/identities")
    return client.post("/operator/identities", data={**form, "csrf_token": token})


def _row(page: str, username: str) -> str:
    start = page.index(f'id="identity-{username}"')
    return page[start : page.index("</tr>", start)]


def test_the_operator_sees_who_is_verified_and_verifies_a_researcher(
    client: TestClient, carol: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "ops")
    page = client.get("/operator/identities")
    assert page.status_code == 200 and 'id="verify-identity"' in page.text
    assert "未实名核验" in _row(page.text, "carol") and "未实名核验" in _row(page.text, "health")
    alice = _row(page.text, "alice")  # verified by the fixtures, through the same service
    assert "已实名核验" in alice and "identity card checked in person" in alice and "ops" in alice
    done = _verify(client)
    assert done.status_code == 200 and str(done.url).endswith("/operator/identities")
    row = _row(done.text, "carol")
    assert "已实名核验" in row and "柯洛" in row and "现场查验身份证" in row
    assert "<td>是</td>" in row  # an ID number was recorded ...
    assert NUMBER not in done.text  # ... and is never shown
    legal_name, digest = _identity(factory, carol["carol"])
    assert legal_name == "柯洛" and digest and NUMBER not in digest


def test_identity_refusals_name_rule_and_article_and_change_nothing(
    client: TestClient, carol: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "ops")
    assert _verify(client, "bob").status_code == 200  # bob now holds NUMBER
    before = _events(factory)
    bad = _verify(client, resident_id=WRONG)
    assert bad.status_code == 422 and 'class="rule">resident-id<' in bad.text
    assert 'class="article">Rizhao Art.10<' in bad.text
    assert 'value="柯洛"' in bad.text and WRONG not in bad.text  # the form again, minus the number
    duplicate = _verify(client)
    assert duplicate.status_code == 409 and 'class="rule">resident-id-duplicate<' in duplicate.text
    assert NUMBER not in duplicate.text
    blank = _verify(client, legal_name=" ")
    assert blank.status_code == 422 and 'class="rule">fields<' in blank.text
    unknown = _verify(client, "nobody")
    assert unknown.status_code == 404 and 'class="rule">user-unknown<' in unknown.text
    assert _identity(factory, carol["carol"]) is None and _events(factory) == before


def test_only_the_operator_verifies_and_every_post_needs_its_csrf_token(
    client: TestClient, carol: dict[str, User], factory: sessionmaker[Session]
) -> None:
    form = {"username": "carol", "legal_name": "柯洛", "verified_how": "in person"}
    sign_in(client, "ops")
    no_csrf = client.post("/operator/identities", data=form)
    assert no_csrf.status_code == 403 and 'class="rule">csrf<' in no_csrf.text
    client.cookies.clear()
    sign_in(client, "auth")
    page = client.get("/operator/identities")  # the authority reads the register ...
    assert page.status_code == 200 and 'id="identity-carol"' in page.text
    assert 'id="verify-identity"' not in page.text  # ... and has no form
    token = csrf_token(client, "/operator/identities")
    refused = client.post("/operator/identities", data={**form, "csrf_token": token})
    assert refused.status_code == 403 and 'class="rule">role<' in refused.text
    client.cookies.clear()
    sign_in(client, "carol")
    assert client.get("/operator/identities").status_code == 403
    token = csrf_token(client, "/researcher")
    refused = client.post("/operator/identities", data={**form, "csrf_token": token})
    assert refused.status_code == 403 and 'class="rule">role<' in refused.text
    assert _identity(factory, carol["carol"]) is None


def test_the_account_page_says_whether_ones_real_name_is_verified(
    client: TestClient, carol: dict[str, User]
) -> None:
    anonymous = client.get("/account", follow_redirects=False)
    assert anonymous.headers["location"] == "/signin?next=%2Faccount"  # sign in first
    sign_in(client, "carol")
    mine = client.get("/account")
    assert mine.status_code == 200 and 'id="real-name-status"' in mine.text
    assert "未实名核验" in mine.text and "Wuxi Art.6" in mine.text
    client.cookies.clear()
    sign_in(client, "alice")
    mine = client.get("/account")
    assert "已实名核验" in mine.text and "未实名核验" not in mine.text
    assert "Alice (legal name)" in mine.text and "identity card checked in person" in mine.text


def test_an_unverified_applicant_is_told_before_the_form_and_refused_on_submission(
    client: TestClient, carol: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    assert 'id="real-name-notice"' not in client.get("/researcher/applications/new").text
    client.cookies.clear()
    sign_in(client, "carol")
    blank = client.get("/researcher/applications/new")
    assert 'id="real-name-notice"' in blank.text and "Wuxi Art.6" in blank.text
    assert blank.text.index('id="real-name-notice"') < blank.text.index('id="application-form"')
    token = csrf_token(client, "/researcher/applications/new")
    refused = client.post(
        "/researcher/applications", data={**application_form(), "csrf_token": token}
    )
    assert refused.status_code == 403
    assert (
        'class="rule">real-name<' in refused.text and 'class="article">Wuxi Art.6<' in refused.text
    )
    assert 'id="application-form"' in refused.text  # the draft is kept and shown again
    with transaction(factory) as session:
        (app,) = session.scalars(select(Application)).all()
        assert app.status == ApplicationStatus.draft and app.review_deadline is None
        submitted = select(AuditEvent).where(AuditEvent.action == "application.submit")
        assert session.scalars(submitted).all() == []

    client.cookies.clear()
    sign_in(client, "ops")
    assert _verify(client, resident_id="").status_code == 200
    client.cookies.clear()
    sign_in(client, "carol")
    token = csrf_token(client, f"/researcher/applications/{app.id}")
    done = client.post(
        f"/researcher/applications/{app.id}", data={**application_form(), "csrf_token": token}
    )
    assert done.status_code == 200 and 'id="real-name-notice"' not in done.text
    with transaction(factory) as session:
        assert session.get_one(Application, app.id).status == ApplicationStatus.under_review
