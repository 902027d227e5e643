"""A user's notices (``GET /api/notifications``, mark read), and the job for the operator."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from sandbox.clock import today
from sandbox.http.deps import DbDep, OperatorDep, SettingsDep, UserDep
from sandbox.notifications.models import Notification
from sandbox.notifications.service import list_notifications, mark_read
from sandbox.notifications.service import run as run_job

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


def notification_view(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "object": n.object,
        "due_on": n.due_on.isoformat() if n.due_on else None,
        "subject": n.subject,
        "body": n.body,
        "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
        "emailed": n.emailed_at is not None,
    }


@router.get("")
def index(db: DbDep, user: UserDep, unread: bool = False) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [notification_view(n) for n in list_notifications(session, user, unread)]


@router.post("/{notification_id}/read")
def read(notification_id: int, db: DbDep, user: UserDep) -> dict[str, Any]:
    with db.tx() as session:
        return notification_view(
            mark_read(session=session, actor=user, notification_id=notification_id)
        )


@router.post("/run")
def run(db: DbDep, user: OperatorDep, settings: SettingsDep) -> dict[str, Any]:
    """Run the job now (it also runs from ``sandbox notify run``)."""
    return asdict(run_job(db.factory, settings, today()))
