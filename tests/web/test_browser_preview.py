"""Synthetic previews (Shanghai Art.18) in Debian's chromium against a real uvicorn: the
provider sets the preview budget and generates a preview on its previews page, a refusal
names its rule and article, and the public and a researcher download the labelled
preview from the dataset page.

Assertions are on what the pages show, on the downloaded files, and on the budget
ledger, the stored preview and the audit record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.db.base import transaction
from sandbox.preview.files import README_NAME
from sandbox.preview.models import PreviewBudget, SyntheticPreview
from tests.web.conftest import screenshot, sign_in
from tests.web.test_browser_more import sign_out
from tests.web.test_browser_oversight import audit_actions

pytestmark = pytest.mark.browser

SECTION = "#preview-clinic_visits"


def _generate(page, epsilon: str, rows: str) -> None:  # type: ignore[no-untyped-def]
    form = page.locator(f"{SECTION} form.make-preview")
    form.locator("input[name=epsilon]").fill(epsilon)
    form.locator("input[name=rows]").fill(rows)
    form.locator("button[type=submit]").click()


def _previews(factory: sessionmaker[Session]) -> list[SyntheticPreview]:
    with transaction(factory) as session:
        return list(session.scalars(select(SyntheticPreview).order_by(SyntheticPreview.id)))


def _spent(factory: sessionmaker[Session]) -> tuple[int, int]:
    """(ε total, ε spent) of clinic_visits' preview budget, in ledger micro-units."""
    with transaction(factory) as session:
        budget = session.scalars(
            select(PreviewBudget).where(PreviewBudget.dataset == "clinic_visits")
        ).one()
        return budget.epsilon_total, budget.epsilon_spent


def _download(page, link: str, into: Path) -> Path:  # type: ignore[no-untyped-def]
    with page.expect_download() as info:
        page.click(f"#synthetic-preview a[href$='{link}']")
    download = info.value
    path = into / download.suggested_filename
    download.save_as(str(path))
    return path


def test_the_provider_sets_a_budget_and_generates_and_others_download_it_labelled(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:  # fmt: skip
    sign_in(page, live_server, "health")
    page.click("nav a[href='/provider/previews']")
    section = page.locator(SECTION)
    assert "尚未设置预览预算" in section.inner_text() and "尚未生成合成样本" in section.inner_text()
    assert page.locator("#preview-secret_registry").count() == 0  # non-open: never previewed

    # No budget yet: generating is refused beside the dataset, with rule and article.
    _generate(page, "0.5", "200")
    page.wait_for_selector(f"{SECTION} .refusal")
    assert page.inner_text(f"{SECTION} .refusal .rule") == "preview-budget-exhausted"
    assert "Shanghai Art.18" in page.inner_text(f"{SECTION} .refusal .article")
    assert _previews(factory) == []

    page.goto(f"{live_server}/provider/previews")
    budget = section.locator("form.set-budget")
    budget.locator("input[name=epsilon]").fill("2")
    budget.locator("button[type=submit]").click()
    page.wait_for_selector(f"{SECTION} .budget-left:has-text('ε 2.0 / 2.0')")
    assert _spent(factory) == (2_000_000, 0)

    _generate(page, "0.5", "200")
    page.wait_for_selector(f"{SECTION} .preview-columns")
    assert "ε 1.5 / 2.0" in section.locator(".budget-left").inner_text()
    latest = section.locator(".latest-preview").inner_text()
    assert "200 行" in latest and "ε = 0.5" in latest
    assert section.locator(".preview-columns tbody tr").count() == 3  # every catalogue column
    screenshot(page, "provider-preview-generated")
    [made] = _previews(factory)
    assert (made.rows, made.epsilon, made.created_by) == (200, 500_000, "health")
    assert _spent(factory) == (2_000_000, 500_000)

    # More than is left: refused, nothing charged, the existing preview stays.
    _generate(page, "5", "200")
    page.wait_for_selector(f"{SECTION} .refusal")
    assert page.inner_text(f"{SECTION} .refusal .rule") == "preview-budget-exhausted"
    assert "仅剩 1.5" in page.inner_text(f"{SECTION} .refusal .message")
    screenshot(page, "provider-preview-budget-exhausted")
    assert len(_previews(factory)) == 1 and _spent(factory) == (2_000_000, 500_000)
    assert [(actor, action) for actor, action, _ in audit_actions(factory, "preview.")] == [
        ("health", "preview.budget"), ("health", "preview.charge"), ("health", "preview.release"),
    ]  # fmt: skip
    sign_out(page)

    # The public: the dataset page's preview section, and the CSV labelled synthetic.
    page.goto(f"{live_server}/datasets/clinic_visits")
    preview = page.locator("#synthetic-preview")
    assert "合成样本" in preview.locator("h2 .badge").inner_text()
    assert page.inner_text("#preview-budget-left") == "ε 1.5 / 2.0"
    screenshot(page, "public-dataset-synthetic-preview")
    path = _download(page, "preview.csv", tmp_path)
    assert path.name == "clinic_visits_v1_SYNTHETIC_PREVIEW.csv"
    comment, sample = path.read_text(encoding="utf-8-sig").split("\n", 1)
    assert comment.startswith("# 合成预览数据，非真实数据 SYNTHETIC PREVIEW, NOT REAL DATA")
    assert hashlib.sha256(sample.encode()).hexdigest() == made.sample_sha256
    rows = list(csv.DictReader(io.StringIO(sample)))
    assert len(rows) == 200 and all("SYNTHETIC_PREVIEW" in row for row in rows)

    # A researcher: the zip with its bilingual README.
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/datasets/clinic_visits")
    bundle = _download(page, "preview.zip", tmp_path)
    with zipfile.ZipFile(bundle) as z:
        assert README_NAME in z.namelist()
        assert "SYNTHETIC PREVIEW (NOT REAL DATA)" in z.read(README_NAME).decode("utf-8-sig")
