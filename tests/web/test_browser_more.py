"""More paths end to end in Debian's chromium against a real uvicorn: an export request
from submission through side-by-side review to the downloaded, verified bundle; usage
reports; objections and complaints; the operator's agreement moves and lifecycle job;
acknowledging an alert.

Screenshots go to test-artifacts/screenshots/; assertions are on what the pages show and
what the database holds, never on timing.
"""

from __future__ import annotations

import codecs
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from export_review.bundle import verify_bundle
from export_review.models import ExportRequest
from query_guard.early_warning.models import Alert, AlertKind
from sandbox.accounts.models import User
from sandbox.agreements.models import AgreementRecord
from sandbox.agreements.service import import_agreement
from sandbox.catalog.models import Dataset
from sandbox.db.base import transaction
from sandbox.feedback.complaints import file_complaint
from sandbox.feedback.models import UsageReport
from sandbox.feedback.objections import raise_objection
from tests.control_plane.helpers import agreement
from tests.web.conftest import COUNT_QUERY, screenshot, sign_in, table_csv

pytestmark = pytest.mark.browser


def sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.click("header form[action='/signout'] button")
    page.wait_for_url("**/catalogue")


def test_export_submitted_reviewed_side_by_side_and_the_bundle_verified(
    page, live_server: str, export_agreement: str, catalog_dir: Path,
    factory: sessionmaker[Session], tmp_path: Path,
) -> None:  # fmt: skip
    table = tmp_path / "visits.csv"
    table.write_text(table_csv(catalog_dir, COUNT_QUERY), encoding="utf-8")
    # The researcher: a figure of the table, as a chart specification the platform draws.
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/researcher/agreements/{export_agreement}")
    page.click(f"a[href='/researcher/agreements/{export_agreement}/exports/new']")
    assert page.locator("#chart-spec").is_hidden()  # asked for only for a figure
    page.check("#form-figure input[name=form]")
    page.wait_for_selector("#chart-spec", state="visible")
    page.set_input_files("#export-files", [str(table)])
    page.select_option("select[name=chart_kind]", "bar")
    page.fill("input[name=chart_x]", "district")
    page.fill("input[name=chart_y]", "visits")
    page.fill("input[name=chart_title]", "各区县门诊人次")
    page.fill("textarea[name=purpose]", "报告图1：各区县门诊人次")
    page.locator("textarea[name=queries]").first.fill(COUNT_QUERY)
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#verdict")
    screenshot(page, "researcher-export-submitted")
    assert page.locator("#verdict-passed").count() == 1  # the verdict, at once
    assert "已通过自动检查" in page.inner_text("#export-status")
    with transaction(factory) as session:
        req = session.scalars(select(ExportRequest)).one()
        assert req.form == "figure" and req.queries == [COUNT_QUERY]
        assert req.chart["x"] == "district" and req.chart["y"] == ["visits"]
        rid = req.id
    sign_out(page)

    # The provider: output and checks side by side.
    sign_in(page, live_server, "health")
    page.click(f"#export-queue a[href='/provider/exports/{rid}']")
    page.wait_for_selector("#output")
    assert page.locator("#output table.output-table tbody tr").count() == 3
    page.wait_for_function(  # the platform's drawing loads through the authenticated route
        "document.querySelector('#rendered-figure img.output-figure').complete"
        " && document.querySelector('#rendered-figure img.output-figure').naturalWidth === 700"
    )
    rerun = page.locator(".rerun[data-file='visits.csv']")
    assert rerun.locator(".rerun-derived").count() == 1
    assert rerun.locator("td.cell-ok").count() >= 3
    assert "ε" in page.inner_text("#budget")
    screenshot(page, "provider-export-side-by-side")
    page.click("form.move-start_review button")
    page.wait_for_selector("form.move-return")
    page.click("form.move-return button")  # no reason given
    page.wait_for_selector(".refusal")
    screenshot(page, "provider-export-return-needs-reason")
    assert page.inner_text(".refusal .rule") == "export-reason"
    assert "审核中" in page.inner_text("#export-status")
    page.click("form.move-approve button")
    page.wait_for_selector("#export-status:has-text('已发布')")
    sign_out(page)

    # The researcher downloads the signed bundle and checks it with the published key.
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/keys")
    release_key = load_pem_public_key(page.inner_text("#key-release pre.pem").encode())
    screenshot(page, "public-keys")
    page.goto(f"{live_server}/researcher/exports/{rid}")
    with page.expect_download() as info:
        page.click("#download-bundle")
    archive = tmp_path / "bundle.zip"
    info.value.save_as(archive)
    zipfile.ZipFile(archive).extractall(tmp_path / "bundle")
    assert verify_bundle(tmp_path / "bundle", release_key) == []  # type: ignore[arg-type]
    files = tmp_path / "bundle" / "files"
    # The researcher's table, with the byte-order mark that makes Excel read it as UTF-8.
    assert (files / "visits.csv").read_bytes() == codecs.BOM_UTF8 + table.read_bytes()
    assert (files / "figure.png").read_bytes().startswith(b"\x89PNG")
    assert {"chart.json", "figure.svg"} <= {p.name for p in files.iterdir()}


