"""Pages for three of issue 7's duties: a dataset's synthetic preview (Shanghai Art.18),
one's own notifications, and the operator's register of organisations (Wuxi Art.6;
Rizhao Art.10). Real HTTP through the app; every new form refuses a POST without
its CSRF token and changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.db.base import transaction, utcnow
from sandbox.identity.models import Membership, Organisation
from sandbox.notifications.models import Notification
from sandbox.preview.service import make_preview, set_preview_budget
from sandbox.settings import Settings
from tests.web.test_pages import count, csrf_token, sign_in

UNIVERSITY = "91320200MA1N2P3Q4"
UNIVERSITY_CODE = UNIVERSITY + credit_code_check_char(UNIVERSITY)
BAD_CODE = UNIVERSITY + ("0" if UNIVERSITY_CODE[-1] != "0" else "1")


# --- Synthetic preview on the public dataset page ---------------------------------------


def test_the_dataset_page_offers_the_synthetic_preview_once_one_exists(
    client: TestClient,
    platform: dict[str, User],
    factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    before = client.get("/datasets/clinic_visits")
    assert before.status_code == 200 and 'id="synthetic-preview"' not in before.text
    with transaction(factory) as session:
        set_preview_budget(
            session=session, actor=platform["health"], name="clinic_visits", epsilon=2.0
        )
    make_preview(
        factory=factory,
        settings=settings,
        actor=platform["health"],
        name="clinic_visits",
        epsilon=0.5,
    )
    page = client.get("/datasets/clinic_visits").text
    assert 'id="synthetic-preview"' in page and "合成样本" in page
    assert 'id="preview-budget-left">ε 1.5 / 2.0<' in page
    for suffix in ("csv", "zip"):
        link = f"/api/catalog/clinic_visits/preview.{suffix}"
        assert f'href="{link}"' in page
        assert client.get(link).status_code == 200
    client.cookies.set("lang", "en")
    assert ">synthetic</span>" in client.get("/datasets/clinic_visits").text


# --- Notifications ----------------------------------------------------------------------


def _notices(factory: sessionmaker[Session]) -> dict[str, int]:
    """alice: an older unread notice and a newer read one; bob: one of his own."""
    made = {
        "alice-unread": Notification(
            key="alice|review_due|application:1|", recipient="alice", kind="review_due",
            object="application:1", subject="ALICE-UNREAD", body="b",
        ),
        "alice-read": Notification(
            key="alice|decision|application:2|", recipient="alice", kind="decision",
            object="application:2", subject="ALICE-READ", body="b", read_at=utcnow(),
        ),
        "bob": Notification(
            key="bob|decision|application:3|", recipient="bob", kind="decision",
            object="application:3", subject="BOB-NOTICE", body="b",
        ),
    }  # fmt: skip
    with transaction(factory) as session:
        session.add_all(made.values())
        session.flush()
        return {k: n.id for k, n in made.items()}


def _read_at(factory: sessionmaker[Session], ident: int):  # noqa: ANN202
    with transaction(factory) as session:
        return session.get_one(Notification, ident).read_at


def test_notifications_list_ones_own_unread_first_and_mark_read(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    ids = _notices(factory)
    sign_in(client, "alice")
    page = client.get("/notifications")
    assert page.status_code == 200
    assert page.text.index("ALICE-UNREAD") < page.text.index("ALICE-READ")
    assert "BOB-NOTICE" not in page.text
    assert 'id="unread-count">1<' in page.text
    token = csrf_token(client, "/notifications")
    no_csrf = client.post(f"/notifications/{ids['alice-unread']}/read")
    assert no_csrf.status_code == 403 and 'class="rule">csrf<' in no_csrf.text
    assert _read_at(factory, ids["alice-unread"]) is None
    # Another's notice is not found, and stays unread.
    others = client.post(f"/notifications/{ids['bob']}/read", data={"csrf_token": token})
    assert others.status_code == 404 and 'class="rule">notification-unknown<' in others.text
    assert _read_at(factory, ids["bob"]) is None
    done = client.post(f"/notifications/{ids['alice-unread']}/read", data={"csrf_token": token})
    assert done.status_code == 200 and 'id="unread-count"' not in done.text
    assert _read_at(factory, ids["alice-unread"]) is not None


def test_notifications_need_a_signed_in_user(client: TestClient, platform: dict[str, User]) -> None:
    r = client.get("/notifications", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fnotifications"
    r = client.get(r.headers["location"])
    assert 'href="/notifications"' not in r.text  # the menu link is for signed-in users


# --- Organisations ----------------------------------------------------------------------


def _add_form(code: str = UNIVERSITY_CODE) -> dict[str, str]:
    return {
        "credit_code": code, "name": "江南大学", "legal_name": "江南大学",
        "verified_how": "国家企业信用信息公示系统核验",
    }  # fmt: skip


def test_the_operator_registers_organisations_and_members(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "ops")
    page = client.get("/operator/organisations")
    assert page.status_code == 200
    assert 'id="add-organisation"' in page.text and 'id="add-member"' in page.text
    token = csrf_token(client, "/operator/organisations")
    bad = client.post("/operator/organisations", data={**_add_form(BAD_CODE), "csrf_token": token})
    assert bad.status_code == 422 and 'class="rule">credit-code<' in bad.text
    assert 'class="article">Rizhao Art.10<' in bad.text
    assert count(factory, Organisation) == 0
    done = client.post("/operator/organisations", data={**_add_form(), "csrf_token": token})
    assert done.status_code == 200 and UNIVERSITY_CODE in done.text
    member = {"credit_code": UNIVERSITY_CODE, "username": "alice", "role": "representative"}
    joined = client.post("/operator/organisations/members", data={**member, "csrf_token": token})
    assert joined.status_code == 200 and '<span translate="no">alice</span> (代表)' in joined.text
    again = client.post("/operator/organisations/members", data={**member, "csrf_token": token})
    assert again.status_code == 409 and 'class="rule">member-duplicate<' in again.text
    assert count(factory, Membership) == 1


def test_every_organisation_form_refuses_a_post_without_its_csrf_token(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "ops")
    token = csrf_token(client, "/operator/organisations")
    client.post("/operator/organisations", data={**_add_form(), "csrf_token": token})
    refused = [
        client.post("/operator/organisations", data=_add_form("91320200MA1N2P3Q5X")),
        client.post(
            "/operator/organisations/members",
            data={"credit_code": UNIVERSITY_CODE, "username": "alice"},
        ),
    ]
    for r in refused:
        assert r.status_code == 403 and 'class="rule">csrf<' in r.text
    assert count(factory, Organisation) == 1 and count(factory, Membership) == 0


def test_the_authority_reads_the_register_and_others_are_refused(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "ops")
    token = csrf_token(client, "/operator/organisations")
    client.post("/operator/organisations", data={**_add_form(), "csrf_token": token})
    client.cookies.clear()
    sign_in(client, "auth")
    page = client.get("/operator/organisations")
    assert page.status_code == 200 and UNIVERSITY_CODE in page.text
    assert 'id="add-organisation"' not in page.text and 'id="add-member"' not in page.text
    token = csrf_token(client, "/operator/organisations")
    member = {"credit_code": UNIVERSITY_CODE, "username": "alice", "csrf_token": token}
    r = client.post("/operator/organisations/members", data=member)
    assert r.status_code == 403 and 'class="rule">role<' in r.text
    with transaction(factory) as session:
        assert session.scalars(select(Membership)).first() is None
    client.cookies.clear()
    sign_in(client, "alice")
    r = client.get("/operator/organisations")
    assert r.status_code == 403 and 'class="rule">role<' in r.text
