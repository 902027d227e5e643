"""Oversight and registers in Debian's chromium against a real uvicorn: violations recorded,
measured and published on the public register; a tip-off and a data request with their
receipts; the catalogue review queue; notifications; the register of organisations.

Each flow asserts on what the page shows and on what the database and the audit record
hold; screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import import_agreement
from sandbox.applications.service import refuse_application
from sandbox.audit.models import AuditEvent
from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.catalog.models import CatalogReview, Dataset
from sandbox.catalog.service import publish_dataset
from sandbox.clock import today
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.identity.models import Membership, Organisation
from sandbox.notifications.models import Notification
from sandbox.notifications.service import make_notifications
from sandbox.oversight.models import Demand, TipOff, Violation
from sandbox.settings import Settings
from tests.control_plane.helpers import agreement
from tests.web.conftest import screenshot, sign_in, submit_for_review
from tests.web.test_browser_more import sign_out

pytestmark = pytest.mark.browser

EVIDENCE = "查询结果与外部名单关联"


def audit_actions(factory: sessionmaker[Session], prefix: str) -> list[tuple[str, str, str]]:
    """(actor, action, object) of every audit event whose action starts with ``prefix``."""
    with transaction(factory) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq)
        )
        return [(e.actor, e.action, e.object) for e in events]


@pytest.fixture
def signed(factory: sessionmaker[Session], platform: dict[str, User]) -> dict[str, User]:
    """The published catalogue and alice's agreement AGR-T-0001 with the health provider."""
    with transaction(factory) as session:
        import_agreement(session=session, actor=platform["health"], agreement=agreement())
    return platform


# --- Violations and the public register --------------------------------------------------


def _record_violation(page, evidence: str) -> None:  # type: ignore[no-untyped-def]
    form = page.locator("#record-violation")
    page.click("details:has(#record-violation) summary")
    form.locator("select[name=kind]").select_option("beyond_scenario")
    form.locator("input[name=agreement_id]").fill("AGR-T-0001")
    form.locator("input[name=researcher]").fill("alice")
    form.locator("textarea[name=evidence]").fill(evidence)
    form.locator("textarea[name=references]").fill("audit:4\nquery:9")
    form.locator("button[type=submit]").click()


def test_a_violation_is_recorded_measured_and_published_on_the_register(
    page, live_server: str, signed: dict[str, User], factory: sessionmaker[Session]
) -> None:
    page.goto(f"{live_server}/violations")
    assert "暂无公示" in page.inner_text("#violation-register")

    # The authority records; without evidence it is refused with the rule and the article.
    sign_in(page, live_server, "auth")
    page.goto(f"{live_server}/oversight")
    _record_violation(page, " ")
    page.wait_for_selector(".refusal")
    assert page.inner_text(".refusal .rule") == "violation-evidence"
    assert page.inner_text(".refusal .article") == "Shanghai Art.28"
    with transaction(factory) as session:
        assert session.scalars(select(Violation)).first() is None
    page.goto(f"{live_server}/oversight")
    _record_violation(page, EVIDENCE)
    page.wait_for_url("**/oversight#violations")
    row = page.locator("#violation-list tbody tr").first
    assert "AGR-T-0001" in row.inner_text() and "Shanghai Art.28(4)" in row.inner_text()
    assert "已记录" in row.inner_text()
    assert row.locator("form[action$='/measure']").count() == 0  # the authority takes no measure
    screenshot(page, "oversight-violation-recorded")
    with transaction(factory) as session:
        v = session.scalars(select(Violation)).one()
        assert (v.researcher, v.organisation, v.recorded_by) == ("alice", "江南大学", "auth")
        assert v.references == ["audit:4", "query:9"] and v.measure == ""
    assert audit_actions(factory, "violation.") == [
        ("auth", "violation.record", "agreement:AGR-T-0001")
    ]
    sign_out(page)

    # The operator closes access with a rectification deadline, then publishes.
    sign_in(page, live_server, "ops")
    page.goto(f"{live_server}/oversight")
    measure = page.locator(f"form[action='/oversight/violations/{v.id}/measure']")
    measure.locator("select[name=measure]").select_option("close")
    measure.locator("input[name=reason]").fill("超出批准的应用场景")
    measure.locator("input[name=rectification_days]").fill("5")
    measure.locator("button[type=submit]").click()
    page.wait_for_selector(f"form[action='/oversight/violations/{v.id}/publish']")
    row = page.locator("#violation-list tbody tr").first
    assert "整改中" in row.inner_text() and "关闭数据获取权限" in row.inner_text()
    with transaction(factory) as session:
        assert session.get_one(AgreementRecord, "AGR-T-0001").status == AgreementStatus.suspended
    page.click(f"form[action='/oversight/violations/{v.id}/publish'] button")
    page.wait_for_url("**/oversight#violations")
    assert page.locator(f"form[action='/oversight/violations/{v.id}/publish']").count() == 0
    published = page.locator("#violation-list tbody tr").first.inner_text()
    assert f"公示 {today().isoformat()}" in published
    screenshot(page, "oversight-violation-published")
    sign_out(page)

    # The public register: organisation, measure, date and article; never evidence or names.
    page.goto(f"{live_server}/violations")
    register = page.inner_text("#violation-register")
    screenshot(page, "public-violation-register")
    assert "江南大学" in register and "关闭数据获取权限" in register
    assert "Shanghai Art.28(4)" in register and today().isoformat() in register
    assert EVIDENCE not in page.content() and "alice" not in register
    with transaction(factory) as session:
        v = session.scalars(select(Violation)).one()
        assert (v.measure, v.measured_by, v.published_by) == ("close", "ops", "ops")
        assert v.published_on == today() and v.rectification_deadline is not None
    assert [a for _, a, _ in audit_actions(factory, "violation.")] == [
        "violation.record", "violation.rectifying", "violation.publish",
    ]  # fmt: skip


