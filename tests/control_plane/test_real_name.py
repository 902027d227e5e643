"""An application is submitted only by a real-name verified applicant (Wuxi Art.6, R3).

An unverified researcher may prepare a draft; its submission is refused with the rule
``real-name`` and the article, changes nothing (not even the record), and goes through
once the operator has verified the person (through the API or the CLI).
"""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sandbox.accounts.models import Role, User
from sandbox.accounts.service import create_user
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.applications.service import create_application, list_applications, submit_application
from sandbox.audit.models import AuditEvent
from sandbox.cli.main import app as cli
from sandbox.db.base import transaction
from sandbox.errors import PolicyViolation
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import PASSWORD, login
from tests.control_plane.helpers import complete_application, publish_all


@pytest.fixture
def carol(factory, users, settings, catalog_dir) -> dict[str, User]:  # noqa: ANN001
    """The published catalogue and a researcher nobody has verified yet."""
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        users["carol"] = create_user(
            session=session, username="carol", password=PASSWORD, role=Role.researcher,
            display_name="Carol", organisation="江南大学",
        )  # fmt: skip
    return users


def _state(factory: sessionmaker[Session], app_id: int) -> tuple:
    """The application's reviewable state and the record's length."""
    with transaction(factory) as session:
        app = session.get_one(Application, app_id)
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        return (app.status, app.provider, app.received_on, app.review_deadline, events)


def _api_body() -> dict:
    body = complete_application()
    body["usage_from"], body["usage_until"] = "2027-01-01", "2027-06-30"
    return body


def test_unverified_applicant_drafts_but_cannot_submit_until_verified(
    client: TestClient, factory: sessionmaker[Session], carol: dict[str, User]
) -> None:
    headers = login(client, "carol")
    assert client.get("/api/me", headers=headers).json()["real_name_verified"] is False
    drafted = client.post("/api/applications", headers=headers, json=_api_body())
    assert drafted.status_code == 201 and drafted.json()["missing"] == []  # complete, a draft
    app_id = drafted.json()["id"]
    before = _state(factory, app_id)

    refused = client.post(f"/api/applications/{app_id}/submit", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["rule"] == "real-name" and refused.json()["article"] == "Wuxi Art.6"
    assert "'carol' is not real-name verified" in refused.json()["error"]
    assert _state(factory, app_id) == before  # still a draft; not even an audit event
    health = login(client, "health")
    assert client.get("/api/applications", headers=health).json() == []  # not forwarded

    verified = client.put(
        "/api/people/carol/identity",
        json={"legal_name": "柯洛", "verified_how": "identity card checked in person"},
        headers=login(client, "ops"),
    )
    assert verified.status_code == 200, verified.text
    assert client.get("/api/me", headers=headers).json()["real_name_verified"] is True
    done = client.post(f"/api/applications/{app_id}/submit", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "under_review" and done.json()["review_deadline"]
    assert [a["id"] for a in client.get("/api/applications", headers=health).json()] == [app_id]


def test_real_name_is_asked_before_completeness(
    factory: sessionmaker[Session], carol: dict[str, User]
) -> None:
    """An unverified applicant learns first what no amount of form filling can fix."""
    with transaction(factory) as session:
        draft = create_application(session=session, actor=carol["carol"], fields={"title": "x"})
    with transaction(factory) as session, pytest.raises(PolicyViolation) as err:
        submit_application(
            session=session, actor=carol["carol"], application_id=draft.id,
            today=date(2027, 1, 4), calendar=WorkCalendar(),
        )  # fmt: skip
    assert (err.value.rule, err.value.article) == ("real-name", "Wuxi Art.6")


def test_the_operator_verifies_through_the_cli_and_the_submission_goes_through(
    factory: sessionmaker[Session], carol: dict[str, User], cli_env: Settings
) -> None:
    with transaction(factory) as session:
        draft = create_application(
            session=session, actor=carol["carol"], fields=complete_application()
        )
    args = ["org", "verify-person", "carol", "--legal-name", "柯洛", "--verified-how", "in person"]
    refused = CliRunner().invoke(cli, [*args, "--as", "alice"])
    assert refused.exit_code == 1 and "[role]" in refused.output
    done = CliRunner().invoke(cli, [*args, "--as", "ops"])
    assert done.exit_code == 0 and "carol: identity verified" in done.output
    with transaction(factory) as session:
        app = submit_application(
            session=session, actor=carol["carol"], application_id=draft.id,
            today=date(2027, 1, 4), calendar=WorkCalendar(),
        )  # fmt: skip
        assert app.status == ApplicationStatus.under_review
        assert [a.id for a in list_applications(session, carol["health"])] == [draft.id]
