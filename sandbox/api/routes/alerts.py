"""``/api/alerts``: early warnings for providers (their own agreements), the operator and
the authority (R12; Shanghai Art.37, Rizhao Art.21)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from query_guard.early_warning.models import Alert, AlertStatus
from query_guard.early_warning.service import acknowledge, list_alerts
from sandbox.http.deps import DbDep, UserDep

router = APIRouter(prefix="/api/alerts", tags=["early warning"])


def _out(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "agreement_id": alert.agreement_id,
        "researcher": alert.researcher,
        "kind": alert.kind,
        "details": alert.details,
        "status": alert.status,
        "created_at": alert.created_at.isoformat(),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }


@router.get("")
def alerts(db: DbDep, user: UserDep, status: AlertStatus | None = None) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [_out(a) for a in list_alerts(session, user, status=status)]


@router.post("/{alert_id}/acknowledge")
def acknowledge_alert(alert_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        return _out(acknowledge(session, user, alert_id))