# --- Tip-offs and data requests with receipts --------------------------------------------


def _read_receipt(page, base: str, path: str, code: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}{path}")
    page.fill("#receipt-form input[name=receipt]", code)
    page.click("#receipt-form button[type=submit]")
    page.wait_for_selector("#case-status, .refusal")


def test_a_security_report_gets_a_receipt_that_reads_the_providers_answer(
    page, live_server: str, signed: dict[str, User], factory: sessionmaker[Session]
) -> None:
    page.goto(f"{live_server}/report")
    page.select_option("#report-form select[name=kind]", "security_problem")
    page.fill("#report-form textarea[name=description]", "结果表在网上公开传播")
    page.fill("#report-form input[name=dataset]", "clinic_visits")
    page.fill("#report-form input[name=contact]", "li@example.invalid")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#receipt-code")
    code = page.inner_text("#receipt-code")
    assert page.inner_text("#case-status") == "received" and len(code) >= 12
    screenshot(page, "public-report-receipt")
    with transaction(factory) as session:
        tip = session.scalars(select(TipOff)).one()
        assert (tip.kind, tip.provider) == ("security_problem", "city-health-commission")
        assert code not in tip.receipt_hash  # only the hash is kept
    _read_receipt(page, live_server, "/report", code[:-1] + ("A" if code[-1] != "A" else "B"))
    assert page.inner_text(".refusal .rule") == "receipt"  # a wrong code reveals nothing

    # The dataset's provider answers on its desk.
    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/oversight")
    row = page.locator("#tipoff-list tbody tr", has_text="结果表在网上公开传播")
    row.locator("select[name=to]").select_option("answered")
    row.locator("input[name=answer]").fill("已核查：仅为汇总数据")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/oversight#tipoffs")
    assert "answered" in page.locator("#tipoff-list tbody tr").first.inner_text()
    sign_out(page)

    _read_receipt(page, live_server, "/report", code)
    screenshot(page, "public-report-answered")
    assert page.inner_text("#case-status") == "answered"
    assert page.inner_text("#case-answer") == "已核查：仅为汇总数据"
    with transaction(factory) as session:
        tip = session.scalars(select(TipOff)).one()
        assert (tip.status, tip.handled_by) == ("answered", "health")
    assert [(actor, action) for actor, action, _ in audit_actions(factory, "tipoff.")] == [
        ("public:anonymous", "tipoff.submit"), ("health", "tipoff.answered"),
    ]  # fmt: skip


