"""The authority's statistics page: each figure as a table and an inline SVG bar chart,
with the CSV download beside it (Shanghai Art.41; Wuxi Art.26)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from sandbox.clock import today
from sandbox.http.deps import CalendarDep, DbDep, OversightDep, SettingsDep
from sandbox.statistics.chart import bar_chart
from sandbox.statistics.service import compute
from sandbox.web.rendering import page_router, render

router = page_router("/authority")

#: Each figure's bars are values of one enumeration: its kind in the page's terms.
FIGURE_TERMS = {
    "datasets_by_class": "class", "datasets_by_status": "status", "datasets_by_domain": "domain",
    "catalog_reviews_by_status": "review", "applications_by_status": "app",
    "agreements_by_status": "agr", "exports_by_status": "export",
    "violations_by_status": "violation", "violations_by_kind": "violation_kind",
    "quality_tasks_by_status": "quality",
}  # fmt: skip


@router.get("/statistics")
def statistics_page(
    request: Request, db: DbDep, user: OversightDep, settings: SettingsDep, calendar: CalendarDep
) -> HTMLResponse:
    with db.tx() as session:
        report = compute(
            session=session,
            actor=user,
            calendar=calendar,
            today=today(),
            timezone=settings.timezone,
        )
    charts = [(figure, bar_chart(figure.counts)) for figure in report.figures]
    return render(
        request,
        "authority/statistics.html",
        {"report": report, "charts": charts, "kinds": FIGURE_TERMS},
    )
