"""The operator's pages: workspaces per agreement, provisioning, suspension with a
rectification period, revocation, and the daily lifecycle job (R9, R16).

Operators run the platform without reading the data: nothing here shows rows.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from query_guard.early_warning.service import list_alerts
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status, list_agreements
from sandbox.clock import today
from sandbox.duties.run import agreement_lifecycle
from sandbox.http.deps import DbDep, OperatorDep, SettingsDep
from sandbox.input_limits import Days, LongText
from sandbox.provisioning.runtime import (
    WorkspaceRuntimeUnavailable,
    enforce_agreement_status,
    resource_use,
)
from sandbox.provisioning.service import list_workspaces, provision
from sandbox.settings import Settings
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/operator")


def _resources(settings: Settings, workspaces: dict) -> dict[str, object]:
    """Each provisioned workspace's running containers and their use (engine statistics)."""
    out: dict[str, object] = {}
    for agreement_id, ws in workspaces.items():
        if ws.status != "provisioned":
            continue
        try:
            out[agreement_id] = resource_use(settings, agreement_id)
        except WorkspaceRuntimeUnavailable as exc:
            out[agreement_id] = str(exc)
    return out


def _home(
    request: Request,
    db: DbDep,
    user: OperatorDep,
    settings: Settings,
    ran: dict | None = None,
) -> HTMLResponse:
    with db.tx() as session:
        workspaces = {w.agreement_id: w for w in list_workspaces(session, user)}
        context = {
            "agreements": list_agreements(session, user),
            "workspaces": workspaces,
            "alerts": list_alerts(session, user),
            "ran": ran,
        }
    context["resources"] = _resources(settings, workspaces)
    return render(request, "operator/home.html", context)


@router.get("")
def home(request: Request, db: DbDep, user: OperatorDep, settings: SettingsDep) -> HTMLResponse:
    return _home(request, db, user, settings)


@router.post("/agreements/{agreement_id}/provision")
def provision_workspace(
    agreement_id: str, db: DbDep, user: OperatorDep, settings: SettingsDep
) -> RedirectResponse:
    """Build the agreement's database; only active agreements are provisioned."""
    with db.tx() as session:
        provision(session=session, settings=settings, actor=user, agreement_id=agreement_id)
    return see_other("/operator")


@router.post("/agreements/{agreement_id}/status")
def move(
    agreement_id: str,
    db: DbDep,
    user: OperatorDep,
    settings: SettingsDep,
    action: Annotated[AgreementAction, Form()],
    reason: Annotated[LongText, Form()] = "",
    rectification_days: Annotated[Days | None, Form()] = None,
) -> RedirectResponse:
    """Suspend (with days to rectify), reinstate, or revoke (terminate) an agreement.

    Any move away from active revokes the workspace's tokens at once (Shanghai Art.26, 36).
    """
    with db.tx() as session:
        change_status(
            session=session, actor=user, agreement_id=agreement_id, action=action, reason=reason,
            rectification_days=rectification_days, today=today(),
        )  # fmt: skip
    # Committed: now stop its running workspaces before answering (provisioning/runtime.py).
    enforce_agreement_status(settings, db.tx, [agreement_id], actor=user.username)
    return see_other("/operator")


@router.post("/lifecycle")
def lifecycle(
    request: Request, db: DbDep, user: OperatorDep, settings: SettingsDep
) -> HTMLResponse:
    """The daily job now: expire and terminate by date, then destroy ended workspaces (R16)."""
    done = agreement_lifecycle(settings, db.tx, today=today(), actor=user.username)
    ran = {"changed": done.changed, "destroyed": done.destroyed}
    return _home(request, db, user, settings, ran=ran)