def test_a_data_request_is_fulfilled_by_the_authority_and_read_with_the_receipt(
    page, live_server: str, signed: dict[str, User], factory: sessionmaker[Session]
) -> None:
    page.goto(f"{live_server}/demand")
    page.fill("#demand-form input[name=title]", "各区县门诊费用")
    page.fill("#demand-form textarea[name=description]", "研究门诊费用的区域差异")
    page.fill("#demand-form input[name=domain]", "health")
    page.fill("#demand-form input[name=requester]", "王五")
    page.fill("#demand-form input[name=contact]", "wang@example.invalid")
    page.click("#demand-form button[type=submit]")
    page.wait_for_selector("#receipt-code")
    code = page.inner_text("#receipt-code")
    assert page.inner_text("#case-status") == "received"

    sign_in(page, live_server, "auth")
    page.goto(f"{live_server}/oversight")
    row = page.locator("#demand-list tbody tr", has_text="各区县门诊费用")
    # Fulfilled needs the published dataset named: refused with the rule and the article.
    row.locator("select[name=to]").select_option("fulfilled")
    row.locator("input[name=answer]").fill("已开放")
    row.locator("button[type=submit]").click()
    page.wait_for_selector(".refusal")
    assert page.inner_text(".refusal .rule") == "demand-dataset"
    assert "Shanghai Art.10" in page.inner_text(".refusal .article")
    page.goto(f"{live_server}/oversight")
    row = page.locator("#demand-list tbody tr", has_text="各区县门诊费用")
    row.locator("select[name=to]").select_option("fulfilled")
    row.locator("input[name=answer]").fill("已作为有条件开放数据提供")
    row.locator("input[name=dataset]").fill("clinic_visits")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/oversight#demands")
    assert "fulfilled · clinic_visits" in page.locator("#demand-list tbody tr").first.inner_text()
    screenshot(page, "oversight-demand-fulfilled")
    sign_out(page)

    _read_receipt(page, live_server, "/demand", code)
    assert page.inner_text("#case-status") == "fulfilled"
    assert page.inner_text("#case-answer") == "已作为有条件开放数据提供"
    with transaction(factory) as session:
        d = session.scalars(select(Demand)).one()
        dataset = session.scalars(select(Dataset).where(Dataset.name == "clinic_visits")).one()
        assert (d.status, d.handled_by, d.dataset_id) == ("fulfilled", "auth", dataset.id)
    assert [(actor, action) for actor, action, _ in audit_actions(factory, "demand.")] == [
        ("public:王五", "demand.submit"), ("auth", "demand.fulfilled"),
    ]  # fmt: skip


# --- The catalogue review queue -----------------------------------------------------------


def _new_entry(catalog_dir: Path) -> Path:
    """A new conditional entry over the test catalogue's clinic data."""
    doc = yaml.safe_load((catalog_dir / "clinic_visits.yaml").read_text(encoding="utf-8"))
    doc.update(name="clinic_costs", title="门诊费用", conditions="具备等保三级的科研机构")
    path = catalog_dir / "clinic_costs.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_a_new_entry_is_approved_in_the_review_queue_and_then_appears_publicly(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, catalog_dir: Path,
) -> None:  # fmt: skip
    entry = load_catalog_entry(_new_entry(catalog_dir))
    with transaction(factory) as session:
        review_id = publish_dataset(
            session=session, actor=platform["health"], entry=entry,
            data_path=entry.source_path(), settings=settings,
        ).review.id  # fmt: skip
    page.goto(f"{live_server}/catalogue")
    assert "clinic_costs" not in page.inner_text("main")
    assert page.goto(f"{live_server}/datasets/clinic_costs").status == 404

    sign_in(page, live_server, "auth")
    page.click("nav a[href='/authority/catalog-reviews']")
    page.click(f"#catalog-review-{review_id} a")
    assert "具备等保三级的科研机构" in page.inner_text("#entry-changes")
    page.fill("#decide textarea[name=legality_review]", " ")
    page.click("#decide button[value=approve]")
    page.wait_for_selector(".refusal")
    assert page.inner_text(".refusal .rule") == "catalog-review-legality"
    assert "Wuxi Art.12" in page.inner_text(".refusal .article")
    with transaction(factory) as session:
        assert session.get_one(CatalogReview, review_id).status == "under_review"
    page.goto(f"{live_server}/authority/catalog-reviews/{review_id}")
    page.fill("#decide textarea[name=legality_review]", "开放类型与条件合法，予以公布。")
    page.click("#decide button[value=approve]")
    page.wait_for_selector("#legality-review")
    screenshot(page, "authority-new-entry-approved")
    assert page.inner_text("#review-status") == "已公布"
    assert page.locator("#decide").count() == 0
    page.click("nav a[href='/authority/catalog-reviews']")
    assert "clinic_costs" in page.inner_text("#catalog-review-decided")
    assert "clinic_costs" not in page.inner_text("#catalog-review-queue")
    sign_out(page)

    page.goto(f"{live_server}/catalogue")
    page.click("#datasets a[href='/datasets/clinic_costs']")
    assert "具备等保三级的科研机构" in page.inner_text("dd.conditions")
    with transaction(factory) as session:
        review = session.get_one(CatalogReview, review_id)
        assert (review.status, review.reviewed_by) == ("published", "auth")
        dataset = session.scalars(select(Dataset).where(Dataset.name == "clinic_costs")).one()
        assert dataset.published
    assert ("auth", "catalog_review.published") in [
        (actor, action) for actor, action, _ in audit_actions(factory, "catalog_review.")
    ]


