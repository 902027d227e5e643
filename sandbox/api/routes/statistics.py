"""``GET /api/statistics`` (JSON) and ``GET /api/statistics.csv`` for the authority and operator."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from sandbox.clock import today
from sandbox.http.deps import CalendarDep, DbDep, OversightDep, SettingsDep
from sandbox.statistics.service import Statistics, as_csv, compute

router = APIRouter(prefix="/api", tags=["statistics"])


def _report(
    db: DbDep, user: OversightDep, settings: SettingsDep, calendar: CalendarDep
) -> Statistics:
    with db.tx() as session:
        return compute(
            session=session,
            actor=user,
            calendar=calendar,
            today=today(),
            timezone=settings.timezone,
        )


@router.get("/statistics")
def statistics(
    db: DbDep, user: OversightDep, settings: SettingsDep, calendar: CalendarDep
) -> dict[str, Any]:
    return _report(db, user, settings, calendar).to_dict()


@router.get("/statistics.csv")
def statistics_csv(
    db: DbDep, user: OversightDep, settings: SettingsDep, calendar: CalendarDep
) -> Response:
    return Response(
        as_csv(_report(db, user, settings, calendar)).encode("utf-8-sig"),  # BOM: Excel reads UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
    )
