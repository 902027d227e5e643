"""Operator functions over HTTP: provision, list, destroy what ended (issue 5, item 3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sandbox.http.deps import DbDep, OperatorDep, OversightDep, SettingsDep
from sandbox.provisioning.models import Workspace
from sandbox.provisioning.runtime import WorkspaceRuntimeUnavailable, resource_use
from sandbox.provisioning.service import destroy_ended, list_workspaces, provision
from sandbox.settings import Settings

router = APIRouter(prefix="/api/workspaces", tags=["operator"])


def workspace_view(ws: Workspace) -> dict[str, Any]:
    return {
        "agreement_id": ws.agreement_id,
        "status": ws.status,
        "dataset_versions": ws.dataset_versions,
        "left_out": ws.left_out,
        "built_at": ws.built_at,
    }


def _with_resources(view: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Add the running containers' resource use; an engine that does not answer is said,
    not hidden."""
    try:
        view["resources"] = resource_use(settings, view["agreement_id"])
    except WorkspaceRuntimeUnavailable as exc:
        view["resources"], view["resources_error"] = None, str(exc)
    return view


@router.get("")
def index(db: DbDep, settings: SettingsDep, user: OversightDep) -> list[dict[str, Any]]:
    """Every workspace with its status and, where workspaces run, their resource use."""
    with db.tx() as session:
        views = [workspace_view(ws) for ws in list_workspaces(session, user)]
    return [_with_resources(v, settings) for v in views]


@router.post("/{agreement_id}/provision")
def provision_one(
    agreement_id: str, db: DbDep, settings: SettingsDep, user: OperatorDep
) -> dict[str, Any]:
    with db.tx() as session:
        ws = provision(session=session, settings=settings, actor=user, agreement_id=agreement_id)
        return workspace_view(ws)


@router.post("/destroy-ended")
def destroy(db: DbDep, settings: SettingsDep, user: OperatorDep) -> list[str]:
    """Destroy the databases and keys of agreements that have ended (R16)."""
    with db.tx() as session:
        return destroy_ended(session, settings)
