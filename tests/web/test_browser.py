"""Each role's main path end to end in Debian's chromium against a real uvicorn.

Screenshots go to test-artifacts/screenshots/ (gitignored) for people to look at;
the assertions are on what the page shows, never on timing.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.service import import_agreement
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.catalog.models import Dataset
from sandbox.db.base import transaction
from sandbox.feedback.models import Objection
from sandbox.provisioning.models import Workspace, WorkspaceStatus
from tests.control_plane.conftest import resident_id
from tests.control_plane.helpers import agreement
from tests.web.conftest import screenshot, sign_in, submit_for_review

pytestmark = pytest.mark.browser


def test_public_browses_and_raises_an_objection(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    page.goto(f"{live_server}/catalogue")
    page.fill("input[name=q]", "clinic")
    page.select_option("select[name=open_class]", "conditional")
    page.click("form.filters button")
    page.click("#datasets a[href='/datasets/clinic_visits']")
    assert "Accredited institutions." in page.inner_text("dd.conditions")
    assert page.locator("#columns tbody tr").count() == 3
    page.fill("#objection input[name=submitter]", "张三")
    page.fill("#objection input[name=contact]", "zhang@example.invalid")
    page.fill("#objection textarea[name=description]", "区县名称有误")
    page.click("#objection button[type=submit]")
    page.wait_for_selector("p.notice")
    screenshot(page, "public-objection")
    assert "sent=objection" in page.url
    with transaction(factory) as session:
        objection = session.scalars(select(Objection)).one()
        assert objection.description == "区县名称有误"


def test_researcher_applies_with_completeness_help_and_submits(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/researcher/applications/new")
    missing = page.locator("#missing")
    assert "应用场景" in missing.inner_text()  # nothing filled in yet
    page.fill("input[name=title]", "门诊费用分析")
    page.fill("textarea[name=reason]", "公共卫生研究")
    page.fill("textarea[name=scenario]", "按区县汇总的费用统计")
    page.fill("textarea[name=purpose]", "比较各区县平均费用")
    # The live help drops what is now filled in, without saving anything.
    page.wait_for_function("!document.getElementById('missing').innerText.includes('应用场景')")
    page.fill("input[name=usage_from]", "2027-01-01")
    page.fill("input[name=usage_until]", "2027-06-30")
    page.check("input[name=output_forms][value=dp_table]")
    page.fill("textarea[name=conditions_evidence]", "安全认证证书 42 号")
    for column in ("district", "cost"):
        page.check(f"input[name=columns][value='clinic_visits.{column}']")
    # Only the signed commitment is left (the help caught up with every field above).
    page.wait_for_function("document.querySelectorAll('#missing li').length === 1")
    assert "签署承诺" in missing.inner_text()
    screenshot(page, "researcher-application-incomplete")
    page.check("input[name=commitment_signed]")
    page.wait_for_selector("#missing p.complete")
    with transaction(factory) as session:
        assert session.scalars(select(Application)).first() is None  # the help saved nothing
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#deadline")
    screenshot(page, "researcher-application-submitted")
    assert "working_days_left" not in page.content()
    assert "个工作日后到期" in page.inner_text("#deadline")
    with transaction(factory) as session:
        app = session.scalars(select(Application)).one()
        assert app.status == ApplicationStatus.under_review
        assert app.datasets == {"clinic_visits": ["district", "cost"]}


def _upload_csv(path: Path) -> None:
    rng = random.Random(11)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["person_id", "district", "amount"])
        for _ in range(40):
            out.writerow([resident_id(rng), rng.choice(["梁溪区", "锡山区"]), rng.randint(1, 500)])


def test_provider_publishes_a_csv_and_reviews(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:  # fmt: skip
    sign_in(page, live_server, "health")
    # Publish: upload, declare (identifier suggested), preview the quality report, publish.
    data = tmp_path / "subsidies.csv"
    _upload_csv(data)
    page.goto(f"{live_server}/provider/publish")
    page.set_input_files("input[name=data]", str(data))
    page.click("form button.primary")
    page.wait_for_selector("#declare-columns")
    sensitivity = page.locator("select[name=column_sensitivity]")
    assert sensitivity.nth(0).input_value() == "identifier"  # suggested from the values
    assert sensitivity.nth(1).input_value() == "none"
    page.fill("input[name=name]", "health_subsidies")
    page.fill("input[name=title]", "医疗补助")
    page.fill("input[name=domain]", "health")
    page.fill("textarea[name=summary]", "每人每次补助金额")
    page.fill("textarea[name=conditions]", "具备数据安全管理能力的科研机构")
    page.fill("input[name=contact]", "data@health.example.invalid")
    page.select_option("select[name=entity]", "person_id")
    page.locator("select[name=column_type]").nth(2).select_option("BIGINT")
    page.locator("select[name=column_sensitivity]").nth(1).select_option("quasi_identifier")
    page.click("#declaration button[type=submit]")
    page.wait_for_selector("#preview")
    assert "40" in page.inner_text("#preview .quality")
    screenshot(page, "provider-publish-preview")
    page.click("#preview button.primary")
    page.wait_for_selector("#dataset-list")
    row = page.inner_text("#dataset-health_subsidies")
    assert "health_subsidies" in row and "审查中" in row  # under catalogue review
    with transaction(factory) as session:
        ds = session.scalars(select(Dataset).where(Dataset.name == "health_subsidies")).one()
        assert ds.entry["columns"][0]["sensitivity"] == "identifier" and not ds.published
    page.goto(f"{live_server}/catalogue")
    assert "health_subsidies" not in page.inner_text("main")

    # The authority reviews the entry and records its legality review; then it is public.
    sign_in(page, live_server, "auth")
    page.click("nav a[href='/authority/catalog-reviews']")
    page.click("#catalog-review-queue a")
    assert "具备数据安全管理能力的科研机构" in page.inner_text("#entry-changes")
    page.fill("#decide textarea[name=legality_review]", "开放类型与条件合法，予以公布。")
    screenshot(page, "authority-catalogue-review")
    page.click("#decide button[value=approve]")
    page.wait_for_selector("#legality-review")
    assert page.inner_text("#review-status") == "已公布"
    page.goto(f"{live_server}/catalogue")
    assert "health_subsidies" in page.inner_text("main")
    sign_in(page, live_server, "health")

    # Review: a refusal without legal basis is refused with the rule and article.
    app_id = submit_for_review(factory, platform)
    page.goto(f"{live_server}/provider")
    page.click(f"#application-queue a[href='/provider/applications/{app_id}']")
    assert page.locator(".countdown").count() == 1
    page.fill("#refuse textarea[name=reason]", "超出开放范围")
    page.click("#refuse button[type=submit]")
    page.wait_for_selector(".refusal")
    screenshot(page, "provider-refusal-needs-basis")
    assert page.inner_text(".refusal .rule") == "refusal-needs-basis"
    assert "Wuxi Art.15(3)" in page.inner_text(".refusal .article")
    # The same page again, the reason kept and the missing basis beside its field.
    assert page.input_value("#refuse textarea[name=reason]") == "超出开放范围"
    assert page.inner_text("#refuse-form-legal_basis-problem") == "必填"
    # Approval: the prefilled form, narrowed to two columns, signs the agreement.
    page.fill("#approve input[name=agreement_id]", "AGR-WEB-0001")
    page.uncheck("#approve input[name=columns][value='clinic_visits.patient_id']")
    page.click("#approve button.primary")
    page.wait_for_selector("#agreement-yaml")
    screenshot(page, "provider-agreement-signed")
    yaml_text = page.inner_text("#agreement-yaml")
    assert "id: AGR-WEB-0001" in yaml_text and "patient_id" not in yaml_text
    with transaction(factory) as session:
        assert session.get(Application, app_id).status == ApplicationStatus.approved


def test_operator_provisions_a_workspace(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        import_agreement(session=session, actor=platform["health"], agreement=agreement())
    sign_in(page, live_server, "ops")
    row = page.locator("#agreement-AGR-T-0001")
    assert "未部署" in row.locator(".ws-status").inner_text()
    row.locator("button:has-text('部署')").click()
    page.wait_for_selector("#agreement-AGR-T-0001 .ws-status:has-text('已部署')")
    screenshot(page, "operator-provisioned")
    with transaction(factory) as session:
        ws = session.get(Workspace, "AGR-T-0001")
        assert ws is not None and ws.status == WorkspaceStatus.provisioned
        assert Path(ws.database_path).is_file()


def test_authority_verifies_the_chain(page, live_server: str, platform: dict[str, User]) -> None:
    sign_in(page, live_server, "auth")
    page.click("a[href='/lang/en']")  # the English switch
    page.click("#chain button.primary")
    page.wait_for_selector("#verify-result")
    screenshot(page, "authority-chain-verified")
    assert "The chain verifies" in page.inner_text("#verify-result")
    page.click("text=Read the record")
    assert page.locator("#audit-events tbody tr").count() > 0
    assert "user.sign_in" in page.inner_text("#audit-events")
