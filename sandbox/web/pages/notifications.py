"""A signed-in user's own notices (unread first) and marking one read.

The notices are made by the notification job (``sandbox.notifications``);
this page only lists the signed-in user's own and marks them read, through
the same service functions as ``/api/notifications``.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.http.deps import DbDep, UserDep
from sandbox.notifications.service import list_notifications, mark_read
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/notifications")


@router.get("")
def index(request: Request, db: DbDep, user: UserDep) -> HTMLResponse:
    with db.tx() as session:
        notices = list_notifications(session, user)
    # Unread first; within each group the service's order (newest first) is kept.
    notices.sort(key=lambda n: n.read_at is not None)
    return render(request, "notifications.html", {"notices": notices})


@router.post("/{notification_id}/read")
def read(notification_id: int, db: DbDep, user: UserDep) -> RedirectResponse:
    with db.tx() as session:
        mark_read(session=session, actor=user, notification_id=notification_id)
    return see_other("/notifications")
