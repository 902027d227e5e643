"""Real-name identity end to end in Debian's chromium against a real uvicorn: an unverified
researcher is told before the form and refused on submission (Wuxi Art.6); the operator
verifies her on the identities page; she then submits the same draft.

Screenshots go to test-artifacts/screenshots/; assertions are on what the pages show and
what the database holds, never on timing.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.applications.models import Application, ApplicationStatus
from sandbox.db.base import transaction
from sandbox.identity.models import PersonIdentity
from tests.control_plane.conftest import resident_id
from tests.web.conftest import screenshot, sign_in
from tests.web.test_browser_more import sign_out

pytestmark = pytest.mark.browser


def _fill_application(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("input[name=title]", "门诊费用分析")
    page.fill("textarea[name=reason]", "公共卫生研究")
    page.fill("textarea[name=scenario]", "按区县汇总的费用统计")
    page.fill("textarea[name=purpose]", "比较各区县平均费用")
    page.fill("input[name=usage_from]", "2027-01-01")
    page.fill("input[name=usage_until]", "2027-06-30")
    page.check("input[name=output_forms][value=dp_table]")
    page.fill("textarea[name=conditions_evidence]", "安全认证证书 42 号")
    for column in ("district", "cost"):
        page.check(f"input[name=columns][value='clinic_visits.{column}']")
    page.check("input[name=commitment_signed]")


def test_operator_verifies_a_researcher_who_then_submits(
    page, live_server: str, carol: dict[str, User], factory: sessionmaker[Session]
) -> None:
    # Carol is not verified: told before the form, refused on submission, draft kept.
    sign_in(page, live_server, "carol")
    page.goto(f"{live_server}/researcher/applications/new")
    assert "未实名核验" in page.inner_text("#real-name-notice")
    _fill_application(page)
    page.click("button[name=action][value=submit]")
    page.wait_for_selector(".refusal")
    screenshot(page, "researcher-application-real-name-refused")
    assert page.inner_text(".refusal .rule") == "real-name"
    assert page.inner_text(".refusal .article") == "Wuxi Art.6"
    with transaction(factory) as session:
        draft = session.scalars(select(Application)).one()
        assert draft.status == ApplicationStatus.draft
    sign_out(page)

    # The operator verifies her real name (and ID number) on the identities page.
    number = resident_id(random.Random(5))
    sign_in(page, live_server, "ops")
    page.click("header a[href='/operator/identities']")
    assert "未实名核验" in page.inner_text("#identity-carol")
    page.select_option("#verify-identity select[name=username]", "carol")
    page.fill("#verify-identity input[name=legal_name]", "柯洛")
    page.fill("#verify-identity input[name=verified_how]", "现场查验身份证")
    page.fill("#verify-identity input[name=resident_id]", number)
    page.click("#verify-identity button[type=submit]")
    page.wait_for_selector("#identity-carol:has-text('已实名核验')")
    screenshot(page, "operator-identities")
    assert "柯洛" in page.inner_text("#identity-carol") and number not in page.content()
    with transaction(factory) as session:
        assert session.get_one(PersonIdentity, carol["carol"].id).verified
    sign_out(page)

    # Carol sees it on her account page and submits the draft she kept.
    sign_in(page, live_server, "carol")
    page.click("#menu-account")
    assert page.inner_text("#real-name-status") == "已实名核验"
    page.goto(f"{live_server}/researcher/applications/{draft.id}")
    assert page.locator("#real-name-notice").count() == 0
    page.click("button[name=action][value=submit]")
    page.wait_for_selector("#deadline")
    screenshot(page, "researcher-application-submitted-after-verification")
    with transaction(factory) as session:
        assert session.get_one(Application, draft.id).status == ApplicationStatus.under_review