# --- Notifications ------------------------------------------------------------------------


def test_reading_a_notice_lowers_the_unread_count_in_the_menu(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    # Two refused applications; the notification job tells alice of each decision.
    for title in ("第一份申请", "第二份申请"):
        app_id = submit_for_review(factory, platform, title=title)
        with transaction(factory) as session:
            refuse_application(
                session=session, actor=platform["health"], application_id=app_id,
                reason=f"{title}超出开放范围", legal_basis="Wuxi Art.15(3)",
            )  # fmt: skip
    with transaction(factory) as session:
        make_notifications(session, today())
        mine = session.scalars(select(Notification).where(Notification.recipient == "alice")).all()
        assert len(mine) == 2 and all(n.read_at is None for n in mine)

    sign_in(page, live_server, "alice")
    assert page.inner_text("#unread-count") == "2"
    page.click("#menu-notifications")
    assert page.locator("#notifications tbody tr.unread").count() == 2
    screenshot(page, "notifications-unread")
    first = page.locator("#notifications tbody tr.unread").first
    read_id = int((first.get_attribute("id") or "").removeprefix("notification-"))
    first.locator("button[type=submit]").click()
    page.wait_for_selector(f"#notification-{read_id}.read")
    assert page.inner_text("#unread-count") == "1"
    assert page.locator("#notifications tbody tr.unread").count() == 1
    page.locator("#notifications tbody tr.unread button[type=submit]").click()
    page.wait_for_selector("#notifications tbody tr.unread", state="detached")
    assert page.locator("#unread-count").count() == 0  # no badge once everything is read
    screenshot(page, "notifications-read")
    with transaction(factory) as session:
        assert all(
            n.read_at is not None
            for n in session.scalars(select(Notification).where(Notification.recipient == "alice"))
        )
    assert [a for a, _, _ in audit_actions(factory, "notification.read")] == ["alice", "alice"]


# --- The register of organisations --------------------------------------------------------

UNIVERSITY = "91320200MA1N2P3Q4"
UNIVERSITY_CODE = UNIVERSITY + credit_code_check_char(UNIVERSITY)
BAD_CODE = UNIVERSITY + ("0" if UNIVERSITY_CODE[-1] != "0" else "1")


def _add_organisation(page, code: str) -> None:  # type: ignore[no-untyped-def]
    form = page.locator("#add-organisation form")
    form.locator("input[name=credit_code]").fill(code)
    form.locator("input[name=name]").fill("江南大学")
    form.locator("input[name=legal_name]").fill("江南大学")
    form.locator("input[name=verified_how]").fill("国家企业信用信息公示系统核验")
    form.locator("button[type=submit]").click()


def test_the_operator_registers_an_organisation_by_credit_code_and_adds_a_member(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(page, live_server, "ops")
    page.click("nav a[href='/operator/organisations']")
    _add_organisation(page, BAD_CODE)  # a wrong check character
    page.wait_for_selector(".refusal")
    assert page.inner_text(".refusal .rule") == "credit-code"
    assert page.inner_text(".refusal .article") == "Rizhao Art.10"
    with transaction(factory) as session:
        assert session.scalars(select(Organisation)).first() is None
    page.goto(f"{live_server}/operator/organisations")
    _add_organisation(page, UNIVERSITY_CODE)
    page.wait_for_selector(f"#organisations code:has-text('{UNIVERSITY_CODE}')")
    member = page.locator("#add-member form")
    member.locator("input[name=credit_code]").fill(UNIVERSITY_CODE)
    member.locator("input[name=username]").fill("alice")
    member.locator("select[name=role]").select_option("representative")
    member.locator("button[type=submit]").click()
    page.wait_for_selector("#organisations td:has-text('alice (代表)')")
    screenshot(page, "operator-organisations")
    row = page.locator("#organisations tbody tr", has_text=UNIVERSITY_CODE)
    assert "江南大学" in row.inner_text() and "国家企业信用信息公示系统核验" in row.inner_text()
    with transaction(factory) as session:
        org = session.scalars(select(Organisation)).one()
        assert (org.credit_code, org.verified_by) == (UNIVERSITY_CODE, "ops")
        m = session.scalars(select(Membership)).one()
        assert (m.organisation_id, m.user_id) == (org.id, platform["alice"].id)
        assert m.role == "representative"
    assert [a for _, a, _ in audit_actions(factory, "organisation.")] == [
        "organisation.create", "organisation.add_member",
    ]  # fmt: skip
