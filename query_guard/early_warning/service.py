"""Raise, list and acknowledge early-warning alerts (R12; Shanghai Art.37, Rizhao Art.21).

Every alert raised and every acknowledgement is an audit event. Providers see
the alerts on their own agreements; the operator and the authority see all.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from query_guard.early_warning.detect import DETECTORS, Observation
from query_guard.early_warning.models import Alert, AlertStatus
from query_guard.service.models import QueryLog
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.agreements.models import AgreementRecord
from sandbox.audit.record import record
from sandbox.contracts.agreement import Agreement
from sandbox.db.base import utcnow
from sandbox.errors import Conflict, NotFound

ARTICLE = "Shanghai Art.37; Rizhao Art.21"


def observe(
    session: Session, entry: QueryLog, agreement: Agreement, *, timezone: str
) -> list[Alert]:
    """Run every detector on the query just logged; store and record what they raise."""
    now = utcnow()
    local_day = now.astimezone(ZoneInfo(timezone)).date()
    day_start = datetime.combine(local_day, time(0), ZoneInfo(timezone)).astimezone(UTC)
    obs = Observation(entry, agreement, now, day_start, local_day.isoformat())
    raised = []
    for kind, detector in DETECTORS:
        details = detector(session, obs)
        if details is None:
            continue
        alert = Alert(
            agreement_id=entry.agreement_id,
            researcher=entry.researcher,
            kind=kind,
            details=details,
            created_at=now,
        )
        session.add(alert)
        session.flush()
        record(
            session,
            actor="platform",
            action="alert.raise",
            object=f"agreement:{entry.agreement_id}",
            details={
                "alert_id": alert.id,
                "kind": kind.value,
                "researcher": entry.researcher,
                "article": ARTICLE,
                **details,
            },
        )
        raised.append(alert)
    return raised


def _provider_of(session: Session, agreement_id: str) -> str | None:
    return session.scalar(
        select(AgreementRecord.provider).where(AgreementRecord.id == agreement_id)
    )


def list_alerts(session: Session, actor: User, *, status: AlertStatus | None = None) -> list[Alert]:
    """Alerts the actor may see, newest first."""
    require_role(actor, Role.provider, Role.operator, Role.authority)
    query = select(Alert).order_by(Alert.id.desc())
    if status is not None:
        query = query.where(Alert.status == status)
    if actor.role == Role.provider:
        own = select(AgreementRecord.id).where(AgreementRecord.provider == actor.organisation)
        query = query.where(Alert.agreement_id.in_(own))
    return list(session.scalars(query))


def acknowledge(session: Session, actor: User, alert_id: int) -> Alert:
    """The provider of the agreement, or the operator, says the alert has been looked at."""
    require_role(actor, Role.provider, Role.operator)
    alert = session.get(Alert, alert_id)
    if alert is None or (
        actor.role == Role.provider
        and _provider_of(session, alert.agreement_id) != actor.organisation
    ):
        raise NotFound(f"alert {alert_id} does not exist", rule="alert-unknown")
    if alert.status != AlertStatus.open:
        raise Conflict(f"alert {alert_id} is already acknowledged", rule="alert-acknowledged")
    alert.status = AlertStatus.acknowledged
    alert.acknowledged_by = actor.username
    alert.acknowledged_at = utcnow()
    record(
        session,
        actor=actor.username,
        action="alert.acknowledge",
        object=f"agreement:{alert.agreement_id}",
        details={"alert_id": alert.id, "kind": alert.kind},
    )
    return alert
