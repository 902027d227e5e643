"""Data-quality tasks and the authority's statistics in Debian's chromium against a real
uvicorn: a task raised on the oversight desk, answered and closed by the provider only
after a new version; an old task flagged overdue; the statistics page's figures and CSV
agreeing with the platform's state.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.catalog.service import publish_dataset
from sandbox.clock import today
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.oversight.models import QualityTask
from sandbox.oversight.quality import raise_task
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar
from tests.web.conftest import screenshot, sign_in
from tests.web.test_browser_more import sign_out
from tests.web.test_browser_oversight import audit_actions

pytestmark = pytest.mark.browser

PROBLEM = "区县代码与行政区划不一致"


def _task(factory: sessionmaker[Session]) -> QualityTask:
    with transaction(factory) as session:
        task = session.scalars(select(QualityTask).where(QualityTask.description == PROBLEM))
        return task.one()


def _move(page, task_id: int, to: str, answer: str) -> None:  # type: ignore[no-untyped-def]
    form = page.locator(f"form[action='/oversight/quality-tasks/{task_id}']")
    form.locator("select[name=to]").select_option(to)
    form.locator("input[name=answer]").fill(answer)
    form.locator("button[type=submit]").click()


def test_a_quality_task_is_raised_answered_and_closed_only_after_a_new_version(
    page,
    live_server: str,
    platform: dict[str, User],
    factory: sessionmaker[Session],
    settings: Settings,
    catalog_dir: Path,
) -> None:
    with transaction(factory) as session:  # raised long ago, never answered: overdue now
        raise_task(
            session=session,
            actor=platform["auth"],
            dataset="clinic_visits",
            description="旧任务",
            today=today() - timedelta(days=30),
            calendar=WorkCalendar(),
        )

    sign_in(page, live_server, "auth")
    page.goto(f"{live_server}/oversight")
    page.click("details:has(#raise-task) summary")
    form = page.locator("#raise-task")
    form.locator("input[name=dataset]").fill("clinic_visits")
    form.locator("textarea[name=description]").fill(PROBLEM)
    form.locator("input[name=require_new_version]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/oversight#quality-tasks")
    task = _task(factory)
    rows = page.locator("#quality-task-list tbody tr")
    fresh = rows.filter(has_text=PROBLEM)
    assert task.due_on.isoformat() in fresh.inner_text() and "open" in fresh.inner_text()
    assert task.due_on == WorkCalendar().add_working_days(today(), 10)
    assert fresh.locator(".overdue-flag").count() == 0
    assert rows.filter(has_text="旧任务").locator(".overdue-flag").count() == 1
    assert fresh.locator("form").count() == 0  # the authority raises; the provider answers
    screenshot(page, "oversight-quality-task-raised")
    sign_out(page)

    sign_in(page, live_server, "market")  # another provider sees none of it
    page.goto(f"{live_server}/oversight")
    assert PROBLEM not in page.inner_text("#quality-task-list")
    sign_out(page)

    sign_in(page, live_server, "health")
    page.goto(f"{live_server}/oversight")
    _move(page, task.id, "answered", "下月发布修正版本")
    page.wait_for_url("**/oversight#quality-tasks")
    assert (
        "下月发布修正版本" in page.locator("#quality-task-list tr", has_text=PROBLEM).inner_text()
    )
    _move(page, task.id, "closed", "已修正")
    page.wait_for_selector(".refusal")
    assert page.inner_text(".refusal .rule") == "quality-task-new-version"
    assert page.inner_text(".refusal .article") == "Wuxi Art.13"
    assert _task(factory).status == "answered"

    entry = load_catalog_entry(catalog_dir / "clinic_visits.yaml")
    with transaction(factory) as session:  # the rectified data, under the same entry
        publish_dataset(
            session=session,
            actor=platform["health"],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
        )
    page.goto(f"{live_server}/oversight")
    _move(page, task.id, "closed", "已修正")
    page.wait_for_url("**/oversight#quality-tasks")
    row = page.locator("#quality-task-list tr", has_text=PROBLEM)
    assert "closed" in row.inner_text() and row.locator("form").count() == 0
    screenshot(page, "oversight-quality-task-closed")
    closed = _task(factory)
    assert (closed.status, closed.closed_version) == ("closed", closed.version_at_raise + 1)
    assert [a for _, a, _ in audit_actions(factory, "quality_task.")] == [
        "quality_task.raise", "quality_task.raise", "quality_task.answered", "quality_task.closed",
    ]  # fmt: skip


def test_the_statistics_page_draws_the_figures_and_offers_the_same_csv(
    page, live_server: str, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(page, live_server, "auth")
    page.goto(f"{live_server}/authority/statistics")
    for drawn_figure in ("datasets_by_class", "datasets_by_domain", "catalog_reviews_by_status"):
        assert page.locator(f"#figure-{drawn_figure} svg").count() == 1
    assert page.locator("#figure-violations_by_kind svg").count() == 0  # none recorded
    assert "暂无" in page.inner_text("#figure-violations_by_kind")
    bars = page.locator("#figure-datasets_by_class g.bar title")
    drawn = {bars.nth(i).text_content() for i in range(bars.count())}
    # The test catalogue: one conditional and one non-open dataset, both approved; the bars
    # are named in the page's language.
    assert drawn == {"有条件开放: 1", "非开放: 1"}
    screenshot(page, "authority-statistics")

    with page.expect_download() as download:
        page.click("#statistics-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = {(r["figure"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(text))}
    assert rows[("datasets_by_class", "conditional")] == "1"
    assert rows[("datasets_by_class", "non_open")] == "1"
    assert rows[("catalog_reviews_by_status", "published")] == "2"
    sign_out(page)

    sign_in(page, live_server, "alice")  # researchers do not see the authority's figures
    assert page.goto(f"{live_server}/authority/statistics").status == 403