def test_researcher_submits_a_usage_report(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    today = date.today()
    with transaction(factory) as session:
        import_agreement(
            session=session, actor=platform["health"],
            agreement=agreement(valid_from=today - timedelta(days=200)),
        )  # fmt: skip
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/researcher/agreements/AGR-T-0001")
    period = page.locator("select[name=period_end]").input_value()
    page.fill("textarea[name=summary]", "按区县汇总门诊费用，用于季度分析")
    page.fill("textarea[name=outputs]", "《门诊费用季度报告》，数据来源：Clinic visits")
    page.click("form[action$='/usage-reports'] button")
    page.wait_for_selector(f"#usage-reports tr:has-text('{period}'):has-text('已提交')")
    screenshot(page, "researcher-usage-report")
    with transaction(factory) as session:
        report = session.scalars(select(UsageReport)).one()
        assert report.period_end.isoformat() == period


def test_provider_handles_an_objection_and_a_complaint(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        raise_objection(session=session, dataset="clinic_visits", submitter="张三",
                        contact="z@example.invalid", description="区县名称有误")  # fmt: skip
        file_complaint(session=session, dataset="clinic_visits", complainant="李四",
                       contact="l@example.invalid", kind="privacy", description="含本人就诊记录",
                       evidence="就诊凭证")  # fmt: skip
    sign_in(page, live_server, "health")
    row = page.locator("#objection-list tbody tr").first
    row.locator("select[name=to]").select_option("confirmed")
    row.locator("input[name=answer]").fill("已初步核实，正在更正")
    row.locator("button").click()
    page.wait_for_selector("#objection-list td:has-text('已初步确认')")
    row = page.locator("#complaint-list tbody tr").first
    row.locator("select[name=to]").select_option("suspended")
    row.locator("input[name=answer]").fill("已中止开放，正在核实")
    row.locator("button").click()
    page.wait_for_selector("#complaint-list td:has-text('已中止开放')")
    screenshot(page, "provider-objection-complaint")
    # The public dataset page shows both marks at once (Shanghai Art.21, 22).
    page.goto(f"{live_server}/datasets/clinic_visits")
    assert page.locator(".badge.objection").count() == 1
    assert "已中止开放" in page.inner_text("main > p")
    screenshot(page, "public-dataset-suspended")
    with transaction(factory) as session:
        ds = session.scalars(select(Dataset).where(Dataset.name == "clinic_visits")).one()
        assert ds.status == "suspended" and ds.under_objection


def test_operator_suspends_reinstates_revokes_and_runs_the_lifecycle(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    today = date.today()
    with transaction(factory) as session:
        for rec in (agreement(), agreement(id="AGR-T-0002", valid_from=today - timedelta(days=60),
                                           valid_until=today - timedelta(days=1))):  # fmt: skip
            import_agreement(session=session, actor=platform["health"], agreement=rec)
    sign_in(page, live_server, "ops")
    row = page.locator("#agreement-AGR-T-0001")
    suspend = row.locator("form:has(input[value=suspend])")
    suspend.locator("input[name=reason]").fill("未落实约定的安全措施")
    suspend.locator("input[name=rectification_days]").fill("15")
    suspend.locator("button").click()
    page.wait_for_selector("#agreement-AGR-T-0001 .badge:has-text('暂停')")
    assert "整改期限" in page.inner_text("#agreement-AGR-T-0001")
    screenshot(page, "operator-suspended")
    reinstate = page.locator("#agreement-AGR-T-0001 form:has(input[value=reinstate])")
    reinstate.locator("input[name=reason]").fill("已整改")
    reinstate.locator("button").click()
    page.wait_for_selector("#agreement-AGR-T-0001 .badge:has-text('有效')")
    revoke = page.locator("#agreement-AGR-T-0001 form:has(input[value=terminate])")
    revoke.locator("input[name=reason]").fill("违反使用场景")
    revoke.locator("button").click()
    page.wait_for_selector("#agreement-AGR-T-0001 .badge:has-text('已终止')")
    page.click("form[action='/operator/lifecycle'] button")
    page.wait_for_selector("#lifecycle-result")
    screenshot(page, "operator-lifecycle")
    assert "AGR-T-0002" in page.inner_text("#lifecycle-result")
    with transaction(factory) as session:
        assert session.get_one(AgreementRecord, "AGR-T-0001").status == "terminated"
        assert session.get_one(AgreementRecord, "AGR-T-0002").status == "expired"


def test_provider_acknowledges_an_alert(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        import_agreement(session=session, actor=platform["health"], agreement=agreement())
        alert = Alert(agreement_id="AGR-T-0001", researcher="alice",
                      kind=AlertKind.bulk_extraction, details={"rows_today": 120000})  # fmt: skip
        session.add(alert)
        session.flush()
        alert_id = alert.id
    sign_in(page, live_server, "health")
    row = page.locator("#alert-list tbody tr").first
    assert "批量提取" in row.inner_text()
    row.locator("button").click()
    page.wait_for_selector("#alert-list td:has-text('已确认')")
    screenshot(page, "provider-alert-acknowledged")
    with transaction(factory) as session:
        acknowledged = session.get_one(Alert, alert_id)
        assert acknowledged.status == "acknowledged" and acknowledged.acknowledged_by == "health"
