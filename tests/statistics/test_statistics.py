"""Statistics for the authority (Shanghai Art.41; Wuxi Art.26): JSON, CSV and the chart page."""

from __future__ import annotations

import codecs
import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status, import_agreement
from sandbox.applications.models import Application
from sandbox.applications.service import (
    create_application,
    refuse_application,
    submit_application,
)
from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.statistics.chart import bar_chart
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, complete_application, publish_all


@pytest.fixture
def activity(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    """Two datasets; two applications (one refused, one under review); two agreements."""
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        for _ in range(2):
            app = create_application(
                session=session, actor=users["alice"], fields=complete_application()
            )
            submit_application(
                session=session,
                actor=users["alice"],
                application_id=app.id,
                today=date(2026, 12, 30),  # a Wednesday
                calendar=WorkCalendar(),
            )
        refuse_application(
            session=session,
            actor=users["health"],
            application_id=1,
            reason="scenario unclear",
            legal_basis="Wuxi Art.15(3)",
        )
        # decided on Friday 2027-01-15 in Shanghai (the night before in UTC): 12 working
        # days after receipt on the platform's calendar, 2027-01-01 not being in it
        session.get(Application, 1).decided_at = datetime(2027, 1, 14, 17, 0, tzinfo=UTC)
        for agreement_id in ("AGR-T-0001", "AGR-T-0002"):
            import_agreement(
                session=session, actor=users["health"], agreement=agreement(id=agreement_id)
            )
        change_status(
            session=session,
            actor=users["health"],
            agreement_id="AGR-T-0002",
            action=AgreementAction.terminate,
            reason="ended",
            today=date.today(),
        )
    return users


def figures(body: dict) -> dict[str, dict[str, int]]:
    return {f["name"]: f["counts"] for f in body["figures"]}


def test_statistics_json_and_csv_for_the_authority_only(client, activity):
    assert client.get("/api/statistics", headers=login(client, "alice")).status_code == 403
    assert client.get("/api/statistics.csv", headers=login(client, "health")).status_code == 403
    auth = login(client, "auth")
    r = client.get("/api/statistics", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    got = figures(body)
    assert got["datasets_by_class"] == {"conditional": 1, "non_open": 1}
    assert got["datasets_by_domain"] == {"health": 2}
    assert got["catalog_reviews_by_status"] == {"published": 2}  # both entries were approved
    assert got["applications_by_status"] == {"refused": 1, "under_review": 1}
    assert got["agreements_by_status"] == {"active": 1, "terminated": 1}
    assert got["exports_by_status"] == {} and got["violations_by_status"] == {}
    assert "quality_tasks_by_status" in got
    turnaround = body["turnaround"]
    assert turnaround["decided"] == 1 and turnaround["late"] == 1
    assert turnaround["max_working_days"] == 12
    assert body["article"] == "Shanghai Art.41; Wuxi Art.26"

    r = client.get("/api/statistics.csv", headers=login(client, "ops"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(codecs.BOM_UTF8)  # so that Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["figure", "key", "value"]
    assert ["agreements_by_status", "terminated", "1"] in rows
    assert ["review_turnaround", "decided", "1"] in rows


def test_the_cli_prints_the_same_figures_for_the_authority_only(cli_env, activity):  # noqa: ANN001
    runner = CliRunner()
    shown = runner.invoke(app, ["statistics", "--as", "auth"])
    assert shown.exit_code == 0, shown.output
    assert figures(json.loads(shown.output))["agreements_by_status"] == {
        "active": 1,
        "terminated": 1,
    }
    as_csv = runner.invoke(app, ["statistics", "--csv", "--as", "ops"])
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert rows[0] == ["figure", "key", "value"]
    assert ["review_turnaround", "decided", "1"] in rows
    refused = runner.invoke(app, ["statistics", "--as", "alice"])
    assert refused.exit_code == 1 and "authority" in refused.output


def test_the_authority_page_draws_a_bar_per_count(client, activity):
    client.cookies.set("lang", "en")
    page = client.get("/authority/statistics", headers=login(client, "auth"))
    assert page.status_code == 200, page.text
    html = page.text
    section = html.split('id="figure-agreements_by_status"')[1].split("</section>")[0]
    assert section.count("<rect") == 2 and "<script" not in html
    assert "terminated: 1" in section and "Agreements by status" in section
    assert client.get("/authority/statistics", headers=login(client, "bob")).status_code == 403


def test_bars_scale_to_the_largest_count():
    chart = bar_chart({"active": 6, "expired": 3, "suspended": 0})
    assert [(b.label, b.width) for b in chart.bars] == [
        ("active", 300),
        ("expired", 150),
        ("suspended", 0),
    ]
    assert bar_chart({}).bars == []
