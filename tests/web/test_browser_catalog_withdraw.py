"""In Debian's chromium against a real uvicorn: the provider withdraws a catalogue proposal
still under review from its dataset list, with a reason (Shanghai Art.12), and the data
proposed with it is deleted. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.audit.models import AuditEvent
from sandbox.catalog.models import CatalogReview
from sandbox.catalog.service import publish_dataset
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.web.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

REASON = "费用列单位有误，更正后重新提交"


def test_the_provider_withdraws_a_proposal_from_its_dataset_list(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, catalog_dir: Path,
) -> None:  # fmt: skip
    doc = yaml.safe_load((catalog_dir / "clinic_visits.yaml").read_text(encoding="utf-8"))
    doc.update(name="clinic_costs", title="门诊费用")
    path = catalog_dir / "clinic_costs.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        pub = publish_dataset(
            session=session, actor=platform["health"], entry=entry,
            data_path=entry.source_path(), settings=settings,
        )  # fmt: skip
        review_id, proposed = pub.review.id, Path(pub.version.path)
    assert proposed.is_file()

    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/provider")
    row = page.locator("#dataset-clinic_costs")
    assert "审查中" in row.inner_text()
    row.locator(f"#withdraw-review-{review_id} summary").click()
    row.locator("input[name=reason]").fill(REASON)
    row.locator(f"#withdraw-review-{review_id} button[type=submit]").click()
    page.wait_for_url(lambda url: url.endswith("/provider#datasets"))
    screenshot(page, "provider-catalogue-proposal-withdrawn")
    text = page.locator("#dataset-clinic_costs").inner_text()
    assert "已撤回" in text and REASON in text
    assert page.locator(f"#withdraw-review-{review_id}").count() == 0

    assert not proposed.exists()
    with transaction(factory) as session:
        assert session.get_one(CatalogReview, review_id).status == "withdrawn"
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "catalog_review.withdrawn")
        ).one()
    assert event.actor == "health" and json.loads(event.details)["reason"] == REASON
