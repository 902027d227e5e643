"""Chinese columns end to end in Debian's chromium (issue 14 item 1, "Done when"): a provider
publishes a GBK CSV headed in Chinese, an application and its agreement name those columns,
the researcher queries them by their Chinese names through the guard, quoted or not, and
exports a DP table headed in Chinese that the provider releases as a signed bundle."""

from __future__ import annotations

import codecs
import csv
import io
import random
import zipfile
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from export_review.bundle import verify_bundle
from export_review.models import ExportRequest
from sandbox.accounts.models import User
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.service import as_contract, get_agreement
from sandbox.catalog.models import Dataset
from sandbox.catalog.service import catalog_entries
from sandbox.db.base import transaction
from sandbox.workspaces.welcome import example_queries
from tests.catalog.idgen import resident_id
from tests.web.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

HEADER = ["身份证号", "姓名", "就诊日期", "区县", "费用（元）"]
DISTRICTS = ["梁溪区", "滨湖区", "惠山区"]
AGREEMENT_ID = "AGR-ZH-0001"
BY_DISTRICT = "SELECT 区县, count(*) FROM 门诊就诊 GROUP BY 区县"
DP_TABLE = "SELECT 区县, COUNT(*) AS 就诊人次 FROM 门诊就诊 GROUP BY 区县"


