"""The operator's backups page: the backups kept in ``backup_dir`` and a "back up now" button.

The same functions as ``/api/operator/backups`` (:mod:`sandbox.backup.stored`). After a
backup the page shows what it holds, counted while it was made; a refusal (no public key
configured) is shown above the list with its rule and article.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from sandbox.accounts.models import User
from sandbox.backup.service import BackupResult
from sandbox.backup.stored import backup_now, list_backups
from sandbox.errors import SandboxError
from sandbox.http.deps import DbDep, OperatorDep, OversightDep, SettingsDep
from sandbox.http.http_errors import http_status
from sandbox.settings import Settings
from sandbox.web.rendering import page_router, render

router = page_router("/operator")


def _page(
    request: Request,
    settings: Settings,
    user: User,
    made: BackupResult | None = None,
    error: SandboxError | None = None,
) -> HTMLResponse:
    context = {
        "backups": list_backups(settings, user),
        "made": made,
        "error": error,
        "recipient_configured": bool(settings.backup_recipient.strip()),
    }
    return render(request, "operator/backups.html", context, http_status(error) if error else 200)


@router.get("/backups")
def backups(request: Request, settings: SettingsDep, user: OversightDep) -> HTMLResponse:
    return _page(request, settings, user)


@router.post("/backups")
def back_up_now(
    request: Request, db: DbDep, settings: SettingsDep, user: OperatorDep
) -> HTMLResponse:
    """Make a backup and show it; the page is rendered, not redirected to, because the
    counts exist only now (afterwards they are inside the encryption)."""
    try:
        made = backup_now(factory=db.factory, settings=settings, actor=user)
    except SandboxError as exc:
        return _page(request, settings, user, error=exc)
    return _page(request, settings, user, made=made)