def _gbk_csv(path: Path) -> Path:
    """Visits of 300 patients as a hospital system exports them: GBK, Chinese headers and dates."""
    rng = random.Random(14)
    with path.open("w", encoding="gbk", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(300):
            pid = resident_id("320202", date(1950, 1, 1) + timedelta(days=67 * i), i)
            for _ in range(rng.randint(1, 3)):
                day = date(2024, 1, 1) + timedelta(days=rng.randint(0, 360))
                out.writerow([pid, f"张{i}", f"{day.year}年{day.month}月{day.day}日",
                              DISTRICTS[i % 3], f"{rng.uniform(10, 900):,.2f}"])  # fmt: skip
    return path


def _row(page, header: str):  # type: ignore[no-untyped-def]
    return page.locator("#declare-columns tbody tr", has=page.locator(f"code:text-is('{header}')"))


def _publish(page, live_server: str, data: Path) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/provider/publish")
    page.set_input_files("input[name=data]", str(data))
    page.select_option("select[name=encoding]", "gbk")
    page.click("form button.primary")
    page.wait_for_selector("#declare-columns")
    # Proposed as identifiers: 身份证号 by its values' GB 11643 check, 姓名 by its name.
    sensitivity = {h: _row(page, h).locator("select[name=column_sensitivity]") for h in HEADER}
    assert sensitivity["身份证号"].input_value() == "identifier"
    assert sensitivity["姓名"].input_value() == "identifier"
    assert sensitivity["区县"].input_value() == "none"
    names = {h: _row(page, h).locator("input[name=column_name]") for h in HEADER}
    assert [names[h].input_value() for h in HEADER] == HEADER  # each header is its name
    page.fill("input[name=name]", "门诊就诊")
    page.fill("input[name=title]", "门诊就诊记录")
    page.fill("input[name=domain]", "卫生健康")
    page.fill("textarea[name=summary]", "每次门诊就诊一行")
    page.fill("textarea[name=conditions]", "具备数据安全管理能力的科研机构")
    page.fill("input[name=contact]", "data@health.example.invalid")
    page.select_option("select[name=entity]", "身份证号")
    _row(page, "就诊日期").locator("select[name=column_type]").select_option("DATE")
    _row(page, "费用（元）").locator("select[name=column_type]").select_option("DOUBLE")
    sensitivity["区县"].select_option("quasi_identifier")
    page.click("#declaration button[type=submit]")
    # 费用（元） is no SQL name: the refusal says which name to write, next to the form.
    page.wait_for_selector(".refusal")
    assert "'费用_元'" in page.inner_text(".refusal")
    screenshot(page, "provider-publish-chinese-name-refused")
    names = {h: _row(page, h).locator("input[name=column_name]") for h in HEADER}
    names["费用（元）"].fill("费用_元")
    page.click("#declaration button[type=submit]")
    page.wait_for_selector("#preview")
    screenshot(page, "provider-publish-chinese-preview")
    page.click("#preview button.primary")
    page.wait_for_selector("#dataset-list")

    sign_in(page, live_server, "auth")
    page.click("nav a[href='/authority/catalog-reviews']")
    page.click("#catalog-review-queue a")
    page.fill("#decide textarea[name=legality_review]", "开放类型与条件合法，予以公布。")
    page.click("#decide button[value=approve]")
    page.wait_for_selector("#legality-review")


def _apply(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/researcher/applications/new")
    page.fill("input[name=title]", "各区县门诊就诊")
    page.fill("textarea[name=reason]", "公共卫生研究")
    page.fill("textarea[name=scenario]", "按区县汇总的就诊人次")
    page.fill("textarea[name=purpose]", "比较各区县就诊人次")
    page.fill("input[name=usage_from]", date.today().isoformat())
    page.fill("input[name=usage_until]", (date.today() + timedelta(days=180)).isoformat())
    page.check("input[name=output_forms][value=dp_table]")
    page.fill("textarea[name=conditions_evidence]", "安全认证证书 42 号")
    for column in ("区县", "就诊日期"):
        page.check(f"input[name=columns][value='门诊就诊.{column}']")
    page.check("input[name=commitment_signed]")
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#deadline")

    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/provider")
    page.click("#application-queue a")
    page.fill("#approve input[name=agreement_id]", AGREEMENT_ID)
    page.click("#approve button.primary")
    page.wait_for_selector("#agreement-yaml")
    agreement = page.inner_text("#agreement-yaml")
    assert "门诊就诊:" in agreement and "- 区县" in agreement and "- 就诊日期" in agreement

    sign_in(page, live_server, "ops")
    page.locator(f"#agreement-{AGREEMENT_ID} button:has-text('部署')").click()
    page.wait_for_selector(f"#agreement-{AGREEMENT_ID} .ws-status:has-text('已部署')")


def test_chinese_columns_from_a_gbk_file_to_a_released_dp_table(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:  # fmt: skip
    _publish(page, live_server, _gbk_csv(tmp_path / "门诊就诊.csv"))
    with transaction(factory) as session:
        entry = session.scalars(select(Dataset).where(Dataset.name == "门诊就诊")).one().entry
    assert [c["name"] for c in entry["columns"]] == [*HEADER[:4], "费用_元"]
    assert entry["columns"][4]["header"] == "费用（元）"
    assert [c["sensitivity"] for c in entry["columns"][:2]] == ["identifier"] * 2
    page.goto(f"{live_server}/datasets/门诊就诊")
    assert "费用_元" in page.inner_text("#columns")
    _apply(page, live_server)

    # The researcher's notebook client speaks to the query service with the workspace token.
    with transaction(factory) as session:
        token, _ = issue_workspace_token(
            session, platform["alice"], get_agreement(session, AGREEMENT_ID)
        )
    qs = httpx.Client(
        base_url=live_server, timeout=60,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )  # fmt: skip
    answers = []
    for sql in (BY_DISTRICT, 'SELECT "区县", count(*) FROM "门诊就诊" GROUP BY "区县"'):
        r = qs.post("/qs/query", json={"sql": f"{sql} ORDER BY 1"})
        assert r.status_code == 200, r.text
        assert r.json()["columns"][0] == "区县" and r.json()["decision"]["action"] == "rewrite"
        answers.append(r.json()["rows"])
    assert answers[0] == answers[1] and sorted(row[0] for row in answers[0]) == sorted(DISTRICTS)
    refused = qs.post("/qs/query", json={"sql": "SELECT 身份证号 FROM 门诊就诊"})
    assert refused.status_code == 403 and "QG-006" in refused.text  # not in the agreement
    # The welcome notebook's examples are written in the Chinese names, and they run.
    welcome = qs.get("/qs/welcome.ipynb")
    assert welcome.status_code == 200 and "FROM 门诊就诊" in welcome.text, welcome.text[:500]
    with transaction(factory) as session:
        examples = example_queries(
            as_contract(get_agreement(session, AGREEMENT_ID)), catalog_entries(session)
        )
    assert examples
    for example in examples:
        ran = qs.post("/qs/query", json={"sql": example.sql})
        assert ran.status_code == 200, (example.sql, ran.text)
    r = qs.post("/qs/dp-exports", json={"sql": DP_TABLE, "epsilon": 0.5, "purpose": "表1"})
    assert r.status_code == 201, r.text
    rid = r.json()["export"]["id"]

    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/provider/exports/{rid}")
    page.wait_for_selector("#output")
    header = page.locator("#output table.output-table thead th").all_inner_texts()
    assert header == ["区县", "就诊人次"]
    screenshot(page, "provider-export-chinese-dp-table")
    page.click("form.move-start_review button")
    page.wait_for_selector("form.move-approve")
    page.click("form.move-approve button")
    page.wait_for_selector("#export-status:has-text('已发布')")
    with transaction(factory) as session:
        assert session.get_one(ExportRequest, rid).status == "released"

    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/keys")
    release_key = load_pem_public_key(page.inner_text("#key-release pre.pem").encode())
    page.goto(f"{live_server}/researcher/exports/{rid}")
    with page.expect_download() as info:
        page.click("#download-bundle")
    archive = tmp_path / "bundle.zip"
    info.value.save_as(archive)
    zipfile.ZipFile(archive).extractall(tmp_path / "bundle")
    assert verify_bundle(tmp_path / "bundle", release_key) == []  # type: ignore[arg-type]
    released = (tmp_path / "bundle" / "files" / "dp_release.csv").read_bytes()
    assert released.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(released.decode("utf-8-sig"))))
    assert rows[0] == ["区县", "就诊人次"] and sorted(r[0] for r in rows[1:]) == sorted(DISTRICTS)
